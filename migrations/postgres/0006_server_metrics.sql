-- Server metrics (PostgreSQL dialect). Same meaning as migrations/sqlite/0006_server_metrics.sql.
-- Never edit a landed migration: add a new one. Depends only on 0001 (`servers`), not on 0005:
-- sqlx applies every embedded migration not applied yet, in version order, without requiring
-- the versions to be contiguous, so a database that has 0006 gets 0005 later as usual.

-- One row per sample (`raw`) or per roll-up bucket (`5m`, `1h`: averages of the raw samples in
-- the bucket, `samples` of them). `at` is milliseconds since the Unix epoch (UTC): an integer
-- buckets with the same arithmetic on both databases, and samples may come faster than once a
-- second. For a roll-up it is the start of its bucket. A metric the source could not read is NULL.
-- Compact types: REAL (4 bytes) for percentages, loads and rates; BIGINT for byte counts.
-- The primary key covers "the newest sample of a server" and "a server's samples in a range":
-- both are one search of it (see docs/metrics.md).
CREATE TABLE server_metrics (
    server_id           BIGINT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    resolution          TEXT NOT NULL CHECK (resolution IN ('raw', '5m', '1h')),
    at                  BIGINT NOT NULL,
    cpu_pct             REAL,
    load1               REAL,
    load5               REAL,
    load15              REAL,
    mem_used_bytes      BIGINT,
    mem_total_bytes     BIGINT,
    disk_used_bytes     BIGINT,
    disk_total_bytes    BIGINT,
    net_rx_bytes_per_s  REAL,
    net_tx_bytes_per_s  REAL,
    samples             INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (server_id, resolution, at)
);
