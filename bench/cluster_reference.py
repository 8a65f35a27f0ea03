#!/usr/bin/env python3
"""Freezes scikit-learn's k-means results on iris as the reference `stratum`'s clustering is
tested against (crates/core/tests/fixtures/iris/sklearn_reference.json).

    bench/.venv/bin/python bench/cluster_reference.py

For k = 2..5, on the raw measurements (no scaling) and on StandardScaler's output: the best
(lowest inertia) of KMeans(n_clusters=k, n_init=1, random_state=s) for s = 0..499, with
scikit-learn's defaults otherwise (greedy k-means++, Lloyd, tol 1e-4): its inertia, cluster
sizes (largest first), labels and silhouette_score. Five hundred starts, because one
n_init=100 call can stop short of the best partition (standardised, k = 4: 114.0925 where
114.0922 exists).
"""
import json
from pathlib import Path

import numpy as np
import sklearn
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

FIXTURES = Path(__file__).resolve().parent.parent / "crates/core/tests/fixtures/iris"


def main():
    rows = (FIXTURES / "iris.csv").read_text().splitlines()[1:]
    X = np.array([[float(v) for v in r.split(",")[:4]] for r in rows if r.strip()])
    out = {"sklearn": sklearn.__version__, "numpy": np.__version__, "raw": {}, "zscore": {}}
    for name, data in (("raw", X), ("zscore", StandardScaler().fit_transform(X))):
        for k in (2, 3, 4, 5):
            km = min((KMeans(n_clusters=k, n_init=1, random_state=s).fit(data) for s in range(500)),
                     key=lambda m: m.inertia_)
            sizes = sorted(np.bincount(km.labels_).tolist(), reverse=True)
            out[name][str(k)] = {
                "inertia": float(km.inertia_),
                "sizes": sizes,
                "silhouette": float(silhouette_score(data, km.labels_)),
                "labels": km.labels_.tolist(),
            }
            print(name, k, round(km.inertia_, 4), sizes, round(out[name][str(k)]["silhouette"], 6))
    (FIXTURES / "sklearn_reference.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
