-- vipanel schema v1 (SQLite dialect). Same meaning as migrations/postgres/0001_init.sql.
-- Never edit a landed migration: add a new one.

CREATE TABLE tenants (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE users (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'owner', 'operator', 'viewer')),
    locked      BOOLEAN NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);
CREATE INDEX users_tenant ON users(tenant_id);

CREATE TABLE ssh_keys (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    fingerprint   TEXT NOT NULL UNIQUE,
    algorithm     TEXT NOT NULL,
    public_key    TEXT NOT NULL,
    comment       TEXT NOT NULL DEFAULT '',
    created_at    TEXT NOT NULL,
    last_used_at  TEXT
);
CREATE INDEX ssh_keys_user ON ssh_keys(user_id);

CREATE TABLE servers (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    INTEGER REFERENCES tenants(id),
    name         TEXT NOT NULL UNIQUE,
    provider     TEXT NOT NULL,
    provider_id  TEXT,
    status       TEXT NOT NULL,
    server_type  TEXT,
    location     TEXT,
    image        TEXT,
    ipv4         TEXT,
    ipv6         TEXT,
    created_at   TEXT NOT NULL
);
CREATE INDEX servers_tenant ON servers(tenant_id);

CREATE TABLE sites (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    INTEGER NOT NULL REFERENCES tenants(id),
    server_id    INTEGER NOT NULL REFERENCES servers(id),
    domain       TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL CHECK (kind IN ('php', 'static', 'proxy')),
    php_version  TEXT,
    upstream     TEXT,
    status       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX sites_tenant ON sites(tenant_id);

-- Every name a site answers to besides its domain; unique across all sites' aliases.
CREATE TABLE site_aliases (
    site_id  INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    name     TEXT NOT NULL UNIQUE
);
CREATE INDEX site_aliases_site ON site_aliases(site_id);

-- Who did what, from where, with what result. Names, not foreign keys: history outlives objects.
-- Tamper-evident: `hash` = SHA-256 over `prev_hash` and the canonical row (see src/store/audit_chain.rs);
-- `seq` numbers the chain without gaps. Rows can be appended, never changed or deleted.
CREATE TABLE audit_log (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    at               TEXT NOT NULL,
    actor            TEXT NOT NULL,
    tenant           TEXT NOT NULL,
    role             TEXT NOT NULL,
    key_fingerprint  TEXT,
    source           TEXT NOT NULL,
    action           TEXT NOT NULL,
    target           TEXT NOT NULL,
    result           TEXT NOT NULL,
    detail           TEXT NOT NULL DEFAULT '',
    seq              INTEGER NOT NULL UNIQUE,
    prev_hash        TEXT NOT NULL,
    hash             TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_tenant ON audit_log(tenant, at);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
