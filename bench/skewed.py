#!/usr/bin/env python3
"""A benchmark data set shaped unlike `stratum gen`'s, generated independently of stratum.

  python3 bench/skewed.py --customers 1000000 --transactions 20000000 OUT_DIR

`stratum gen` spreads transactions evenly (about 20 per customer), numbers customers 1..n in
one row group per million rows, and shuffles the rows. Real exports look otherwise, so this
one has:
- heavy-tailed activity: transactions per customer follow a Pareto law capped at 20,000, so
  a few customers have thousands and most a handful; 5% have none at all;
- heavy-tailed spend: a lognormal amount per transaction around a lognormal customer scale;
- integer ids with gaps (account numbers from 10,000,000 with a fifth of them closed);
- a time-ordered export in row groups of 128Ki rows (the 12-month window can skip the
  older half by statistics).

It writes customers.parquet, transactions.parquet and policy.toml: a recency / frequency /
monetary composite (20/30/50, recency lower-is-better) with the 1/19/30/50 pyramid, which
bench/duckdb_pyramid.py --shape skewed computes the same way in DuckDB.
"""
import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

POLICY = """\
# Benchmark policy for bench/skewed.py's data: recency / frequency / monetary composite
# (20/30/50) and the 1/19/30/50 pyramid. bench/duckdb_pyramid.py --shape skewed is the same
# logic in DuckDB.

[policy]
name = "Benchmark (skewed data): RFM composite + pyramid"
as_of = "2026-10-31"

[sources.customers]
path = "customers.parquet"
key = "customer_id"

[sources.transactions]
path = "transactions.parquet"
key = "customer_id"
time = "date"

[metrics.days_since_last]
source = "transactions"
expr = "days_between(max(date), $as_of)"

[metrics.orders_12m]
source = "transactions"
expr = "count(*)"
window = "12 months"
default = 0

[metrics.spend_12m]
source = "transactions"
expr = "sum(amount)"
window = "12 months"
default = 0

[scores.rfm]
kind = "weighted"
normalize = "percentile"
scale = 100

[[scores.rfm.parts]]
metric = "days_since_last"
weight = 0.2
lower_is_better = true

[[scores.rfm.parts]]
metric = "orders_12m"
weight = 0.3

[[scores.rfm.parts]]
metric = "spend_12m"
weight = 0.5

[ladders.pyramid]
rank_by = "rfm"
value = "spend_12m"

[[ladders.pyramid.levels]]
name = "key"
top_share = 0.01

[[ladders.pyramid.levels]]
name = "major"
top_share = 0.19

[[ladders.pyramid.levels]]
name = "ordinary"
top_share = 0.30

[[ladders.pyramid.levels]]
name = "small"
rest = true
"""

MAX_PER_CUSTOMER = 20_000
ROW_GROUP = 128 * 1024
# Two years of days up to as_of 2026-10-31: 2024-11-01 .. 2026-10-31.
FIRST_DAY = np.datetime64("2024-11-01")
DAYS = int((np.datetime64("2026-11-01") - FIRST_DAY).astype(int))


def per_customer(rng, customers, transactions):
    """Transactions per customer: Pareto-tailed, capped, 5% zero, summing to `transactions`."""
    shape = rng.pareto(1.1, customers)
    active = rng.random(customers) >= 0.05
    lo, hi = 1e-3, 1e3
    for _ in range(60):  # the scale that makes the capped counts add up
        mid = (lo * hi) ** 0.5
        n = np.where(active, np.minimum(1 + np.floor(shape * mid), MAX_PER_CUSTOMER), 0)
        lo, hi = (mid, hi) if n.sum() < transactions else (lo, mid)
    n = n.astype(np.int64)
    # Trim or pad the last few at random to hit the total exactly.
    diff = transactions - int(n.sum())
    idx = rng.choice(np.flatnonzero(active), abs(diff), replace=True)
    np.add.at(n, idx, 1 if diff > 0 else -1)
    return np.clip(n, 0, None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--transactions", type=int, default=20_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("out")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(a.seed)

    ids = np.sort(rng.choice(a.customers * 5 // 4, a.customers, replace=False)) + 10_000_000
    segment = rng.choice(np.array(["retail", "business", "private"]), a.customers, p=[0.7, 0.25, 0.05])
    pq.write_table(pa.table({"customer_id": pa.array(ids, pa.int64()), "segment": segment}),
                   out / "customers.parquet", row_group_size=ROW_GROUP)

    counts = per_customer(rng, a.customers, a.transactions)
    cust = np.repeat(np.arange(a.customers), counts)
    scale = rng.lognormal(3.0, 1.2, a.customers)
    amount = np.round(scale[cust] * rng.lognormal(0.0, 1.0, cust.size), 2)
    cost = np.round(amount * rng.uniform(0.5, 0.95, cust.size), 2)
    # Each customer is active from some day on; their purchases fall after it.
    start = rng.integers(0, DAYS, a.customers)
    day = start[cust] + np.floor(rng.random(cust.size) * (DAYS - start[cust])).astype(np.int64)
    order = np.argsort(day, kind="stable")
    table = pa.table({
        "customer_id": pa.array(ids[cust[order]], pa.int64()),
        "date": pa.array((FIRST_DAY + day[order]).astype("datetime64[D]"), pa.date32()),
        "amount": pa.array(amount[order], pa.float64()),
        "cost": pa.array(cost[order], pa.float64()),
    })
    pq.write_table(table, out / "transactions.parquet", row_group_size=ROW_GROUP)
    (out / "policy.toml").write_text(POLICY)
    top = np.sort(counts)[::-1]
    print(f"{a.customers:,} customers ({int((counts == 0).sum()):,} without transactions), "
          f"{int(counts.sum()):,} transactions; per customer: median {int(np.median(counts))}, "
          f"max {int(top[0]):,}, over 1,000: {int((counts > 1000).sum()):,}")


if __name__ == "__main__":
    main()
