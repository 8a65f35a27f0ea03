-- What people enter: level overrides with expiry, scorecard inputs, tags; and who did what.
CREATE TABLE overrides (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id TEXT NOT NULL,
    ladder TEXT NOT NULL,
    level TEXT NOT NULL,
    mode TEXT NOT NULL,
    reason TEXT NOT NULL,
    until TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    removed_by TEXT,
    removed_at TEXT
);
CREATE INDEX overrides_by_customer ON overrides (customer_id);

CREATE TABLE manual_inputs (
    customer_id TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    reason TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (customer_id, field)
);

CREATE TABLE tags (
    customer_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    reason TEXT NOT NULL,
    added_by TEXT NOT NULL,
    added_at TEXT NOT NULL,
    PRIMARY KEY (customer_id, tag)
);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    origin TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL
);
