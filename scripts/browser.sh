#!/usr/bin/env bash
# Installs what the browser tests need: Debian's chromium and the npm packages of
# tests/browser (playwright-core without its own browser download, axe-core).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ]; then
  echo "== installing chromium (apt-get)"
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq chromium; else sudo apt-get install -y -qq chromium; fi
fi
# Chinese pages need a CJK font, or the screenshots show boxes.
if ! fc-list :lang=zh 2>/dev/null | grep -q .; then
  echo "== installing a Chinese font (apt-get fonts-wqy-microhei)"
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq fonts-wqy-microhei; else sudo apt-get install -y -qq fonts-wqy-microhei; fi
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "== installing nodejs and npm (apt-get)"
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq nodejs npm; else sudo apt-get install -y -qq nodejs npm; fi
fi
if [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -d tests/browser/node_modules/axe-core ]; then
  echo "== npm install (tests/browser)"
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --silent)
fi
