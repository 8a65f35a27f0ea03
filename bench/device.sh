#!/usr/bin/env bash
# Runs bench/run.py on the lent many-core machine (no Rust, no network): unpacks the carried
# stripped release binary (bench/device/stratum.zst) and DuckDB wheel, then benchmarks.
#   bash bench/device.sh CUSTOMERS TRANSACTIONS INVOICES REPEAT
set -euo pipefail
cd "$(dirname "$0")/.."
work=/tmp/stratum-bench
mkdir -p "$work"
zstd -d -q -f bench/device/stratum.zst -o "$work/stratum" 2>/dev/null \
  || python3 -c "import zstandard,sys; zstandard.ZstdDecompressor().copy_stream(open('bench/device/stratum.zst','rb'), open('$work/stratum','wb'))"
chmod +x "$work/stratum"
python3 -m pip install --quiet --no-index --target "$work/py" bench/device/duckdb-*.whl
cat > "$work/python" <<PY
#!/bin/sh
PYTHONPATH="$work/py" exec python3 "\$@"
PY
chmod +x "$work/python"
nproc; free -g | head -2
python3 bench/run.py --stratum "$work/stratum" --python "$work/python" --work "$work/out" \
  --customers "$1" --transactions "$2" --invoices "$3" --repeat "$4"
cp "$work/out/results.json" "${OUT:-$work}/results-$1-$2.json"
