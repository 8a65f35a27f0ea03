#!/usr/bin/env python3
"""Benchmark: `stratum cluster` vs scikit-learn's KMeans on the same matrix.

    python3 bench/cluster.py [--rows 1000000] [--rounds 5] [--choose-rounds 3]
                             [--stratum /tmp/release-target/release/stratum] [--python PY]

The matrix: RFM-shaped features of --rows customers drawn with a fixed seed (recency in days,
exponential; orders, Poisson on a gamma rate; spend, log-normal per order; margin share,
beta), written once to WORK/cluster-matrix.csv. Both sides standardise the columns (z-score)
and do not time that or the reading.

1. k = 5, 10 restarts: `stratum cluster --k 5 --restarts 10 --timings` (its "k-means" time)
   against KMeans(n_clusters=5, n_init=10, init="k-means++", algorithm="lloyd").fit (timed
   inside Python), interleaved for --rounds rounds; medians, and both inertias.
2. Choosing k from 2..8 by silhouette on a 5,000-row sample: `stratum cluster --k 2..8` (wall
   time of the whole command, reading included) against KMeans(n_init=10) per k plus
   silhouette_score(sample_size=5000) (timed inside Python, reading excluded).

Both use every core (rayon; OpenMP). Results go to WORK/cluster-results.json.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as harness  # noqa: E402  (timed(), python_with())

ROOT = harness.ROOT

MAKE = r'''
import sys
import numpy as np
rows, path = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(20261201)
recency = np.floor(rng.exponential(60.0, rows))
rate = rng.gamma(1.5, 4.0, rows)
orders = rng.poisson(rate)
spend = np.round(orders * rng.lognormal(4.0, 0.8, rows), 2)
margin = np.round(rng.beta(2.0, 5.0, rows), 4)
with open(path, "w") as f:
    f.write("customer_id,recency_days,orders,spend,margin\n")
    for i in range(0, rows, 100000):
        j = min(rows, i + 100000)
        block = np.column_stack([np.arange(i + 1, j + 1), recency[i:j], orders[i:j], spend[i:j], margin[i:j]])
        np.savetxt(f, block, delimiter=",", fmt=["%d", "%d", "%d", "%.2f", "%.4f"])
'''

SKLEARN = r'''
import json, sys, time
import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler
mode, path = sys.argv[1], sys.argv[2]
X = StandardScaler().fit_transform(pd.read_csv(path).drop(columns=["customer_id"]).to_numpy(dtype=float))
started = time.perf_counter()
if mode == "fit":
    km = KMeans(n_clusters=5, n_init=10, init="k-means++", algorithm="lloyd", random_state=0).fit(X)
    out = {"inertia": float(km.inertia_), "sizes": sorted(np.bincount(km.labels_).tolist(), reverse=True)}
else:
    out = {"k": []}
    for k in range(2, 9):
        km = KMeans(n_clusters=k, n_init=10, random_state=0).fit(X)
        out["k"].append([k, float(km.inertia_), float(silhouette_score(X, km.labels_, sample_size=5000, random_state=0))])
out["seconds"] = time.perf_counter() - started
print(json.dumps(out))
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--choose-rounds", type=int, default=3)
    ap.add_argument("--stratum", default="/tmp/release-target/release/stratum")
    ap.add_argument("--python", help="a Python with scikit-learn and pandas (default: bench/.venv)")
    ap.add_argument("--work", default=str(ROOT / "bench" / "out"))
    a = ap.parse_args()
    work = Path(a.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if not Path(a.stratum).exists():
        sys.exit(f"{a.stratum} does not exist: build it with `cargo build --release -p stratum-cli`")
    py = a.python or harness.python_with(harness.VENV, "sklearn", "scikit-learn pandas")
    matrix = work / f"cluster-matrix-{a.rows}.csv"
    if not matrix.exists():
        (work / "cluster_make.py").write_text(MAKE)
        subprocess.run([py, str(work / "cluster_make.py"), str(a.rows), str(matrix)], check=True)
    (work / "cluster_sklearn.py").write_text(SKLEARN)
    versions = subprocess.run([py, "-c", "import sklearn, numpy; print(sklearn.__version__, numpy.__version__)"],
                              capture_output=True, text=True, check=True).stdout.split()

    def stratum(k, extra=()):
        cmd = [a.stratum, "cluster", "--data", str(matrix), "--k", k, "--restarts", "10", "--timings", *extra]
        started = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if p.returncode != 0:
            sys.exit(f"stratum failed: {p.stderr}")
        t = re.search(r"read ([\d.]+)s, k-means ([\d.]+)s, silhouette ([\d.]+)s", p.stderr)
        rows = re.findall(r"^\s+(\d+)\s+([\d.]+)\s+([-\d.]+)", p.stdout.split("\n\n")[0], re.M)
        return {"wall": wall, "read": float(t[1]), "kmeans": float(t[2]), "silhouette": float(t[3]),
                "k": [[int(k), float(i), float(s)] for k, i, s in rows], "stdout": p.stdout}

    def sklearn(mode):
        p = subprocess.run([py, str(work / "cluster_sklearn.py"), mode, str(matrix)],
                           capture_output=True, text=True, check=True)
        return json.loads(p.stdout)

    fit = {"stratum": [], "sklearn": []}
    for r in range(a.rounds):
        fit["stratum"].append(stratum("5"))
        fit["sklearn"].append(sklearn("fit"))
        print(f"round {r + 1}: stratum k-means {fit['stratum'][-1]['kmeans']:.2f}s, "
              f"scikit-learn {fit['sklearn'][-1]['seconds']:.2f}s", flush=True)
    choose = {"stratum": [], "sklearn": []}
    for r in range(a.choose_rounds):
        choose["stratum"].append(stratum("2..8"))
        choose["sklearn"].append(sklearn("choose"))
        print(f"choose k round {r + 1}: stratum {choose['stratum'][-1]['wall']:.1f}s (whole command), "
              f"scikit-learn {choose['sklearn'][-1]['seconds']:.1f}s", flush=True)

    med = statistics.median
    ours, theirs = fit["stratum"][0], fit["sklearn"][0]
    result = {
        "rows": a.rows, "sklearn": versions[0], "numpy": versions[1], "cores": os.cpu_count(),
        "fit": {"stratum_kmeans_s": med(x["kmeans"] for x in fit["stratum"]),
                "stratum_wall_s": med(x["wall"] for x in fit["stratum"]),
                "sklearn_s": med(x["seconds"] for x in fit["sklearn"]),
                "stratum_inertia": ours["k"][0][1], "sklearn_inertia": theirs["inertia"],
                "sklearn_sizes": theirs["sizes"]},
        "choose": {"stratum_wall_s": med(x["wall"] for x in choose["stratum"]),
                   "stratum_kmeans_s": med(x["kmeans"] for x in choose["stratum"]),
                   "stratum_silhouette_s": med(x["silhouette"] for x in choose["stratum"]),
                   "sklearn_s": med(x["seconds"] for x in choose["sklearn"]),
                   "stratum_k": choose["stratum"][0]["k"], "sklearn_k": choose["sklearn"][0]["k"]},
    }
    (work / "cluster-results.json").write_text(json.dumps(result, indent=1) + "\n")
    print(ours["stdout"])
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
