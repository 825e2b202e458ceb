#!/usr/bin/env bash
# Cross-node event latency benchmark: how long a change made through node A takes to reach a
# follower (`audit list --follow`) on node B, with two real `vipanel serve` daemons sharing one
# PostgreSQL database, measured end to end over SSH on 127.0.0.1.
#
#   bash benches/event_latency.sh --database URL [--redis URL] [--binary PATH] [--changes N]
#                                 [--interval MS] [--markdown]
#
#   --database URL  a PostgreSQL URL (postgres://USER:PASSWORD@HOST:PORT/DB) whose role may
#                   create databases: the benchmark creates its own database
#                   `vipanel_bench_lat_<pid>` on that server, uses it for both nodes and drops it
#                   at the end (the database named in the URL is only connected to, never
#                   written)
#   --redis URL     a Redis URL (redis://HOST:PORT) both nodes share (`redis_url`, under a key
#                   prefix of this run's own); default: none, events go through the database
#   --binary PATH   vipanel binary (default target/release/vipanel, built with
#                   `cargo build --release` if missing)
#   --changes N     changes made through node A, one after the other (default 200)
#   --interval MS   `audit.follow_interval_ms` of both nodes (default 500, the daemon's default)
#   --markdown      also print a markdown table row (for docs/benchmarks.md)
#
# Setup: node A starts first (temporary data dir, the fresh database, `auth.totp = "off"`,
# penalties off) and creates the shared SSH host key file; node B then starts on the same
# database, host key file and secret key file (VIPANEL_DATABASE_URL, VIPANEL_HOST_KEY_FILE,
# VIPANEL_AUTH__SECRET_KEY_FILE) with a data dir of its own. A's bootstrap admin key (the
# database's first admin) is used on both nodes.
#
# Measured by a python3 client: it runs `ssh -n panel@B audit list --follow --action
# tenant.create -o json` (JSON Lines: one AuditEntry per new row) and timestamps each line it
# reads (time.monotonic()). A first change (`tenant create latwarm`) must show up there before the
# timing starts, which proves the follower is live. Then, one after the other, --changes execs
# `ssh panel@A tenant create latN` (an audited change with its own target), each timed from the
# spawn of ssh (started) to its exit with status 0 (returned). For each change: B saw − A
# returned and B saw − A started, in ms; p50, p99 (nearest rank) and max. A change B's follower
# has not shown within 10 s after its exec returned counts as missed; any missed change fails
# the benchmark. B's follower is woken by its node's trail doorbell (src/service/doorbell.rs):
# B's cache watcher hears A's commit through PostgreSQL's LISTEN, and with --redis A's ring also
# comes through Redis; the follow interval is only the fallback. (Before the doorbells, B saw −
# A returned lay between 0 and one follow interval, its median near half the interval.)
# It can be slightly negative: the row is committed before A's exec reports its exit status and
# closes its channel, so a poll on B may catch it before A's ssh client has exited.
#
# When run as root the session processes run as the account in VIPANEL_SESSION__USER, else
# `vipanel-t-bench` (created by the daemon if missing, removed at the end if this run's daemons
# created it). Everything lives in a temp dir under /tmp, removed on exit, and the benchmark's
# database is dropped. It starts two private vipanel daemons, the python3 client and its ssh
# processes, and stops exactly those (by PID) on exit.
set -euo pipefail

