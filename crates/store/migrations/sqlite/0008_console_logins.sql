-- Console logins: a password per user (an argon2id PHC string; NULL: the user signs in with
-- API keys only) and the sessions of signed-in browsers, kept here so they survive a
-- restart. A session is found by the SHA-256 digest of its cookie, never the cookie itself.
ALTER TABLE users ADD COLUMN password_hash TEXT;
CREATE TABLE sessions (
    token_digest TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_seen TEXT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_name);

-- Each recorded run's ladder summaries (the pyramids, the Pareto figure, the Lorenz curve),
-- as JSON written by the runner: the console's dashboard reads them instead of a million
-- standings.
CREATE TABLE run_summaries (
    run_id BIGINT NOT NULL,
    ladder TEXT NOT NULL,
    summary TEXT NOT NULL,
    PRIMARY KEY (run_id, ladder)
);
