-- Customer facts (owner, tags) kept with the run that computed them, in chunks of 1,000
-- customers in id order (a zstd-compressed Arrow IPC stream of customer_id, owner, tags
-- each), instead of a row per customer upserted by every run. A policy's current facts are
-- those of its latest run that recorded any. `stratum migrate` moves the rows of
-- customer_facts into chunks of each policy's latest run with facts before migration 12
-- drops that table.
CREATE TABLE fact_chunks (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    first_customer TEXT NOT NULL,
    facts BLOB NOT NULL,
    PRIMARY KEY (run_id, first_customer)
);
