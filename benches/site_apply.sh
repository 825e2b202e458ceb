#!/usr/bin/env bash
# Site apply benchmark, `system` host mode for real: a private nginx and PHP-FPM 8.2 in a temp
# tree, a private `vipanel serve` pointed at them (`VIPANEL_HOST__…`), and the OpenSSH client.
#
#   bash benches/site_apply.sh [--runs N] [--sites N] [--reloads N] [--wave N]
#                              [--coalesce-ms MS] [--binary PATH] [--markdown]
#
#   --runs N         sequential `site create` runs per site type (default 20)
#   --sites N        sites in the database for the reconcile and reload figures (default 1000):
#                    the 2×runs of the first part, then static sites up to N (each site takes a
#                    UID and a GID from UID_MIN..UID_MAX of /etc/login.defs; the run refuses more
#                    than are free)
#   --reloads N      timed `nginx -t` runs and nginx reloads with N sites (default 10)
#   --wave N         concurrent creates per wave when filling up to --sites (default 50)
#   --coalesce-ms MS host.coalesce_ms for the daemon (default: the built-in default, 100)
#   --binary PATH    vipanel binary (default target/release/vipanel, built with
#                    `cargo build --release` if missing)
#   --markdown       also print a markdown table (for docs/benchmarks.md)
#
# Measured:
#   1. One site create end to end: `ssh panel@127.0.0.1 site create DOMAIN` over a new
#      connection each time, --runs times for PHP sites (the default type), then --runs times
#      with `--type static`, each a new site, one after the other. Wall clock per ssh process
#      (bash's $EPOCHREALTIME), and the apply's own time from the daemon's `host apply … ms=`
#      log line (which leaves out the coalescing wait, host.coalesce_ms, and the database).
#      Each new site is fetched with curl afterwards (not timed) and must answer 200.
#   2. Static sites up to --sites, created in waves of --wave concurrent `site create`
#      channels through one ControlMaster connection (coalesced into one apply per wave);
#      then `host reconcile` twice: after deleting every generated vhost by hand (a real
#      rebuild: every vhost rewritten, nginx -t, one reload), and again with nothing to change.
#   3. nginx with those vhosts: `nginx -t` on the tree, and a reload timed from `kill -HUP` to
#      "a new worker runs and no old worker is still a plain `worker process`" (the check of
#      the daemon's own reload); the RSS of nginx's master and worker, their PSS together and
#      the master's open files, at start and with the sites; and whether `nginx -t` passes
#      under a soft limit of 1024 open files (systemd's default for services).
#
# VIPANEL_BENCH_KEEP_LOG=FILE copies the daemon's log (its `host apply` lines) to FILE on exit.
#
# Runs as root only: system mode creates an account per site, named vpbench<site number>; the
# run refuses to start when such accounts exist already. Everything lives in a temp dir under
# /tmp (mode 0755 so that www-data and the site accounts can pass through). On exit, also on
# failure, it stops exactly what it started (by PID: the daemon, the ssh master, nginx, and
# PHP-FPM through its pid file, whose PID changes on each reload), removes every vpbench
# account and group and the daemon's session account if it created it, then the temp dir.
set -euo pipefail

