#!/usr/bin/env python3
"""Freezes reference values from the Python package `lifetimes` for Stratum's CLV tests.

    python3 -m venv /tmp/ltenv && /tmp/ltenv/bin/pip install lifetimes==0.11.3
    /tmp/ltenv/bin/python bench/clv/lifetimes_reference.py

writes crates/core/tests/fixtures/cdnow/lifetimes_reference.json: lifetimes' fits of BG/NBD
and Gamma-Gamma to (1) the published CDNOW sample summary and (2) the summary lifetimes itself
builds from the full CDNOW master log (23,570 customers, as of 1997-09-30, in weeks of 7 days),
with p_alive, conditional expected purchases over 39 weeks, expected spend and 12-month CLV
(1% a month, lifetimes' 4.345 weeks a month) for a spread of customers.
"""
import json
import os

import lifetimes
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value
from lifetimes.utils import summary_data_from_transaction_data

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "..", "crates", "core", "tests", "fixtures", "cdnow")
HORIZON_WEEKS = 39
CLV_MONTHS = 12
DISCOUNT = 0.01


def fit(summary):
    bgf = BetaGeoFitter(penalizer_coef=0.0)
    bgf.fit(summary["frequency"], summary["recency"], summary["T"])
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    ggf = GammaGammaFitter(penalizer_coef=0.0)
    ggf.fit(repeat["frequency"], repeat["monetary_value"])
    return bgf, ggf


def params(bgf, ggf):
    p = bgf.params_
    g = ggf.params_
    return {
        "bgnbd": {
            "r": p["r"], "alpha": p["alpha"], "a": p["a"], "b": p["b"],
        },
        "gamma_gamma": {"p": g["p"], "q": g["q"], "v": g["v"]},
    }


def predictions(bgf, ggf, summary, ids):
    rows = summary.loc[ids]
    f, r, t, m = rows["frequency"], rows["recency"], rows["T"], rows["monetary_value"]
    alive = bgf.conditional_probability_alive(f, r, t)
    expected = bgf.conditional_expected_number_of_purchases_up_to_time(HORIZON_WEEKS, f, r, t)
    spend = ggf.conditional_expected_average_profit(f, m)
    clv = ggf.customer_lifetime_value(bgf, f, r, t, m, time=CLV_MONTHS, discount_rate=DISCOUNT, freq="W")
    out = []
    for i, cid in enumerate(ids):
        out.append({
            "customer_id": str(cid),
            "frequency": int(f.iloc[i]), "recency": float(r.iloc[i]), "T": float(t.iloc[i]),
            "monetary": float(m.iloc[i]),
            "p_alive": float(alive[i]), "expected_purchases": float(expected.iloc[i]),
            "expected_spend": float(spend.iloc[i]), "clv": float(clv.iloc[i]),
        })
    return out


def main():
    sample = load_cdnow_summary_data_with_monetary_value()
    bgf, ggf = fit(sample)
    sample_ids = [1, 2, 3, 4, 5, 10, 18, 100, 500, 1000, 1500, 2000, 2357]
    log = pd.read_csv(os.path.join(FIXTURES, "CDNOW_master.txt"), sep=r"\s+",
                      dtype={"customer_id": str, "date": str})
    log["date"] = pd.to_datetime(log["date"], format="%Y%m%d")
    # Days, then divided by 7: weeks of exactly seven days, as Stratum counts them.
    master = summary_data_from_transaction_data(
        log, "customer_id", "date", monetary_value_col="dollar_value",
        observation_period_end="1997-09-30", freq="D", freq_multiplier=7)
    mbgf, mggf = fit(master)
    ids = list(master.index[::997]) + [master["frequency"].idxmax(), master["monetary_value"].idxmax()]
    reference = {
        "made_by": "bench/clv/lifetimes_reference.py",
        "lifetimes": lifetimes.__version__,
        "horizon_weeks": HORIZON_WEEKS, "clv_months": CLV_MONTHS, "monthly_discount": DISCOUNT,
        "weeks_per_month": 4.345,
        "sample": {**params(bgf, ggf), "customers": len(sample),
                   "predictions": predictions(bgf, ggf, sample, sample_ids)},
        "master": {**params(mbgf, mggf), "as_of": "1997-09-30", "customers": len(master),
                   "totals": {"frequency": int(master["frequency"].sum()),
                              "recency": float(master["recency"].sum()),
                              "T": float(master["T"].sum()),
                              "monetary": float(master["monetary_value"].sum())},
                   "predictions": predictions(mbgf, mggf, master, ids)},
    }
    path = os.path.join(FIXTURES, "lifetimes_reference.json")
    with open(path, "w") as fh:
        json.dump(reference, fh, indent=1)
        fh.write("\n")
    print("wrote", os.path.relpath(path))


if __name__ == "__main__":
    main()
