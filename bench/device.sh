#!/usr/bin/env bash
# Runs the benchmarks on a lent many-core machine (no Rust, no network): unpacks the carried
# stripped release binary (bench/device/stratum.zst, built with --features cluster) and the
# DuckDB wheel, then
#   1. bench/run.py at the given size (stratum vs DuckDB, medians of interleaved repetitions);
#   2. the same policy with stage one on a Ballista cluster of this machine: one scheduler and
#      EXECUTORS executors of (cores / EXECUTORS) threads each, timed, and its assignments.csv
#      compared byte for byte with the local run's.
#   bash bench/device.sh CUSTOMERS TRANSACTIONS INVOICES REPEAT [EXECUTORS]
# e.g. bash bench/device.sh 10000000 200000000 20000000 3 4. Not part of CI.
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

executors=${5:-4}
data="$work/out/data-$1-$2-$3"
if ! "$work/stratum" ballista scheduler --help >/dev/null 2>&1 \
    || "$work/stratum" ballista scheduler --bind 127.0.0.1:1 2>&1 | grep -q "without cluster support"; then
  echo "the carried binary has no cluster support: Ballista run skipped"
  exit 0
fi
threads=$(( $(nproc) / executors ))
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
"$work/stratum" ballista scheduler --bind 127.0.0.1:50050 > "$work/scheduler.log" 2>&1 &
pids+=($!)
sleep 2
for i in $(seq 1 "$executors"); do
  mkdir -p "$work/executor-$i"
  "$work/stratum" ballista executor --scheduler df://127.0.0.1:50050 \
    --port $((50100 + 2 * i)) --grpc-port $((50101 + 2 * i)) --threads "$threads" \
    --work-dir "$work/executor-$i" > "$work/executor-$i.log" 2>&1 &
  pids+=($!)
done
sleep 3
for run in 1 2; do
  start=$(date +%s.%N)
  "$work/stratum" --policy "$data/bench.toml" run --no-record --cluster df://127.0.0.1:50050 \
    --out "$work/out/cluster-out" | tee "$work/cluster-$run.log" | grep timings
  echo "cluster run $run: $(echo "$(date +%s.%N) - $start" | bc) s ($executors executors x $threads threads)"
done
"$work/stratum" --policy "$data/bench.toml" run --no-record --out "$work/out/local-out" | grep timings
cmp "$work/out/local-out/assignments.csv" "$work/out/cluster-out/assignments.csv" \
  && echo "assignments.csv: identical to the local run's"
