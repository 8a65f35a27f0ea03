-- Runs and per-customer results. A run becomes visible only when its transaction commits.
CREATE TABLE runs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    policy_name TEXT NOT NULL,
    policy_file TEXT NOT NULL,
    policy_text TEXT NOT NULL,
    policy_hash TEXT NOT NULL,
    as_of TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    customers BIGINT NOT NULL,
    inputs TEXT NOT NULL,
    recorded_by TEXT NOT NULL
);
CREATE INDEX runs_by_policy ON runs (policy_name, as_of);

CREATE TABLE assignments (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    ladder TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    level TEXT NOT NULL,
    rule_level TEXT NOT NULL,
    score DOUBLE PRECISION,
    rank BIGINT,
    value DOUBLE PRECISION,
    activity DOUBLE PRECISION,
    held_level TEXT,
    since TEXT,
    last_qualified TEXT,
    below_runs BIGINT,
    below_since TEXT,
    above_runs BIGINT,
    explanation TEXT NOT NULL,
    PRIMARY KEY (run_id, ladder, customer_id)
);
CREATE INDEX assignments_by_customer ON assignments (customer_id, run_id);
