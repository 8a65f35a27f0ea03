#!/usr/bin/env python3
"""Benchmark: stratum vs DuckDB on the same Parquet files, side by side in one run.

  python3 bench/run.py [--customers 1000000] [--transactions 20000000] [--invoices 2000000]
                       [--shape gen|skewed] [--record none|history|service] [--threads 0] [--repeat 3]
                       [--stratum target/release/stratum] [--python PYTHON_WITH_DUCKDB] [--work DIR]

Generates the data once (`--shape gen`: `stratum gen` and its bench.toml; `--shape skewed`:
bench/skewed.py, heavy-tailed activity, ids with gaps, time-ordered row groups, and an RFM
policy), then for each repetition runs `stratum run` with the
benchmark policy (10/30/60 weighted composite + 1/19/30/50 pyramid) and the equivalent DuckDB
query, each as its own process (wall time and peak RSS via wait4). Checks that both
place every customer on the same level, and prints the medians and the ratios. Results go to
bench/out/results.json (results-skewed.json), with each run's stages (the `timings:` line).

`--record history` times `stratum run` as users run it, recording into a SQLite history
(DuckDB records nothing); `--record service` the same with bench/serve.py's `[service]`
section added to the policy (owners and a benefit). The history is made afresh and one
untimed run dated a month earlier recorded first, so each timed run is the next month's run
(holds and the migration from that run) into a history that already holds one.
Loopback-free: everything is local files.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"  # --work changes it
VENV = ROOT / "bench" / ".venv"


def data_arguments(ap, repeat=True):
    """The options every benchmark shares: the data size, the binary, and (if repeated) how often."""
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--transactions", type=int, default=20_000_000)
    ap.add_argument("--invoices", type=int, default=2_000_000)
    ap.add_argument("--stratum", default=str(ROOT / "target" / "release" / "stratum"))
    if repeat:
        ap.add_argument("--repeat", type=int, default=3)


def python_with(venv_dir: Path, module: str, requirement: str) -> str:
    """A virtual environment's Python that can import `module` (pip-installing `requirement`)."""
    py = venv_dir / "bin" / "python"
    if not py.exists():
        venv.create(venv_dir, with_pip=True)
    check = subprocess.run([str(py), "-c", f"import {module}"], capture_output=True)
    if check.returncode != 0:
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", requirement], check=True)
    return str(py)


def bench_data(stratum: str, work: Path, customers: int, transactions: int, invoices: int) -> Path:
    """The benchmark data of this size under `work`, generated with `stratum gen` when missing."""
    data = work / f"data-{customers}-{transactions}-{invoices}"
    if not (data / "bench.toml").exists():
        print(f"generating {customers:,} customers, {transactions:,} transactions, {invoices:,} invoices ...",
              flush=True)
        subprocess.run([stratum, "gen", "--customers", str(customers), "--transactions", str(transactions),
                        "--invoices", str(invoices), str(data)], check=True, stdout=subprocess.DEVNULL)
    return data


def skewed_data(py: str, work: Path, customers: int, transactions: int) -> Path:
    """bench/skewed.py's data of this size under `work`, generated when missing."""
    data = work / f"skewed-{customers}-{transactions}"
    if not (data / "policy.toml").exists():
        print(f"generating skewed data: {customers:,} customers, {transactions:,} transactions ...",
              flush=True)
        subprocess.run([py, str(ROOT / "bench" / "skewed.py"), "--customers", str(customers),
                        "--transactions", str(transactions), str(data)], check=True)
    return data


def stages(log) -> dict:
    """The stage timings stratum printed (`timings: load 0.09s, metrics 1.42s, ...`), in seconds."""
    for line in Path(log).read_text().splitlines():
        if line.startswith("timings:"):
            parts = (p.strip().rsplit(" ", 1) for p in line[len("timings:"):].split(","))
            return {name: float(t.rstrip("s")) for name, t in parts}
    return {}


