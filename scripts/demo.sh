#!/usr/bin/env bash
# Builds stratum, creates a demo workspace and runs it end to end: every example policy of
# the domain notes, the pyramid tables, an explanation, and the lint of a flawed policy.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "stratum needs a Rust toolchain (cargo); install it with rustup, then run this again" >&2
  exit 1
fi

echo "== building stratum (first build takes a few minutes)"
cargo build --quiet -p stratum-cli
stratum=target/debug/stratum
ws=${1:-demo-workspace}

echo "== stratum init $ws"
"$stratum" init "$ws" --force

echo
echo "== stratum -C $ws run        (pyramid, ABC, RFM, credit watch, lifecycle)"
"$stratum" -C "$ws" run

for p in bank b2b property retail_members; do
  echo
  echo "== stratum -C $ws --policy policies/$p.toml run"
  "$stratum" -C "$ws" --policy "policies/$p.toml" run --out "$ws/out-$p" | sed -n '/^ladder/,$p'
done

echo
echo "== stratum -C $ws explain C00042"
"$stratum" -C "$ws" explain C00042

echo
echo "== stratum -C $ws check policies/b2b.toml     (the source material's grades have holes)"
"$stratum" -C "$ws" check policies/b2b.toml