die() { printf 'event_latency: error: %s\n' "$*" >&2; exit 1; }
note() { printf 'event_latency: %s\n' "$*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
# The command line for the markdown output, with a password in a URL masked.
CMDLINE=$(printf '%s' "bash benches/event_latency.sh${*:+ $*}" | sed -E 's#(://[^:/@ ]+:)[^@ ]*@#\1***@#g')

DATABASE=""
REDIS=""
BINARY=""
CHANGES=200
INTERVAL=500
MARKDOWN=0

while [[ $# -gt 0 ]]; do
    case $1 in
        --database) [[ $# -ge 2 ]] || die "--database needs a value"; DATABASE=$2; shift 2 ;;
        --database=*) DATABASE=${1#*=}; shift ;;
        --redis) [[ $# -ge 2 ]] || die "--redis needs a value"; REDIS=$2; shift 2 ;;
        --redis=*) REDIS=${1#*=}; shift ;;
        --binary) [[ $# -ge 2 ]] || die "--binary needs a value"; BINARY=$2; shift 2 ;;
        --binary=*) BINARY=${1#*=}; shift ;;
        --changes) [[ $# -ge 2 ]] || die "--changes needs a value"; CHANGES=$2; shift 2 ;;
        --changes=*) CHANGES=${1#*=}; shift ;;
        --interval) [[ $# -ge 2 ]] || die "--interval needs a value"; INTERVAL=$2; shift 2 ;;
        --interval=*) INTERVAL=${1#*=}; shift ;;
        --markdown) MARKDOWN=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ -n $DATABASE ]] || die "--database URL is required (a PostgreSQL URL whose role has CREATEDB)"
[[ $DATABASE =~ ^postgres(ql)?:// ]] || die "--database must be a postgres:// or postgresql:// URL"
[[ $CHANGES =~ ^[0-9]+$ && $CHANGES -ge 1 ]] || die "--changes must be a positive integer"
[[ $INTERVAL =~ ^[0-9]+$ && $INTERVAL -ge 1 && $INTERVAL -le 60000 ]] \
    || die "--interval must be an integer from 1 to 60000"

BINARY=$(vipanel_binary "$BINARY" "$ROOT")
for tool in ssh ssh-keygen python3 psql timeout; do
    command -v "$tool" >/dev/null || die "$tool not found"
done

# The URL of database NAME on the server of --database (same credentials and parameters).
database_url() {
    python3 - "$DATABASE" "$1" <<'PY'
import sys, urllib.parse
url, name = sys.argv[1], sys.argv[2]
parts = urllib.parse.urlsplit(url)
print(urllib.parse.urlunsplit(parts._replace(path="/" + name)))
PY
}

# ------------------------------------------------------------- cleanup ----

DIR=""
A_PID=""
B_PID=""
VIPANEL_PID=""
CLIENT_PID=""
BENCH_DB=vipanel_bench_lat_$$
DB_CREATED=0

cleanup() {
    local rc=$?
    set +e
    [[ -n $CLIENT_PID ]] && stop_pid "$CLIENT_PID"
    # The follower's ssh, if the client was killed before it could stop it.
    if [[ -n $DIR ]]; then
        local pid
        pid=$(cat "$DIR/follow.pid" 2>/dev/null)
        [[ $pid =~ ^[0-9]+$ && $(cat "/proc/$pid/comm" 2>/dev/null) == ssh ]] && stop_pid "$pid"
    fi
    [[ -n $B_PID ]] && stop_pid "$B_PID"
    [[ -n $A_PID ]] && stop_pid "$A_PID"
    # A daemon start_vipanel gave up on (it dies without stopping it).
    [[ -n $VIPANEL_PID ]] && stop_pid "$VIPANEL_PID"
    remove_bench_account
    if [[ $DB_CREATED -eq 1 ]]; then
        psql -X -q -v ON_ERROR_STOP=1 "$DATABASE" \
            -c "DROP DATABASE IF EXISTS \"$BENCH_DB\" WITH (FORCE)" >/dev/null \
            || note "could not drop the database $BENCH_DB"
    fi
    [[ -n $DIR && -d $DIR ]] && rm -rf -- "$DIR"
    return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_log() { # file [lines]
    [[ -s $1 ]] || return 0
    printf -- '--- last lines of %s:\n' "${1#"$DIR"/}" >&2
    tail -n "${2:-30}" "$1" >&2
}

# --------------------------------------------------------------- setup ----

DIR=$(mktemp -d /tmp/vipanel-event-latency.XXXXXX)
mkdir -m 0700 "$DIR/a" "$DIR/b" "$DIR/shared"

psql -X -q -v ON_ERROR_STOP=1 "$DATABASE" -c "CREATE DATABASE \"$BENCH_DB\"" >/dev/null \
    || die "cannot create the database $BENCH_DB through --database (does its role have CREATEDB?)"
DB_CREATED=1
DB_URL=$(database_url "$BENCH_DB")

ssh-keygen -q -t ed25519 -N '' -C vipanel-bench-admin -f "$DIR/admin"
NODE_ENV=(VIPANEL_INITIAL_ADMIN_KEYS="$DIR/admin.pub" VIPANEL_AUTH__TOTP=off
    VIPANEL_PENALTIES__ENABLED=false VIPANEL_AUDIT__FOLLOW_INTERVAL_MS="$INTERVAL"
    VIPANEL_DATABASE_URL="$DB_URL" VIPANEL_HOST_KEY_FILE="$DIR/shared/ssh_host_ed25519_key"
    VIPANEL_AUTH__SECRET_KEY_FILE="$DIR/shared/secret.key")
if [[ -n $REDIS ]]; then
    NODE_ENV+=(VIPANEL_REDIS_URL="$REDIS" VIPANEL_REDIS_KEY_PREFIX="vipanel-bench-$$:")
fi

note "starting node A"
start_vipanel "$BINARY" "$DIR/a" "${NODE_ENV[@]}"
A_PID=$VIPANEL_PID A_PORT=$PORT VIPANEL_PID=""
[[ -f $DIR/shared/ssh_host_ed25519_key ]] || die "node A did not create the shared host key"
note "starting node B"
start_vipanel "$BINARY" "$DIR/b" "${NODE_ENV[@]}"
B_PID=$VIPANEL_PID B_PORT=$PORT VIPANEL_PID=""

# ------------------------------------------------------------ the client ----

cat >"$DIR/client.py" <<'PY'
import json, os, signal, subprocess, sys, threading, time

(a_port, b_port, key, changes, interval, markdown, pid_file, cmdline, redis) = sys.argv[1:10]
changes, markdown = int(changes), markdown == "1"
MISS_AFTER = 10.0

def ssh(port, *args):
    return ["ssh", "-F", "/dev/null", "-p", port, "-i", key, "-o", "IdentitiesOnly=yes",
            "-o", "IdentityAgent=none", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
            "-o", "ControlMaster=no", "-o", "ControlPath=none", "-o", "ConnectTimeout=10",
            "-T", "-n", "panel@127.0.0.1", *args]

follower = subprocess.Popen(
    ssh(b_port, "audit", "list", "--follow", "--action", "tenant.create", "-o", "json"),
    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
with open(pid_file, "w") as f:
    f.write(f"{follower.pid}\n")

def stop_follower(*_):
    if follower.poll() is None:
        follower.terminate()
        try:
            follower.wait(5)
        except subprocess.TimeoutExpired:
            follower.kill()
            follower.wait()

def on_term(*_):
    stop_follower()
    sys.exit(143)
signal.signal(signal.SIGTERM, on_term)

seen = {}                 # target -> monotonic time B's follower printed its row
cond = threading.Condition()
bad_lines = []

def read_follower():
    for line in follower.stdout:
        t = time.monotonic()
        try:
            target = json.loads(line)["target"]
        except (ValueError, KeyError, TypeError):
            bad_lines.append(line[:200])
            continue
        with cond:
            seen.setdefault(target, t)
            cond.notify_all()
    with cond:
        cond.notify_all()
reader = threading.Thread(target=read_follower, daemon=True)
reader.start()

def fail(msg):
    stop_follower()
    err = follower.stderr.read().decode(errors="replace")[-400:] if follower.stderr else ""
    sys.exit(f"event_latency: {msg}" + (f"\nfollower's stderr: {err}" if err else ""))

def change(name):
    t0 = time.monotonic()
    r = subprocess.run(ssh(a_port, "tenant", "create", name), stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    t1 = time.monotonic()
    if r.returncode != 0:
        fail(f"`tenant create {name}` on node A exited with {r.returncode}: "
             f"{r.stderr.decode(errors='replace')[-400:]}")
    return t0, t1

def wait_seen(names, deadline):
    with cond:
        while not all(n in seen for n in names):
            left = deadline - time.monotonic()
            if left <= 0 or follower.poll() is not None and not reader.is_alive():
                return
            cond.wait(min(left, 0.5))

# The follower is live once it shows a first change.
_, t1 = change("latwarm")
wait_seen(["latwarm"], t1 + 20)
if "latwarm" not in seen:
    fail("node B's follower did not show the first change within 20 s")

timed = []
for i in range(1, changes + 1):
    name = f"lat{i}"
    t0, t1 = change(name)
    timed.append((name, t0, t1))
wait_seen([n for n, _, _ in timed], timed[-1][2] + MISS_AFTER)
stop_follower()

after_return, after_start, missed = [], [], []
for name, t0, t1 in timed:
    t = seen.get(name)
    if t is None or t - t1 > MISS_AFTER:
        missed.append(name)
        continue
    after_return.append((t - t1) * 1000)
    after_start.append((t - t0) * 1000)
exec_ms = sorted((t1 - t0) * 1000 for _, t0, t1 in timed)

def pct(values, p):
    values = sorted(values)
    rank = max(1, -(-len(values) * p // 100))   # nearest rank
    return values[int(rank) - 1]

def row(label, values):
    if not values:
        return f"  {label:<32} (none)"
    return (f"  {label:<32} p50 {pct(values, 50):7.1f}   p99 {pct(values, 99):7.1f}   "
            f"max {max(values):7.1f}   min {min(values):7.1f}")

print(f"event latency across two nodes on one PostgreSQL database{' and Redis' if redis else ''},"
      f" follow interval {interval} ms")
print(f"  node A 127.0.0.1:{a_port} (`tenant create latN`, {changes} changes one after the other),"
      f" node B 127.0.0.1:{b_port} (`audit list --follow -o json`)")
print(row("B saw - A's exec returned (ms)", after_return))
print(row("B saw - A's exec started (ms)", after_start))
print(row("A's exec, start to return (ms)", exec_ms))
print(f"  changes not seen on B within {MISS_AFTER:.0f} s: {len(missed)}"
      + (f" ({', '.join(missed[:10])}{' …' if len(missed) > 10 else ''})" if missed else ""))
if bad_lines:
    print(f"  follower lines that were not AuditEntry JSON: {len(bad_lines)} (first: {bad_lines[0]!r})")
if markdown and after_return:
    print(f"\n`{cmdline}`\n")
    print("| Redis | interval ms | changes | p50 | p99 | max |\n| --- | ---: | ---: | ---: | ---: | ---: |")
    print(f"| {'yes' if redis else 'no'} | {interval} | {changes} | {pct(after_return, 50):.1f} ms | "
          f"{pct(after_return, 99):.1f} ms | {max(after_return):.1f} ms |")
    print(f"\n(B saw − A's exec returned; from the exec's start: p50 {pct(after_start, 50):.1f} ms, "
          f"p99 {pct(after_start, 99):.1f} ms, max {max(after_start):.1f} ms)")
if missed:
    sys.exit(f"event_latency: {len(missed)} of {changes} changes not seen on node B within "
             f"{MISS_AFTER:.0f} s")
PY

note "measuring $CHANGES changes (follow interval $INTERVAL ms)"
rc=0
python3 "$DIR/client.py" "$A_PORT" "$B_PORT" "$DIR/admin" "$CHANGES" "$INTERVAL" "$MARKDOWN" \
    "$DIR/follow.pid" "$CMDLINE" "$REDIS" &
CLIENT_PID=$!
wait "$CLIENT_PID" || rc=$?
CLIENT_PID=""
if [[ $rc -ne 0 ]]; then
    show_log "$DIR/a/vipanel.err" 10
    show_log "$DIR/b/vipanel.err" 10
    exit "$rc"
fi
