#!/usr/bin/env bash
# Runs every check CI runs: formatting, clippy with warnings as errors, and all tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "the tests need a Rust toolchain (cargo)" >&2
  exit 1
fi
# rustfmt and clippy ship with the toolchain; add them if this one lacks them.
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done

# The store tests run on SQLite and on PostgreSQL; this starts a local server (installing
# Debian's postgresql package if needed) unless STRATUM_TEST_POSTGRES_URL points at one.
if [ -z "${STRATUM_TEST_POSTGRES_URL:-}" ]; then
  echo "== starting PostgreSQL for the store tests"
  STRATUM_TEST_POSTGRES_URL=$(bash scripts/postgres.sh)
  export STRATUM_TEST_POSTGRES_URL
fi
echo "   PostgreSQL tests use $STRATUM_TEST_POSTGRES_URL"

# The console's browser tests drive Debian's chromium with Playwright: install both (and
# axe-core) unless they are there.
bash scripts/browser.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
# Everything is built and tested with the Ballista cluster client (`--features cluster`,
# docs/SCALE.md); the default build, without it, is linted too.
echo "== cargo clippy (default features)"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo clippy (--features cluster)"
cargo clippy --workspace --all-targets --quiet --features stratum-cli/cluster -- -D warnings
echo "== cargo test (--features cluster)"
# The PostgreSQL halves and the browser tests are #[ignore]d so that a plain `cargo test`
# shows them as not run; here they run. So do the Ballista tests (a scheduler and two
# executors as separate processes, crates/cli/tests/ballista.rs).
cargo test --workspace --features stratum-cli/cluster -- --include-ignored
