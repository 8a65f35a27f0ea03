"""The benchmark policies as one DuckDB query each, the same logic stratum runs.

Usage: duckdb_pyramid.py DATA_DIR OUT_PARQUET [THREADS] [SHAPE]
SHAPE `gen` (default): `stratum gen`'s data and bench.toml, the 10/30/60 composite + 1/19/30/50
pyramid. SHAPE `skewed`: bench/skewed.py's data and policy.toml, the 20/30/50 recency /
frequency / monetary composite + the same pyramid.
Same semantics as stratum: 12-month windows ending with as_of 2026-10-31 (inclusive),
missing sums and counts 0, missing on-time rate 1.0, percent_rank normalisation (a missing
value 0 points; lower-is-better ranks from the top), rank by score descending then customer
id, quota boundaries at round(N x cumulative share).
"""
import sys

import duckdb

data, out = sys.argv[1], sys.argv[2]
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 0
shape = sys.argv[4] if len(sys.argv) > 4 else "gen"
con = duckdb.connect()
if threads:
    con.execute(f"SET threads = {threads}")
con.execute("SET preserve_insertion_order = false")
GEN = f"""
WITH tx AS (
  SELECT customer_id, sum(amount) AS revenue_12m, sum(amount - cost) AS profit_12m
  FROM read_parquet('{data}/transactions.parquet')
  WHERE date >= DATE '2025-11-01' AND date < DATE '2026-11-01'
  GROUP BY customer_id
), inv AS (
  SELECT customer_id,
         avg(CASE WHEN paid_date IS NOT NULL AND paid_date <= due_date THEN 1.0 ELSE 0.0 END) AS on_time_rate
  FROM read_parquet('{data}/invoices.parquet')
  WHERE issued >= DATE '2025-11-01' AND issued < DATE '2026-11-01'
  GROUP BY customer_id
), m AS (
  -- Rounded to 6 decimals, as stratum does, so summation order cannot split ties.
  SELECT CAST(c.customer_id AS VARCHAR) AS customer_id,
         round(coalesce(tx.revenue_12m, 0)::DOUBLE * 1e6) / 1e6 AS revenue_12m,
         round(coalesce(tx.profit_12m, 0)::DOUBLE * 1e6) / 1e6 AS profit_12m,
         round(coalesce(inv.on_time_rate, 1.0)::DOUBLE * 1e6) / 1e6 AS on_time_rate
  FROM read_parquet('{data}/customers.parquet') c
  LEFT JOIN tx ON tx.customer_id = c.customer_id
  LEFT JOIN inv ON inv.customer_id = c.customer_id
), s AS (
  SELECT customer_id,
         100 * (0.1 * percent_rank() OVER (ORDER BY on_time_rate)
              + 0.3 * percent_rank() OVER (ORDER BY revenue_12m)
              + 0.6 * percent_rank() OVER (ORDER BY profit_12m)) AS score
  FROM m
"""

SKEWED = f"""
WITH last AS (
  SELECT customer_id, date_diff('day', max(date), DATE '2026-10-31') AS days_since_last
  FROM read_parquet('{data}/transactions.parquet')
  WHERE date < DATE '2026-11-01'
  GROUP BY customer_id
), tx AS (
  SELECT customer_id, count(*) AS orders_12m, sum(amount) AS spend_12m
  FROM read_parquet('{data}/transactions.parquet')
  WHERE date >= DATE '2025-11-01' AND date < DATE '2026-11-01'
  GROUP BY customer_id
), m AS (
  SELECT CAST(c.customer_id AS VARCHAR) AS customer_id,
         last.days_since_last,
         coalesce(tx.orders_12m, 0)::DOUBLE AS orders_12m,
         round(coalesce(tx.spend_12m, 0)::DOUBLE * 1e6) / 1e6 AS spend_12m
  FROM read_parquet('{data}/customers.parquet') c
  LEFT JOIN last ON last.customer_id = c.customer_id
  LEFT JOIN tx ON tx.customer_id = c.customer_id
), s AS (
  SELECT customer_id,
         100 * (0.2 * CASE WHEN days_since_last IS NULL THEN 0 ELSE percent_rank() OVER
                         (PARTITION BY days_since_last IS NULL ORDER BY days_since_last DESC) END
              + 0.3 * percent_rank() OVER (ORDER BY orders_12m)
              + 0.5 * percent_rank() OVER (ORDER BY spend_12m)) AS score
  FROM m
"""

con.execute(
    f"""
COPY (
{ {"gen": GEN, "skewed": SKEWED}[shape] }
), r AS (
  SELECT *, row_number() OVER (ORDER BY score DESC, CAST(customer_id AS BIGINT) ASC) AS rnk, count(*) OVER () AS n
  FROM s
)
SELECT customer_id,
       CASE WHEN rnk <= round(n * 0.01) THEN 'key'
            WHEN rnk <= round(n * 0.20) THEN 'major'
            WHEN rnk <= round(n * 0.50) THEN 'ordinary'
            ELSE 'small' END AS level,
       score, rnk AS rank
FROM r
) TO '{out}' (FORMAT parquet)
"""
)
