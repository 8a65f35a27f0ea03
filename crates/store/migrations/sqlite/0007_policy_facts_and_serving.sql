-- Customer facts (owner, tags) belong to the policy whose run produced them: a second
-- policy's run no longer overwrites who owns a customer under the first.
CREATE TABLE customer_facts_by_policy (
    policy_name TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    owner TEXT,
    tags TEXT NOT NULL,
    run_id BIGINT NOT NULL,
    PRIMARY KEY (policy_name, customer_id)
);
INSERT INTO customer_facts_by_policy (policy_name, customer_id, owner, tags, run_id)
    SELECT r.policy_name, f.customer_id, f.owner, f.tags, f.run_id
    FROM customer_facts f JOIN runs r ON r.id = f.run_id;
DROP TABLE customer_facts;
ALTER TABLE customer_facts_by_policy RENAME TO customer_facts;
CREATE INDEX customer_facts_by_owner ON customer_facts (policy_name, owner);

-- A retired run stays in the history but is no longer served, diffed against or held from.
ALTER TABLE runs ADD COLUMN retired_at TEXT;
ALTER TABLE runs ADD COLUMN retired_by TEXT;

-- The run an operator pinned for serving; without a row the latest recorded run is served.
CREATE TABLE served_runs (
    policy_name TEXT PRIMARY KEY,
    run_id BIGINT NOT NULL,
    pinned_by TEXT NOT NULL,
    pinned_at TEXT NOT NULL
);

-- A run's metrics per customer, in chunks of 1,000 customers in id order (a zstd-compressed
-- Arrow IPC stream each, its columns the policy's metrics): what `explain` over the API
-- answers from without recomputing the policy.
CREATE TABLE metric_chunks (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    first_customer TEXT NOT NULL,
    metrics BLOB NOT NULL,
    PRIMARY KEY (run_id, first_customer)
);