def timed(cmd, log):
    """Runs cmd as its own process; returns (wall seconds, peak RSS MiB) of that process,
    measured with wait4 (the same figures /usr/bin/time -v reports)."""
    with open(log, "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{Path(log).read_text()[-3000:]}")
    return wall, usage.ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser()
    data_arguments(ap)
    ap.add_argument("--threads", type=int, default=0, help="0: all cores, for both engines")
    ap.add_argument("--python", help="a Python that already has duckdb (default: bench/.venv, created)")
    ap.add_argument("--work", help="folder for data, outputs and results.json (default: bench/out)")
    ap.add_argument("--shape", choices=["gen", "skewed"], default="gen",
                    help="gen: `stratum gen`'s data; skewed: bench/skewed.py's (no invoices)")
    ap.add_argument("--record", choices=["none", "history", "service"], default="none",
                    help="none: --no-record; history: into a SQLite history; service: with [service] too")
    a = ap.parse_args()
    global OUT
    if a.work:
        OUT = Path(a.work).resolve()
    OUT.mkdir(parents=True, exist_ok=True)

    stratum = a.stratum
    if not Path(stratum).exists():
        print("building stratum --release (15-20 minutes on two cores) ...", flush=True)
        subprocess.run(["cargo", "build", "--release", "-p", "stratum-cli"], cwd=ROOT, check=True)
    py = a.python or python_with(VENV, "duckdb", "duckdb")

    if a.shape == "skewed":
        py_gen = python_with(VENV, "pyarrow", "pyarrow numpy")
        data = skewed_data(py_gen, OUT, a.customers, a.transactions)
        policy = data / "policy.toml"
    else:
        data = bench_data(stratum, OUT, a.customers, a.transactions, a.invoices)
        policy = data / "bench.toml"

    if a.record == "service":
        if a.shape != "gen":
            sys.exit("--record service uses the gen shape's serve policy")
        from serve import SERVICE  # bench/serve.py's section, so both measure one policy
        serve = data / "serve.toml"
        serve.write_text(policy.read_text().replace(
            'name = "Benchmark: composite + pyramid"', 'name = "Benchmark: service"') + SERVICE)
        policy = serve
    record_args = ["--no-record"]
    s_out = OUT / "stratum-out"
    if a.record != "none":
        history = OUT / f"history-{a.shape}-{a.record}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{history}{suffix}").unlink(missing_ok=True)
        base = [stratum, "--policy", str(policy), "--database", f"sqlite://{history}"]
        # A month earlier, so that each timed run continues from it (holds, migration).
        timed(base + ["run", "--out", str(s_out), "--as-of", "2026-09-30"], OUT / "stratum-first.log")
        record_args = []

    runs = {"stratum": [], "duckdb": []}
    stage_runs = []
    for i in range(a.repeat):
        d_out = OUT / "duckdb-assignments.parquet"
        database = [] if a.record == "none" else ["--database", f"sqlite://{history}"]
        runs["stratum"].append(timed([stratum, "--policy", str(policy), *database, "run", "--out", str(s_out),
                                      *record_args, "--threads", str(a.threads)], OUT / f"stratum-{i}.log"))
        stage_runs.append(stages(OUT / f"stratum-{i}.log"))
        runs["duckdb"].append(timed([py, str(ROOT / "bench" / "duckdb_pyramid.py"), str(data), str(d_out),
                                     str(a.threads), a.shape], OUT / f"duckdb-{i}.log"))
        print(f"run {i + 1}: stratum {runs['stratum'][-1][0]:.2f}s {runs['stratum'][-1][1]:.0f} MiB | "
              f"duckdb {runs['duckdb'][-1][0]:.2f}s {runs['duckdb'][-1][1]:.0f} MiB", flush=True)

    # Same level for every customer?
    cmp = subprocess.run([py, "-c", f"""
import duckdb
s = '{OUT / "stratum-out" / "assignments.parquet"}'
d = '{OUT / "duckdb-assignments.parquet"}'
q = f"SELECT count(*) AS n, count(*) FILTER (WHERE s.level <> d.level) AS differ, \
      count(*) FILTER (WHERE abs(s.score - d.score) > 1e-9) AS score_differ \
      FROM read_parquet('{{s}}') s FULL JOIN read_parquet('{{d}}') d USING (customer_id)"
con = duckdb.connect()
n, differ, sd = con.execute(q).fetchone()
levels = con.execute(f"SELECT level, count(*) FROM read_parquet('{{s}}') GROUP BY level ORDER BY 2").fetchall()
print(n, differ, sd, levels)
"""], capture_output=True, text=True, check=True)
    n, differ, score_differ, *levels = cmp.stdout.split(" ", 3)
    med = {k: (statistics.median(w for w, _ in v), statistics.median(r for _, r in v)) for k, v in runs.items()}
    walls = [w for w, _ in runs["stratum"]]
    median_run = sorted(range(len(walls)), key=lambda i: walls[i])[len(walls) // 2]
    result = {
        "shape": a.shape,
        "record": a.record,
        "customers": a.customers, "transactions": a.transactions, "invoices": a.invoices,
        "threads": a.threads or os.cpu_count(), "repeat": a.repeat,
        "stratum": {"wall_s": med["stratum"][0], "peak_rss_mib": med["stratum"][1]},
        "duckdb": {"wall_s": med["duckdb"][0], "peak_rss_mib": med["duckdb"][1]},
        "wall_ratio": med["stratum"][0] / med["duckdb"][0],
        "memory_ratio": med["stratum"][1] / med["duckdb"][1],
        "customers_compared": int(n), "level_mismatches": int(differ), "score_mismatches": int(score_differ),
        "levels": levels[0].strip(),
        "stratum_stages_of_median_run": stage_runs[median_run],
        "runs": runs,
        "stages": stage_runs,
    }
    name = "results" + ("" if a.shape == "gen" else f"-{a.shape}") + \
        ("" if a.record == "none" else f"-{a.record}") + ".json"
    (OUT / name).write_text(json.dumps(result, indent=2))
    print()
    print(f"{'':10} {'wall s':>8} {'peak MiB':>9}")
    for k in ("stratum", "duckdb"):
        print(f"{k:10} {med[k][0]:8.2f} {med[k][1]:9.0f}")
    print(f"ratio      {result['wall_ratio']:8.2f} {result['memory_ratio']:9.2f}   (stratum / duckdb)")
    print("stratum stages (median run): " + ", ".join(f"{k} {v:.2f}s" for k, v in stage_runs[median_run].items()))
    print(f"placements compared: {int(n):,}; level mismatches: {int(differ)}; score mismatches: {int(score_differ)}")
    if int(differ) != 0:
        sys.exit("placements differ")


if __name__ == "__main__":
    main()
