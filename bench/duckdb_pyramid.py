"""The benchmark policy (10/30/60 composite + 1/19/30/50 pyramid) as one DuckDB query.

Usage: duckdb_pyramid.py DATA_DIR OUT_PARQUET [THREADS]
Same semantics as stratum: 12-month windows ending with as_of 2026-10-31 (inclusive),
missing revenue/profit 0, missing on-time rate 1.0, percent_rank normalisation, rank by score
descending then customer id as text, quota boundaries at round(N x cumulative share).
"""
import sys

import duckdb

data, out = sys.argv[1], sys.argv[2]
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 0
con = duckdb.connect()
if threads:
    con.execute(f"SET threads = {threads}")
con.execute("SET preserve_insertion_order = false")
con.execute(
    f"""
COPY (
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
