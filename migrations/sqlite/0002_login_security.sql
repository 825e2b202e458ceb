-- vipanel schema v2 (SQLite dialect): second factor, lockouts, automation keys, audit retention
-- and flags. Same meaning as migrations/postgres/0002_login_security.sql.
-- Never edit a landed migration: add a new one.

-- A user's TOTP secret, encrypted with the daemon's secret key (AEAD; see src/secret/).
-- `last_step` is the last accepted RFC 6238 time step: a step is accepted at most once.
CREATE TABLE user_totp (
    user_id      INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret       TEXT NOT NULL,
    last_step    INTEGER,
    enrolled_at  TEXT NOT NULL
);

-- Single-use recovery codes, stored as argon2id PHC strings.
CREATE TABLE recovery_codes (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    hash      TEXT NOT NULL,
    used_at   TEXT
);
CREATE INDEX recovery_codes_user ON recovery_codes(user_id);

-- The one-time code a user must type to enroll (one live code per user), as an argon2id hash.
CREATE TABLE enroll_codes (
    user_id     INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    hash        TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

-- Failed second steps (wrong code), counted over a window for the per-user lockout.
CREATE TABLE second_step_failures (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    at       TEXT NOT NULL
);
CREATE INDEX second_step_failures_user ON second_step_failures(user_id, at);

-- A temporary lockout after too many failed second steps (`locked` stays the manual lock).
ALTER TABLE users ADD COLUMN locked_until TEXT;

-- Networks a user has logged in from, to flag a first login from a new one.
CREATE TABLE user_networks (
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    network     TEXT NOT NULL,
    first_seen  TEXT NOT NULL,
    PRIMARY KEY (user_id, network)
);

-- Automation keys skip the second step, only from `allowed_from` (comma-separated CIDRs),
-- acting with at most `max_role` (never above their user's role).
ALTER TABLE ssh_keys ADD COLUMN automation BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE ssh_keys ADD COLUMN allowed_from TEXT NOT NULL DEFAULT '';
ALTER TABLE ssh_keys ADD COLUMN max_role TEXT
    CHECK (max_role IS NULL OR max_role IN ('admin', 'owner', 'operator', 'viewer'));

-- The command line (secrets masked) and exit code of a command's row, and why a row is
-- suspicious ('' when it is not). Part of the chained row (see src/store/audit_chain.rs).
ALTER TABLE audit_log ADD COLUMN command TEXT;
ALTER TABLE audit_log ADD COLUMN exit_code INTEGER;
ALTER TABLE audit_log ADD COLUMN flag TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_log_flagged ON audit_log(seq) WHERE flag <> '';

-- Retention: rows up to `seq` were pruned; `hash` is that row's hash, where verification of
-- the remaining chain starts. Append-only like the trail itself.
CREATE TABLE audit_checkpoints (
    seq         INTEGER PRIMARY KEY,
    hash        TEXT NOT NULL,
    pruned_at   TEXT NOT NULL,
    cutoff      TEXT NOT NULL,
    rows        INTEGER NOT NULL
);
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;

-- Rows may now go, but only those a checkpoint already covers (retention pruning).
DROP TRIGGER audit_log_no_delete;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN NOT EXISTS (SELECT 1 FROM audit_checkpoints WHERE seq >= OLD.seq)
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only; only rows behind a retention checkpoint can be pruned');
END;
