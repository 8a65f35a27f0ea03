#!/usr/bin/env python3
"""Benchmark: `stratum clv` vs the Python package lifetimes, fit + predictions, same summary.

  python3 bench/clv.py [--customers 1000000] [--transactions 20000000] [--repeat 3]
                       [--stratum /tmp/release-target/release/stratum] [--python PY] [--work DIR]

Uses the transactions of the main benchmark (`stratum gen`, generated when missing). For each
repetition, as separate processes (wall time and peak RSS via wait4):

  stratum   `stratum clv --transactions transactions.parquet --as-of … --out …`: reads the raw
            log (20M rows), builds every customer's (frequency, recency, T, spend), fits
            BG/NBD and Gamma-Gamma (with standard errors) and writes p_alive, expected
            purchases, expected spend and 12-month CLV for every customer.
  lifetimes BetaGeoFitter + GammaGammaFitter on the summary stratum wrote (so both fit the same
            numbers; reading that CSV is not timed), then the same four predictions.

Prints both fits, how far apart their predictions are, and the times. Results go to
WORK/clv-results.json.
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as harness  # noqa: E402  (timed(), python_with(), the data layout)

ROOT = harness.ROOT
VENV = ROOT / "bench" / ".venv-lifetimes"
AS_OF = "2026-10-31"

LIFETIMES = r'''
import json, sys, time
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
summary = pd.read_csv(sys.argv[1], dtype={"customer_id": str})
started = time.perf_counter()
bgf = BetaGeoFitter(penalizer_coef=0.0).fit(summary["frequency"], summary["recency"], summary["T"])
repeat = summary[(summary["frequency"] > 0) & (summary["monetary"] > 0)]
ggf = GammaGammaFitter(penalizer_coef=0.0).fit(repeat["frequency"], repeat["monetary"])
fitted = time.perf_counter()
f, r, t, m = summary["frequency"], summary["recency"], summary["T"], summary["monetary"]
horizon = float(sys.argv[2])
out = pd.DataFrame({
    "p_alive": bgf.conditional_probability_alive(f, r, t),
    "expected_purchases": bgf.conditional_expected_number_of_purchases_up_to_time(horizon, f, r, t),
    "expected_spend": ggf.conditional_expected_average_profit(f, m.clip(lower=0)),
    "clv": ggf.customer_lifetime_value(bgf, f, r, t, m.clip(lower=0), time=12, discount_rate=0.01, freq="W"),
})
predicted = time.perf_counter()
out.to_parquet(sys.argv[3]) if sys.argv[3].endswith(".parquet") else out.to_csv(sys.argv[3], index=False)
print(json.dumps({
    "fit_s": fitted - started, "predict_s": predicted - fitted,
    "bgnbd": {k: float(v) for k, v in bgf.params_.items()},
    "gamma_gamma": {k: float(v) for k, v in ggf.params_.items()},
}))
'''


def main():
    ap = argparse.ArgumentParser()
    harness.data_arguments(ap)
    ap.add_argument("--python", help="a Python that already has lifetimes (default: bench/.venv-lifetimes)")
    ap.add_argument("--work", default=str(ROOT / "bench" / "out"))
    a = ap.parse_args()
    work = Path(a.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    stratum = a.stratum
    if not Path(stratum).exists():
        sys.exit(f"{stratum} does not exist: build it with `cargo build --release -p stratum-cli`")
    py = a.python or harness.python_with(VENV, "lifetimes", "lifetimes==0.11.3")
    data = harness.bench_data(stratum, work, a.customers, a.transactions, a.invoices)
    script = work / "clv_lifetimes.py"
    script.write_text(LIFETIMES)
    out = work / "clv-out"
    horizon_weeks = 12 * 365.2425 / 12 / 7  # stratum's 12 calendar months, in weeks
    runs = {"stratum": [], "lifetimes": []}
    lifetimes_fit = None
    for i in range(a.repeat):
        log = work / f"clv-stratum-{i}.log"
        wall, rss = harness.timed([stratum, "clv", "--transactions", str(data / "transactions.parquet"),
                           "--as-of", AS_OF, "--unit", "week", "--out", str(out)], log)
        stages = [l for l in log.read_text().splitlines() if l.startswith("timings:")]
        runs["stratum"].append({"wall_s": wall, "rss_mib": rss, "stages": stages[-1] if stages else ""})
        print(f"stratum   run {i}: {wall:6.2f} s  {rss:7.0f} MiB  {runs['stratum'][-1]['stages']}", flush=True)
        log = work / f"clv-lifetimes-{i}.log"
        wall, rss = harness.timed([py, str(script), str(out / "predictions.csv"), str(horizon_weeks),
                           str(work / "clv-lifetimes.csv")], log)
        lifetimes_fit = json.loads(log.read_text().strip().splitlines()[-1])
        runs["lifetimes"].append({"wall_s": wall, "rss_mib": rss, "fit_s": lifetimes_fit["fit_s"],
                                  "predict_s": lifetimes_fit["predict_s"]})
        print(f"lifetimes run {i}: {wall:6.2f} s  {rss:7.0f} MiB  (fit {lifetimes_fit['fit_s']:.2f} s, "
              f"predictions {lifetimes_fit['predict_s']:.2f} s; reading the summary not counted)", flush=True)

    ours = json.loads((out / "fit.json").read_text())
    print("\nfits (stratum | lifetimes)")
    for model, keys in [("bgnbd", ["r", "alpha", "a", "b"]), ("gamma_gamma", ["p", "q", "v"])]:
        for k in keys:
            print(f"  {model:12} {k:6} {ours[model][k]:14.6g} | {lifetimes_fit[model][k]:14.6g}")
    # How far apart the predictions are, customer by customer.
    import csv
    with open(out / "predictions.csv") as f1, open(work / "clv-lifetimes.csv") as f2:
        diffs = {k: 0.0 for k in ["p_alive", "expected_purchases", "expected_spend", "clv"]}
        for s, l in zip(csv.DictReader(f1), csv.DictReader(f2)):
            for k in diffs:
                a_, b_ = float(s[k]), float(l[k])
                diffs[k] = max(diffs[k], abs(a_ - b_) / max(1.0, abs(b_)))
    print("largest relative difference per prediction:", {k: f"{v:.2e}" for k, v in diffs.items()})
    med = {k: statistics.median(r["wall_s"] for r in v) for k, v in runs.items()}
    rss = {k: statistics.median(r["rss_mib"] for r in v) for k, v in runs.items()}
    lt_compute = statistics.median(r["fit_s"] + r["predict_s"] for r in runs["lifetimes"])
    print(f"\nmedian wall: stratum {med['stratum']:.2f} s (from the raw log), lifetimes {med['lifetimes']:.2f} s "
          f"(fit + predictions alone {lt_compute:.2f} s); peak RSS {rss['stratum']:.0f} / {rss['lifetimes']:.0f} MiB")
    (work / "clv-results.json").write_text(json.dumps({
        "customers": ours["customers"], "runs": runs, "median_wall_s": med, "median_rss_mib": rss,
        "lifetimes_fit_plus_predict_s": lt_compute, "stratum_fit": ours, "lifetimes_fit": lifetimes_fit,
        "max_relative_difference": diffs}, indent=1))


if __name__ == "__main__":
    main()
