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
echo "== stratum -C $ws run --as-of 2026-09-30   (last month's run, kept in $ws/stratum.db)"
"$stratum" -C "$ws" run --as-of 2026-09-30 | tail -1

echo
echo "== stratum -C $ws override add C00003 ...  (a pin kept in the store, with who and why)"
"$stratum" -C "$ws" --by demo override add C00003 --ladder pyramid --level key \
  --until 2026-12-31 --reason "board member's company"

echo
echo "== stratum -C $ws run        (pyramid, ABC, RFM, credit watch, lifecycle)"
"$stratum" -C "$ws" run

echo
echo "== stratum -C $ws diff       (who moved between the two runs)"
"$stratum" -C "$ws" diff --export "$ws/out/moves.csv" | sed -n '1,/^ladder abc/p' | sed '$d'

echo
echo "== stratum -C $ws history C00031     (ranked lower this month: held by the pyramid's hold)"
"$stratum" -C "$ws" history C00031 | sed -n '1,4p'

echo
echo "== stratum -C $ws --policy draft.toml simulate   (what if the key tier were 2%?)"
sed 's/top_share = 0.01/top_share = 0.02/' "$ws/stratum.toml" > "$ws/draft.toml"
"$stratum" -C "$ws" --policy draft.toml simulate 2>/dev/null | sed -n '1,/benefit cost/p'

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
