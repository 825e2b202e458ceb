-- vipanel schema v8 (PostgreSQL dialect): per-user UI preferences and imported UI files.
-- Same meaning as migrations/sqlite/0008_ui_preferences.sql.
-- Never edit a landed migration: add a new one.

-- A user's choices for the TUI. No row means every default (theme and keymap `default`,
-- refresh every 5 seconds, normal bandwidth); a row holds all four.
CREATE TABLE ui_preferences (
    user_id       BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    theme         TEXT NOT NULL DEFAULT 'default',
    keymap        TEXT NOT NULL DEFAULT 'default',
    refresh_secs  INTEGER NOT NULL DEFAULT 5,
    bandwidth     TEXT NOT NULL DEFAULT 'normal' CHECK (bandwidth IN ('low', 'normal')),
    updated_at    TIMESTAMPTZ NOT NULL
);

-- Themes and keymaps a user imported (TOML, validated before it is stored).
CREATE TABLE ui_files (
    user_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('theme', 'keymap')),
    name        TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, kind, name)
);
