#!/usr/bin/env python3
"""Benchmark: what recording a run in the history costs (issue: run history and the store).

  python3 bench/record.py [--customers 1000000] [--transactions 20000000] [--invoices 2000000]
                          [--repeat 3] [--stratum target/release/stratum] [--work DIR]

Uses the same generated data and benchmark policy as bench/run.py. For each repetition:
  1. `stratum run --no-record`                    the run alone (files only)
  2. `stratum run --database sqlite://fresh.db`   the same run, recorded in a new SQLite file
  3. the same command again, as of a month later  a second run over unchanged inputs: it also
                                                  reads the previous run's 1M standings (holds)
Prints medians, the overhead of recording (2 vs 1) and the database size. Results go to
WORK/record-results.json.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as harness  # noqa: E402  (timed(), the data layout)


def main():
    ap = argparse.ArgumentParser()
    harness.data_arguments(ap)
    ap.add_argument("--work", default=str(harness.ROOT / "bench" / "out"))
    a = ap.parse_args()
    work = Path(a.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    stratum = a.stratum
    if not Path(stratum).exists():
        print("building stratum --release (15-20 minutes on two cores) ...", flush=True)
        subprocess.run(["cargo", "build", "--release", "-p", "stratum-cli"], cwd=harness.ROOT, check=True)
    data = harness.bench_data(stratum, work, a.customers, a.transactions, a.invoices)
    policy = str(data / "bench.toml")
    out = str(work / "record-out")
    db = work / "record.db"
    runs = {"no_record": [], "recorded": [], "second": []}
    size = 0
    for i in range(a.repeat):
        for f in work.glob("record.db*"):
            f.unlink()
        url = f"sqlite://{db}?mode=rwc"
        base = [stratum, "--policy", policy]
        runs["no_record"].append(harness.timed(base + ["run", "--out", out, "--no-record"], work / f"record-none-{i}.log"))
        runs["recorded"].append(harness.timed(base + ["--database", url, "run", "--out", out], work / f"record-first-{i}.log"))
        runs["second"].append(harness.timed(base + ["--database", url, "run", "--out", out, "--as-of", "2026-11-30"],
                                            work / f"record-second-{i}.log"))
        size = sum(f.stat().st_size for f in work.glob("record.db*"))
        print(f"rep {i + 1}: " + " | ".join(f"{k} {v[-1][0]:.2f}s {v[-1][1]:.0f} MiB" for k, v in runs.items()), flush=True)
    med = {k: (statistics.median(w for w, _ in v), statistics.median(r for _, r in v)) for k, v in runs.items()}
    timings = {}
    for name in ("record-first-0.log", "record-second-0.log"):
        for line in (work / name).read_text().splitlines():
            if line.startswith("timings:"):
                timings[name] = line
    result = {
        "customers": a.customers, "transactions": a.transactions, "invoices": a.invoices,
        "threads": os.cpu_count(), "repeat": a.repeat,
        "median": {k: {"wall_s": w, "peak_rss_mib": r} for k, (w, r) in med.items()},
        "record_overhead": med["recorded"][0] / med["no_record"][0] - 1,
        "database_bytes_after_two_runs": size,
        "stage_timings": timings,
        "runs": runs,
    }
    (work / "record-results.json").write_text(json.dumps(result, indent=2))
    print()
    print(f"{'':28} {'wall s':>8} {'peak MiB':>9}")
    for k, label in (("no_record", "run --no-record"), ("recorded", "run, recorded (new db)"),
                     ("second", "second run, recorded")):
        print(f"{label:28} {med[k][0]:8.2f} {med[k][1]:9.0f}")
    print(f"recording adds {result['record_overhead'] * 100:.0f}% to the run's wall time (target: at most 50%)")
    print(f"database after two runs: {size / 2**20:.0f} MiB")
    for k, v in timings.items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
