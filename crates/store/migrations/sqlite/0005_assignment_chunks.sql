-- A run's per-customer results, per ladder in chunks of 1,000 customers in id order: each
-- chunk's standings and explanations are zstd-compressed Arrow IPC streams (see
-- src/chunks.rs). One row per customer made recording a million customers slower than the
-- run itself. `stratum migrate` converts the rows of `assignments` into chunks, run by run,
-- before migration 6 drops that table.
CREATE TABLE assignment_chunks (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    ladder TEXT NOT NULL,
    -- The chunk holding a customer is the one with the greatest first_customer <= its id
    -- (byte order).
    first_customer TEXT NOT NULL,
    customers BIGINT NOT NULL,
    standings BLOB NOT NULL,
    explanations BLOB NOT NULL,
    PRIMARY KEY (run_id, ladder, first_customer)
);
