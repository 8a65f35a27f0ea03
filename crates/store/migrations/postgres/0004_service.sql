-- Service: who may use the API, the benefit redemption ledger, call-back tasks, and what the
-- latest run knew of each customer that service needs: its owner (the agent who may read
-- and redeem for it) and its tags from the data (blacklisted callers are served last).
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    disabled_at TEXT
);

-- An API key is "stk_<id>_<secret>"; only an argon2 hash of the secret is kept.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users (name),
    secret_hash TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE redemptions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id TEXT NOT NULL,
    benefit TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    level TEXT NOT NULL,
    redeemed_at TEXT NOT NULL,
    expires_at TEXT,
    idempotency_key TEXT UNIQUE,
    request TEXT NOT NULL,
    status TEXT NOT NULL,
    created_by TEXT NOT NULL,
    origin TEXT NOT NULL,
    cancelled_by TEXT,
    cancelled_at TEXT
);
CREATE INDEX redemptions_by_customer ON redemptions (customer_id, benefit, redeemed_at);

-- One row per customer and benefit, written first in every redemption's transaction: the
-- row lock (PostgreSQL) or the write lock (SQLite) makes check-then-insert safe under
-- concurrency, so a quota is never exceeded.
CREATE TABLE quota_locks (
    customer_id TEXT NOT NULL,
    benefit TEXT NOT NULL,
    touches BIGINT NOT NULL,
    PRIMARY KEY (customer_id, benefit)
);

CREATE TABLE callbacks (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id TEXT NOT NULL,
    level TEXT NOT NULL,
    missed_at TEXT NOT NULL,
    due_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    done_at TEXT,
    done_by TEXT
);
CREATE INDEX callbacks_open ON callbacks (done_at, due_at);

CREATE TABLE customer_facts (
    customer_id TEXT PRIMARY KEY,
    owner TEXT,
    tags TEXT NOT NULL,
    run_id BIGINT NOT NULL
);
CREATE INDEX customer_facts_by_owner ON customer_facts (owner);
