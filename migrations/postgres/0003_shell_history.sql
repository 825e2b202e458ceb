-- vipanel schema v3 (PostgreSQL dialect): shell history kept by the daemon, per user.
-- Same meaning as migrations/sqlite/0003_shell_history.sql.
-- Never edit a landed migration: add a new one.

-- Lines typed in the interactive shell, shared by all of a user's sessions. The daemon keeps
-- the newest `session.history_lines` per user and never stores a line that carries a secret.
CREATE TABLE shell_history (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id   BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    line      TEXT NOT NULL,
    at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX shell_history_user ON shell_history(user_id, id);