die() { printf 'site_apply: error: %s\n' "$*" >&2; exit 1; }
note() { printf 'site_apply: %s\n' "$*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
CMDLINE="bash benches/site_apply.sh${*:+ $*}"
RUNS=20
SITES=1000
RELOADS=10
WAVE=50
COALESCE_MS=""
BINARY=""
MARKDOWN=0
# Where to copy the daemon's log on exit (its `host apply` lines), for a closer look.
KEEP_LOG=${VIPANEL_BENCH_KEEP_LOG:-}
# Site accounts are <prefix><site number>; .ci/run removes leftovers with this prefix.
PREFIX=vpbench
NGINX=/usr/sbin/nginx
PHP_FPM=/usr/sbin/php-fpm8.2

while [[ $# -gt 0 ]]; do
    case $1 in
        --runs) [[ $# -ge 2 ]] || die "--runs needs a value"; RUNS=$2; shift 2 ;;
        --runs=*) RUNS=${1#*=}; shift ;;
        --sites) [[ $# -ge 2 ]] || die "--sites needs a value"; SITES=$2; shift 2 ;;
        --sites=*) SITES=${1#*=}; shift ;;
        --reloads) [[ $# -ge 2 ]] || die "--reloads needs a value"; RELOADS=$2; shift 2 ;;
        --reloads=*) RELOADS=${1#*=}; shift ;;
        --wave) [[ $# -ge 2 ]] || die "--wave needs a value"; WAVE=$2; shift 2 ;;
        --wave=*) WAVE=${1#*=}; shift ;;
        --coalesce-ms) [[ $# -ge 2 ]] || die "--coalesce-ms needs a value"; COALESCE_MS=$2; shift 2 ;;
        --coalesce-ms=*) COALESCE_MS=${1#*=}; shift ;;
        --binary) [[ $# -ge 2 ]] || die "--binary needs a value"; BINARY=$2; shift 2 ;;
        --binary=*) BINARY=${1#*=}; shift ;;
        --markdown) MARKDOWN=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
for pair in "runs:$RUNS" "sites:$SITES" "reloads:$RELOADS" "wave:$WAVE"; do
    [[ ${pair#*:} =~ ^[0-9]+$ && ${pair#*:} -ge 1 ]] || die "--${pair%%:*} must be a positive integer"
done
[[ -z $COALESCE_MS || $COALESCE_MS =~ ^[0-9]+$ ]] || die "--coalesce-ms must be a whole number"

[[ $EUID -eq 0 ]] || die "run as root: system host mode creates a system account per site"
BINARY=$(vipanel_binary "$BINARY" "$ROOT")
[[ -x $NGINX ]] || die "$NGINX not found (apt-get install nginx)"
[[ -x $PHP_FPM ]] || die "$PHP_FPM not found (apt-get install php8.2-fpm)"
for tool in ssh ssh-keygen curl python3 useradd userdel groupdel gpasswd; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
[[ -n ${EPOCHREALTIME:-} ]] || die "bash >= 5 needed (EPOCHREALTIME)"

prefixed() { # passwd|group: the names with the bench prefix and a site number
    getent "$1" | cut -d: -f1 | grep -E "^${PREFIX}[0-9]+\$" || true
}
if [[ -n $(prefixed passwd)$(prefixed group) ]]; then
    die "accounts or groups named $PREFIX<number> exist already (another run, or one that could not clean up): $(prefixed passwd | head -n 3 | tr '\n' ' ')$(prefixed group | head -n 3 | tr '\n' ' ')"
fi

# Site accounts are ordinary accounts (useradd without --system): their ids come from UID_MIN..
# UID_MAX and GID_MIN..GID_MAX of /etc/login.defs, 1000..60000 unless set there, which bounds the
# sites one host can have. Refuse up front a run that cannot fit.
login_def() { # KEY DEFAULT
    local value
    value=$(awk -v key="$1" '$1 == key { v = $2 } END { print v }' /etc/login.defs 2>/dev/null)
    if [[ $value =~ ^[0-9]+$ ]]; then echo "$value"; else echo "$2"; fi
}
free_ids() { # passwd|group MIN MAX: ids in MIN..MAX nobody has
    local used
    used=$(getent "$1" | awk -F: -v lo="$2" -v hi="$3" '$3 >= lo && $3 <= hi { print $3 }' | sort -u | wc -l)
    echo $(($3 - $2 + 1 - used))
}
FREE_UIDS=$(free_ids passwd "$(login_def UID_MIN 1000)" "$(login_def UID_MAX 60000)")
FREE_GIDS=$(free_ids group "$(login_def GID_MIN 1000)" "$(login_def GID_MAX 60000)")
NEEDED=$((SITES > 2 * RUNS ? SITES : 2 * RUNS))
id -u "$BENCH_ACCOUNT" >/dev/null 2>&1 || NEEDED=$((NEEDED + 1)) # the daemon's session account
FITS=$((FREE_UIDS < FREE_GIDS ? FREE_UIDS : FREE_GIDS))
((NEEDED <= FITS)) || die "--sites $SITES needs $NEEDED accounts with a group each, but only \
$FREE_UIDS UIDs and $FREE_GIDS GIDs are free (UID_MIN..UID_MAX and GID_MIN..GID_MAX of \
/etc/login.defs): use --sites $((SITES - NEEDED + FITS)) at most"

# ------------------------------------------------------------- cleanup ----

DIR=""
VIPANEL_PID=""
MASTER_PID=""
WAVE_PIDS=()
NGINX_STARTED=0
PHP_FPM_STARTED=0

# master_pid FILE NAME: the pid in FILE when that process runs and its name starts with NAME.
master_pid() {
    local pid comm
    pid=$(cat "$1" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ && $pid -gt 1 ]] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [[ $comm == "$2"* ]] || return 1
    printf '%s\n' "$pid"
}

# alive PID: the process exists and is no zombie.
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != [ZX] ]]
}

# stop_master FILE NAME SIGNAL: signals the master named in FILE and waits up to 15 s for it
# to go; then kills it and its children.
stop_master() {
    local file=$1 name=$2 signal=$3 pid i child
    pid=$(master_pid "$file" "$name") || return 0
    kill "-$signal" "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 300; i++)); do
        alive "$pid" || return 0
        sleep 0.05
    done
    note "$name (pid $pid) did not stop within 15 s; killing it"
    for child in $(pgrep -P "$pid" || true); do kill -KILL "$child" 2>/dev/null; done
    kill -KILL "$pid" 2>/dev/null || true
}

# Every vpbench account, then every vpbench group left (a site's group outlives userdel while
# www-data is a member). userdel refuses while the account still has processes (PHP workers
# finishing); for 10 s it is retried, then forced.
remove_site_accounts() {
    local deadline=$((SECONDS + 10)) name force=""
    while [[ -n $(prefixed passwd) ]]; do
        ((SECONDS < deadline)) || force=-f
        for name in $(prefixed passwd); do
            userdel $force -- "$name" >/dev/null 2>&1
            rm -f -- "/var/mail/$name"
        done
        [[ -z $force ]] || break
        [[ -z $(prefixed passwd) ]] || sleep 0.1
    done
    for name in $(prefixed group); do
        groupdel -- "$name" >/dev/null 2>&1 || note "could not remove the group $name"
    done
    [[ -z $(prefixed passwd) ]] || note "could not remove the accounts: $(prefixed passwd | tr '\n' ' ')"
}

cleanup() {
    local rc=$? pid
    set +e
    [[ -n $KEEP_LOG && -f $DIR/vipanel.err ]] && cp -- "$DIR/vipanel.err" "$KEEP_LOG"
    if [[ -n $DIR && -S $DIR/ctl ]]; then
        ssh -S "$DIR/ctl" -O exit dummy >/dev/null 2>&1
    fi
    for pid in "${WAVE_PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null && stop_pid "$pid" 15
    done
    [[ -n $MASTER_PID ]] && kill -0 "$MASTER_PID" 2>/dev/null && stop_pid "$MASTER_PID" 15
    [[ -n $VIPANEL_PID ]] && stop_pid "$VIPANEL_PID" 15
    # nginx: fast shutdown; PHP-FPM: graceful (a reload re-executes it: its pid file has the
    # current PID).
    [[ $NGINX_STARTED -eq 1 ]] && stop_master "$DIR/nginx/nginx.pid" nginx TERM
    [[ $PHP_FPM_STARTED -eq 1 ]] && stop_master "$DIR/php/8.2/php-fpm.pid" php-fpm QUIT
    if [[ -n $DIR ]]; then
        local accounts
        accounts=$(prefixed passwd | wc -l)
        [[ $accounts -gt 0 ]] && note "removing $accounts site accounts"
        remove_site_accounts
    fi
    remove_bench_account
    [[ -n $DIR && -d $DIR ]] && rm -rf -- "$DIR"
    return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --------------------------------------------------------------- setup ----

DIR=$(mktemp -d /tmp/vipanel-site-bench.XXXXXX)
chmod 0755 "$DIR"
mkdir -p "$DIR"/{nginx/vipanel/sites,nginx/tmp,php/8.2/pool.d,run/php,srv,log}
for name in mime.types fastcgi_params fastcgi.conf proxy_params; do
    if [[ -f /etc/nginx/$name ]]; then cp "/etc/nginx/$name" "$DIR/nginx/$name"; fi
done
MIME=""
[[ -f $DIR/nginx/mime.types ]] && MIME="    include mime.types;"
cat >"$DIR/nginx/nginx.conf" <<EOF
user www-data;
worker_processes 1;
pid $DIR/nginx/nginx.pid;
error_log $DIR/nginx/error.log notice;

events {
    worker_connections 512;
}

http {
$MIME
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path $DIR/nginx/tmp/client_body;
    proxy_temp_path $DIR/nginx/tmp/proxy;
    fastcgi_temp_path $DIR/nginx/tmp/fastcgi;
    uwsgi_temp_path $DIR/nginx/tmp/uwsgi;
    scgi_temp_path $DIR/nginx/tmp/scgi;
    include $DIR/nginx/vipanel/sites/*.conf;
}
EOF
cat >"$DIR/php/8.2/php-fpm.conf" <<EOF
[global]
pid = $DIR/php/8.2/php-fpm.pid
error_log = $DIR/php/8.2/php-fpm.log
include = $DIR/php/8.2/pool.d/*.conf

; PHP-FPM refuses to start without a pool: an idle placeholder.
[vipanel-bench-idle]
user = nobody
group = nogroup
listen = $DIR/run/php/idle.sock
pm = ondemand
pm.max_children = 1
EOF
chmod -R u=rwX,go=rX "$DIR/nginx" "$DIR/php" "$DIR/run" "$DIR/srv" "$DIR/log"

wait_master() { # pid-file name log
    local i
    for ((i = 0; i < 300; i++)); do
        master_pid "$1" "$2" >/dev/null && return 0
        sleep 0.05
    done
    show_log "$3"
    die "$2 wrote no pid file $1 within 15 s"
}
NGINX_STARTED=1
(cd / && "$NGINX" -p "$DIR/nginx" -c "$DIR/nginx/nginx.conf" -e "$DIR/nginx/error.log") \
    || { show_log "$DIR/nginx/error.log"; die "nginx did not start"; }
wait_master "$DIR/nginx/nginx.pid" nginx "$DIR/nginx/error.log"
PHP_FPM_STARTED=1
(cd / && "$PHP_FPM" -y "$DIR/php/8.2/php-fpm.conf") \
    || { show_log "$DIR/php/8.2/php-fpm.log"; die "php-fpm8.2 did not start"; }
wait_master "$DIR/php/8.2/php-fpm.pid" php-fpm "$DIR/php/8.2/php-fpm.log"

HTTP_PORT=$(free_port)
ssh-keygen -q -t ed25519 -N '' -C bench-admin -f "$DIR/admin"
HOST_ENV=(
    VIPANEL_INITIAL_ADMIN_KEYS="$DIR/admin.pub" VIPANEL_AUTH__TOTP=off VIPANEL_PENALTIES__ENABLED=false
    VIPANEL_LIMITS__MAX_CHANNELS_PER_CONNECTION="$((WAVE + 4))"
    VIPANEL_HOST__MODE=system
    VIPANEL_HOST__HTTP_PORT="$HTTP_PORT"
    VIPANEL_HOST__HTTP_ADDRESSES=127.0.0.1
    VIPANEL_HOST__WEB_ROOT="$DIR/srv"
    VIPANEL_HOST__LOG_DIR="$DIR/log"
    VIPANEL_HOST__NGINX_BINARY="$NGINX"
    VIPANEL_HOST__NGINX_CONF="$DIR/nginx/nginx.conf"
    VIPANEL_HOST__NGINX_PREFIX="$DIR/nginx"
    VIPANEL_HOST__NGINX_DIR="$DIR/nginx/vipanel"
    VIPANEL_HOST__NGINX_INCLUDE=
    VIPANEL_HOST__NGINX_PID_FILE="$DIR/nginx/nginx.pid"
    VIPANEL_HOST__PHP_FPM_CONF="$DIR/php/{version}/php-fpm.conf"
    VIPANEL_HOST__PHP_POOL_DIR="$DIR/php/{version}/pool.d"
    VIPANEL_HOST__PHP_FPM_PID_FILE="$DIR/php/{version}/php-fpm.pid"
    VIPANEL_HOST__PHP_SOCKET_DIR="$DIR/run/php"
    VIPANEL_HOST__RELOAD=signal
    VIPANEL_HOST__USER_PREFIX="$PREFIX"
)
[[ -z $COALESCE_MS ]] || HOST_ENV+=(VIPANEL_HOST__COALESCE_MS="$COALESCE_MS")
start_vipanel "$BINARY" "$DIR" "${HOST_ENV[@]}"
if grep -q 'unknown environment variable' "$DIR/vipanel.err"; then
    show_log "$DIR/vipanel.err"
    die "the daemon ignored an environment variable"
fi

SSH_OPTS=(-F /dev/null -i "$DIR/admin" -o IdentitiesOnly=yes -o IdentityAgent=none
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
    -o BatchMode=yes -T -p "$PORT")
DEST=panel@127.0.0.1

panel() { # args...: one panel command over a new connection; output in $DIR/last.out
    if ! ssh "${SSH_OPTS[@]}" -o ControlMaster=no -o ControlPath=none "$DEST" "$@" \
        </dev/null >"$DIR/last.out" 2>"$DIR/last.err"; then
        note "failed: ssh … $*"
        show_log "$DIR/last.out"; show_log "$DIR/last.err"; show_log "$DIR/vipanel.err"
        show_log "$DIR/nginx/error.log" 10
        exit 1
    fi
}

fetch_ok() { # domain: GET / through our nginx must answer 200
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
        --resolve "$1:$HTTP_PORT:127.0.0.1" "http://$1:$HTTP_PORT/" || true)
    [[ $code == 200 ]] || {
        show_log "$DIR/vipanel.err"; show_log "$DIR/nginx/error.log" 10
        die "http://$1:$HTTP_PORT/ answered '$code' after its create, expected 200"
    }
}

apply_lines() { grep -c 'host apply' "$DIR/vipanel.err" || true; }
last_apply_ms() { grep 'host apply' "$DIR/vipanel.err" | tail -n 1 | sed -n 's/.* ms=\([0-9]*\).*/\1/p'; }

# stats FILE SCALE -> "median p90 min max" (p90: nearest rank), each value divided by SCALE
stats() {
    sort -n "$1" | awk -v scale="$2" '
        { a[NR] = $1 }
        END {
            n = NR
            med = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
            r = int(0.9 * n); if (r < 0.9 * n) r++; if (r < 1) r = 1
            printf "%.1f %.1f %.1f %.1f\n", med / scale, a[r] / scale, a[1] / scale, a[n] / scale
        }'
}

# nginx_memory -> "master_rss worker_rss pss master_open_files": RSS of the master and of its
# workers (summed), PSS of all of them together (their configuration pages are shared after the
# fork), in KiB; call it once the old workers of a reload have gone.
nginx_memory() {
    local pid rss_master rss_workers=0 pss=0 proc files
    pid=$(master_pid "$DIR/nginx/nginx.pid" nginx) || die "nginx is not running"
    rss_master=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
    for proc in "$pid" $(pgrep -P "$pid" || true); do
        [[ $proc == "$pid" ]] \
            || rss_workers=$((rss_workers + $(awk '/^VmRSS:/ { print $2 }' "/proc/$proc/status" 2>/dev/null || echo 0)))
        pss=$((pss + $(awk '/^Pss:/ { print $2 }' "/proc/$proc/smaps_rollup" 2>/dev/null || echo 0)))
    done
    files=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
    echo "$rss_master $rss_workers $pss $files"
}

# settle_nginx: waits (at most 10 s) until no nginx worker is shutting down.
settle_nginx() {
    local pid i
    pid=$(master_pid "$DIR/nginx/nginx.pid" nginx) || die "nginx is not running"
    for ((i = 0; i < 200; i++)); do
        pgrep -P "$pid" -f 'shutting down' >/dev/null || return 0
        sleep 0.05
    done
}

read -r MEM0_MASTER MEM0_WORKERS PSS0 FILES0 < <(nginx_memory)

# ---------------------------------------------------- 1. one create -------

create_runs() { # kind: RUNS sequential creates of that kind
    local kind=$1 i domain before t0 t1 ms
    local -a type=()
    [[ $kind == static ]] && type=(--type static)
    : >"$DIR/create-$kind.us"
    : >"$DIR/apply-$kind.ms"
    for ((i = 1; i <= RUNS; i++)); do
        domain=$kind$i.example
        before=$(apply_lines)
        t0=$EPOCHREALTIME
        panel site create "$domain" "${type[@]}"
        t1=$EPOCHREALTIME
        echo $((${t1//[.,]/} - ${t0//[.,]/})) >>"$DIR/create-$kind.us"
        [[ $(apply_lines) -eq $((before + 1)) ]] \
            || die "expected one 'host apply' log line for the create of $domain, found $(($(apply_lines) - before))"
        ms=$(last_apply_ms)
        [[ -n $ms ]] || die "no ms= in the daemon's 'host apply' line"
        echo "$ms" >>"$DIR/apply-$kind.ms"
        fetch_ok "$domain"
    done
}

note "nginx and php-fpm8.2 in $DIR, nginx on 127.0.0.1:$HTTP_PORT, vipanel on 127.0.0.1:$PORT"
note "1. $RUNS PHP sites, then $RUNS static sites, one create at a time"
panel whoami
create_runs php
create_runs static
read -r PHP_MED PHP_P90 PHP_MIN PHP_MAX < <(stats "$DIR/create-php.us" 1000)
read -r PHP_APPLY_MED PHP_APPLY_P90 _ _ < <(stats "$DIR/apply-php.ms" 1)
read -r STATIC_MED STATIC_P90 STATIC_MIN STATIC_MAX < <(stats "$DIR/create-static.us" 1000)
read -r STATIC_APPLY_MED STATIC_APPLY_P90 _ _ < <(stats "$DIR/apply-static.ms" 1)

# --------------------------------------------- 2. many sites, reconcile ---

BULK=$((SITES - 2 * RUNS))
((BULK > 0)) || BULK=0
BULK_SECS=0
BULK_APPLIES=0
if ((BULK > 0)); then
    note "2. $BULK more static sites, $WAVE at a time through one ControlMaster connection"
    ssh "${SSH_OPTS[@]}" -M -S "$DIR/ctl" -o ControlPersist=600 -fN "$DEST" \
        </dev/null >"$DIR/master.log" 2>&1 || { show_log "$DIR/master.log"; die "no ControlMaster connection"; }
    out=$(ssh -S "$DIR/ctl" -O check dummy 2>&1) || die "ControlMaster not running: $out"
    MASTER_PID=$(sed -n 's/.*pid=\([0-9]*\).*/\1/p' <<<"$out")
    before=$(apply_lines)
    t0=$EPOCHREALTIME
    for ((first = 1; first <= BULK; first += WAVE)); do
        pids=()
        WAVE_PIDS=()
        for ((i = first; i < first + WAVE && i <= BULK; i++)); do
            ssh "${SSH_OPTS[@]}" -o ControlMaster=no -S "$DIR/ctl" "$DEST" \
                site create "bulk$i.example" --type static </dev/null >/dev/null 2>"$DIR/bulk-$i.err" &
            pids+=("$!:$i")
            WAVE_PIDS+=("$!")
        done
        for entry in "${pids[@]}"; do
            if ! wait "${entry%%:*}"; then
                show_log "$DIR/bulk-${entry#*:}.err"; show_log "$DIR/vipanel.err"
                die "site create bulk${entry#*:}.example failed"
            fi
            rm -f "$DIR/bulk-${entry#*:}.err"
        done
        if (((first - 1 + WAVE) % (10 * WAVE) == 0)); then note "  $((first - 1 + WAVE)) created"; fi
    done
    t1=$EPOCHREALTIME
    WAVE_PIDS=()
    BULK_SECS=$(awk -v us=$((${t1//[.,]/} - ${t0//[.,]/})) 'BEGIN { printf "%.1f", us / 1e6 }')
    BULK_APPLIES=$(($(apply_lines) - before))
    ssh -S "$DIR/ctl" -O exit dummy >/dev/null 2>&1 || true
    fetch_ok "bulk$BULK.example"
fi

# reconcile NAME: times `host reconcile -o json`; sets SECS, and checks nothing failed.
reconcile() {
    local t0 t1
    t0=$EPOCHREALTIME
    panel host reconcile -o json
    t1=$EPOCHREALTIME
    SECS=$(awk -v us=$((${t1//[.,]/} - ${t0//[.,]/})) 'BEGIN { printf "%.2f", us / 1e6 }')
    python3 - "$DIR/last.out" "$DIR/reconcile-$1" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
if report["failed"]:
    sys.exit("site_apply: reconcile failures: %r" % report["failed"][:5])
with open(sys.argv[2], "w") as out:
    print(report["sites"], report["changed"], str(report["nginx_reloaded"]).lower(),
          ",".join(report["php_reloaded"]) or "-", len(report["orphans_removed"]), file=out)
PY
    cp "$DIR/vipanel.err" "$DIR/vipanel.err.at-$1"
    APPLY_MS=$(last_apply_ms)
}

VHOSTS=$(find "$DIR/nginx/vipanel/sites" -maxdepth 1 -name '*.conf' | wc -l)
note "2. host reconcile: after deleting the $VHOSTS generated vhosts, then with nothing to change"
find "$DIR/nginx/vipanel/sites" -maxdepth 1 -name '*.conf' -delete
reconcile rebuild
REBUILD_SECS=$SECS REBUILD_APPLY_MS=$APPLY_MS
read -r REC_SITES REBUILD_CHANGED REBUILD_NGINX REBUILD_PHP _ <"$DIR/reconcile-rebuild"
[[ $(find "$DIR/nginx/vipanel/sites" -maxdepth 1 -name '*.conf' | wc -l) -eq $VHOSTS ]] \
    || die "the reconcile did not write back all $VHOSTS vhosts"
fetch_ok "static1.example"
reconcile idle
IDLE_SECS=$SECS IDLE_APPLY_MS=$APPLY_MS
read -r _ IDLE_CHANGED IDLE_NGINX IDLE_PHP _ <"$DIR/reconcile-idle"

# ------------------------------------------------------- 3. nginx ---------

note "3. nginx -t and $RELOADS reloads with $VHOSTS vhosts"
settle_nginx
: >"$DIR/nginx-t.us"
for ((i = 0; i < RELOADS; i++)); do
    t0=$EPOCHREALTIME
    "$NGINX" -t -q -e stderr -p "$DIR/nginx/" -c "$DIR/nginx/nginx.conf" >/dev/null 2>"$DIR/nginx-t.err" \
        || { cat "$DIR/nginx-t.err" >&2; die "nginx -t failed"; }
    t1=$EPOCHREALTIME
    echo $((${t1//[.,]/} - ${t0//[.,]/})) >>"$DIR/nginx-t.us"
done
read -r NGINX_T_MED NGINX_T_P90 NGINX_T_MIN NGINX_T_MAX < <(stats "$DIR/nginx-t.us" 1000)

NGINX_PID=$(master_pid "$DIR/nginx/nginx.pid" nginx) || die "nginx is not running"
python3 - "$NGINX_PID" "$RELOADS" >"$DIR/reload.us" <<'PY'
import os, signal, sys, time

master, runs = int(sys.argv[1]), int(sys.argv[2])

def children():
    """{pid: cmdline} of the master's children."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            if int(stat.rsplit(")", 1)[1].split()[1]) != master:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                out[int(entry)] = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
    return out

for _ in range(runs):
    # Start from a settled master: no worker of an earlier reload still shutting down.
    end = time.monotonic() + 10
    while any("shutting down" in c for c in children().values()) and time.monotonic() < end:
        time.sleep(0.01)
    before = set(children())
    t0 = time.perf_counter()
    os.kill(master, signal.SIGHUP)
    end = time.monotonic() + 60
    while True:
        now = children()
        fresh = any(p not in before for p in now)
        old_accepting = any(p in before and "worker process" in c and "shutting down" not in c
                            for p, c in now.items())
        if fresh and not old_accepting:
            break
        if time.monotonic() > end:
            sys.exit("site_apply: nginx did not reload within 60 s")
        time.sleep(0.001)
    print(int((time.perf_counter() - t0) * 1e6))
PY
read -r RELOAD_MED RELOAD_P90 RELOAD_MIN RELOAD_MAX < <(stats "$DIR/reload.us" 1000)
settle_nginx
read -r MEM_MASTER MEM_WORKERS PSS FILES < <(nginx_memory)
if (ulimit -Sn 1024 && "$NGINX" -t -q -e stderr -p "$DIR/nginx/" -c "$DIR/nginx/nginx.conf") \
    >/dev/null 2>"$DIR/nginx-t-1024.err"; then
    LIMIT_1024="passes"
else
    LIMIT_1024="fails: $(grep -m1 -o 'failed ([0-9]*: [^)]*)' "$DIR/nginx-t-1024.err" || head -c 120 "$DIR/nginx-t-1024.err")"
fi

# ------------------------------------------------------------- report -----

CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n1)
VIPANEL_VERSION=$("$BINARY" --version 2>/dev/null | head -n1 || true)
NGINX_VERSION=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
PHP_VERSION=$("$PHP_FPM" -v 2>/dev/null | head -n1 | cut -d' ' -f1-2)
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
share() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * a / b; else print "n/a" }'; }

row() { printf '  %-34s %9s %9s %9s %9s %11s\n' "$@"; }
echo
echo "vipanel site apply, system host mode (private nginx and PHP-FPM, signals)"
echo "  machine : $(nproc) cpus${CPU_MODEL:+, $CPU_MODEL}, kernel $(uname -r)"
echo "  tools   : $NGINX_VERSION, $PHP_VERSION, $(ssh -V 2>&1)"
echo "  vipanel : $BINARY${VIPANEL_VERSION:+ ($VIPANEL_VERSION)}, coalesce_ms ${COALESCE_MS:-default}"
echo "  command : $CMDLINE"
echo
row "one site create (ms)" median p90 min max "apply med."
row "ssh … site create (php)" "$PHP_MED" "$PHP_P90" "$PHP_MIN" "$PHP_MAX" "$PHP_APPLY_MED"
row "ssh … site create --type static" "$STATIC_MED" "$STATIC_P90" "$STATIC_MIN" "$STATIC_MAX" "$STATIC_APPLY_MED"
echo "  the apply (host apply ms=) is $(share "$PHP_APPLY_MED" "$PHP_MED") (php) and $(share "$STATIC_APPLY_MED" "$STATIC_MED") (static) of the median create; p90 of the apply: $PHP_APPLY_P90 / $STATIC_APPLY_P90 ms"
echo
if ((BULK > 0)); then
    echo "  filling up: $BULK static sites in $BULK_SECS s, waves of $WAVE, $BULK_APPLIES applies"
fi
echo "  account ids free at start: $FREE_UIDS UIDs, $FREE_GIDS GIDs (one account and group a site)"
echo "  host reconcile of $REC_SITES sites ($RUNS php):"
echo "    after deleting the $VHOSTS vhosts : $REBUILD_SECS s (apply $REBUILD_APPLY_MS ms; changed $REBUILD_CHANGED, nginx reloaded $REBUILD_NGINX, php reloaded $REBUILD_PHP)"
echo "    nothing to change            : $IDLE_SECS s (apply $IDLE_APPLY_MS ms; changed $IDLE_CHANGED, nginx reloaded $IDLE_NGINX, php reloaded $IDLE_PHP)"
echo
echo "  nginx with $VHOSTS vhosts ($RELOADS runs each):"
echo "    nginx -t            : median $NGINX_T_MED ms, p90 $NGINX_T_P90 (min $NGINX_T_MIN, max $NGINX_T_MAX)"
echo "    reload (HUP → new worker, no old one accepting): median $RELOAD_MED ms, p90 $RELOAD_P90 (min $RELOAD_MIN, max $RELOAD_MAX)"
echo "    RSS master / worker : $(mib "$MEM_MASTER") / $(mib "$MEM_WORKERS") MiB, PSS of both $(mib "$PSS") MiB (at start, no vhost: $(mib "$MEM0_MASTER") / $(mib "$MEM0_WORKERS") MiB, PSS $(mib "$PSS0") MiB)"
echo "    master's open files : $FILES (at start: $FILES0); nginx -t with a soft limit of 1024 open files $LIMIT_1024"

if [[ $MARKDOWN -eq 1 ]]; then
    echo
    echo "| measure | median | p90 | min | max |"
    echo "| --- | ---: | ---: | ---: | ---: |"
    echo "| \`site create\` (php), ssh wall clock, ms | $PHP_MED | $PHP_P90 | $PHP_MIN | $PHP_MAX |"
    echo "| … of which the apply (\`host apply ms=\`), ms | $PHP_APPLY_MED | $PHP_APPLY_P90 | | |"
    echo "| \`site create --type static\`, ssh wall clock, ms | $STATIC_MED | $STATIC_P90 | $STATIC_MIN | $STATIC_MAX |"
    echo "| … of which the apply, ms | $STATIC_APPLY_MED | $STATIC_APPLY_P90 | | |"
    echo "| \`nginx -t\` with $VHOSTS vhosts, ms | $NGINX_T_MED | $NGINX_T_P90 | $NGINX_T_MIN | $NGINX_T_MAX |"
    echo "| nginx reload with $VHOSTS vhosts, ms | $RELOAD_MED | $RELOAD_P90 | $RELOAD_MIN | $RELOAD_MAX |"
    echo
    echo "| $REC_SITES sites | seconds | apply (ms) | files changed | nginx reloaded |"
    echo "| --- | ---: | ---: | ---: | --- |"
    ((BULK > 0)) && echo "| creating $BULK static sites, $WAVE concurrent | $BULK_SECS | ($BULK_APPLIES applies) | | |"
    echo "| \`host reconcile\` after deleting the vhosts | $REBUILD_SECS | $REBUILD_APPLY_MS | $REBUILD_CHANGED | $REBUILD_NGINX |"
    echo "| \`host reconcile\`, nothing to change | $IDLE_SECS | $IDLE_APPLY_MS | $IDLE_CHANGED | $IDLE_NGINX |"
    echo
    echo "nginx with $VHOSTS vhosts: RSS master / worker $(mib "$MEM_MASTER") / $(mib "$MEM_WORKERS") MiB, PSS of both $(mib "$PSS") MiB"
    echo "(at start, no vhost: $(mib "$MEM0_MASTER") / $(mib "$MEM0_WORKERS") MiB, PSS $(mib "$PSS0") MiB);"
    echo "master's open files $FILES (at start $FILES0); \`nginx -t\` under \`ulimit -Sn 1024\` $LIMIT_1024."
    echo
    echo "Machine: $(nproc) cpus${CPU_MODEL:+ ($CPU_MODEL)}, Linux $(uname -r), $NGINX_VERSION, $PHP_VERSION."
    echo "Command: \`$CMDLINE\`"
fi
