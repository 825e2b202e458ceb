-- vipanel schema v2 (PostgreSQL dialect): second factor, lockouts, automation keys, audit
-- retention and flags. Same meaning as migrations/sqlite/0002_login_security.sql.
-- Never edit a landed migration: add a new one.

CREATE TABLE user_totp (
    user_id      BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret       TEXT NOT NULL,
    last_step    BIGINT,
    enrolled_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE recovery_codes (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id   BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    hash      TEXT NOT NULL,
    used_at   TIMESTAMPTZ
);
CREATE INDEX recovery_codes_user ON recovery_codes(user_id);

CREATE TABLE enroll_codes (
    user_id     BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    hash        TEXT NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE second_step_failures (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id  BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX second_step_failures_user ON second_step_failures(user_id, at);

ALTER TABLE users ADD COLUMN locked_until TIMESTAMPTZ;

CREATE TABLE user_networks (
    user_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    network     TEXT NOT NULL,
    first_seen  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, network)
);

ALTER TABLE ssh_keys ADD COLUMN automation BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE ssh_keys ADD COLUMN allowed_from TEXT NOT NULL DEFAULT '';
ALTER TABLE ssh_keys ADD COLUMN max_role TEXT
    CHECK (max_role IS NULL OR max_role IN ('admin', 'owner', 'operator', 'viewer'));

ALTER TABLE audit_log ADD COLUMN command TEXT;
ALTER TABLE audit_log ADD COLUMN exit_code INTEGER;
ALTER TABLE audit_log ADD COLUMN flag TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_log_flagged ON audit_log(seq) WHERE flag <> '';

CREATE TABLE audit_checkpoints (
    seq         BIGINT PRIMARY KEY,
    hash        TEXT NOT NULL,
    pruned_at   TIMESTAMPTZ NOT NULL,
    cutoff      TIMESTAMPTZ NOT NULL,
    rows        BIGINT NOT NULL
);

CREATE FUNCTION audit_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_checkpoints is append-only';
END
$$;
CREATE TRIGGER audit_checkpoints_no_change BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_append_only();

-- Rows may now go, but only those a checkpoint already covers (retention pruning).
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM audit_checkpoints WHERE seq >= OLD.seq) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only; only rows behind a retention checkpoint can be pruned';
END
$$;

-- TRUNCATE skips row triggers: refuse it on both tables.
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_append_only();
