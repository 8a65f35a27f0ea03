-- The sales pipeline: each prospect's class, rep and contact dates (one row per customer),
-- every logged interaction, and every class change with who, when and why.
CREATE TABLE prospects (
    customer_id TEXT PRIMARY KEY,
    rep TEXT NOT NULL,
    class TEXT NOT NULL,
    class_since TEXT NOT NULL,
    last_contact TEXT,
    next_contact TEXT,
    intent TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX prospects_by_rep ON prospects (rep);

CREATE TABLE interactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id TEXT NOT NULL,
    rep TEXT NOT NULL,
    on_date TEXT NOT NULL,
    at TEXT NOT NULL,
    channel TEXT NOT NULL,
    outcome TEXT NOT NULL,
    intent TEXT,
    class TEXT,
    next_contact TEXT,
    notes TEXT NOT NULL,
    recorded_by TEXT NOT NULL
);
CREATE INDEX interactions_by_customer ON interactions (customer_id, at);
CREATE INDEX interactions_by_rep ON interactions (rep, on_date);

CREATE TABLE class_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id TEXT NOT NULL,
    from_class TEXT,
    to_class TEXT NOT NULL,
    on_date TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX class_changes_by_customer ON class_changes (customer_id, id);
