#!/usr/bin/env bash
# Flood-memory benchmark: the daemon's memory while one source (127.0.0.2) floods it with idle,
# unauthenticated TCP connections and another (127.0.0.1) logs in with the OpenSSH client.
#
#   bash benches/flood_memory.sh [--connections N] [--logins N] [--binary PATH] [--markdown]
#                                [--no-defenses]
#
#   --connections N  idle connections opened from 127.0.0.2 and held (default 200)
#   --logins N       `ssh panel@127.0.0.1 whoami` runs during the flood (default 20); all must
#                    print `admin`
#   --binary PATH    vipanel binary (default target/release/vipanel, built with
#                    `cargo build --release` if missing)
#   --markdown       also print a markdown table row (for docs/benchmarks.md)
#   --no-defenses    admit every flood connection: penalties off and the per-source and startups
#                    caps raised above N, so the figure is the cost of N pending connections
#
# Memory is the daemon's VmRSS and VmHWM (peak) from /proc/PID/status, in KiB:
#   before : after start and one login
#   peak   : VmHWM once all connections are open and the logins are done (connections held)
#   after  : VmRSS once the flood has closed its connections and the daemon has noticed
# The flood is a python3 script (bash cannot bind a source address); each connection reads the
# server's banner for up to 2 s to tell admitted (banner) from refused (closed) connections.
#
# It starts a private vipanel (temporary data dir, SQLite, auth.totp = "required"; the logins use
# an automation key from 127.0.0.1) and the flooding python3 process, and stops exactly those
# (by PID) on exit.
set -euo pipefail

die() { printf 'flood_memory: error: %s\n' "$*" >&2; exit 1; }
note() { printf 'flood_memory: %s\n' "$*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
CMDLINE="bash benches/flood_memory.sh${*:+ $*}"

CONNECTIONS=200
LOGINS=20
BINARY=""
MARKDOWN=0
DEFENSES=1
START_TIMEOUT=${VIPANEL_BENCH_START_TIMEOUT:-20}

while [[ $# -gt 0 ]]; do
    case $1 in
        --connections) [[ $# -ge 2 ]] || die "--connections needs a value"; CONNECTIONS=$2; shift 2 ;;
        --connections=*) CONNECTIONS=${1#*=}; shift ;;
        --logins) [[ $# -ge 2 ]] || die "--logins needs a value"; LOGINS=$2; shift 2 ;;
        --logins=*) LOGINS=${1#*=}; shift ;;
        --binary) [[ $# -ge 2 ]] || die "--binary needs a value"; BINARY=$2; shift 2 ;;
        --binary=*) BINARY=${1#*=}; shift ;;
        --markdown) MARKDOWN=1; shift ;;
        --no-defenses) DEFENSES=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ $CONNECTIONS =~ ^[0-9]+$ && $CONNECTIONS -ge 1 ]] || die "--connections must be a positive integer"
[[ $LOGINS =~ ^[0-9]+$ && $LOGINS -ge 1 ]] || die "--logins must be a positive integer"

BINARY=$(vipanel_binary "$BINARY" "$ROOT")
command -v ssh >/dev/null || die "ssh not found (apt-get install openssh-client)"
command -v ssh-keygen >/dev/null || die "ssh-keygen not found"
command -v python3 >/dev/null || die "python3 not found (apt-get install python3)"

# ------------------------------------------------------------- cleanup ----

DIR=""
VIPANEL_PID=""
FLOOD_PID=""

cleanup() {
    local rc=$?
    set +e
    [[ -n $FLOOD_PID ]] && stop_pid "$FLOOD_PID"
    [[ -n $VIPANEL_PID ]] && stop_pid "$VIPANEL_PID"
    remove_bench_account
    [[ -n $DIR && -d $DIR ]] && rm -rf -- "$DIR"
    return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mem_kib() { # pid field -> value in KiB
    sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status"
}

# --------------------------------------------------------------- setup ----

DIR=$(mktemp -d /tmp/vipanel-flood.XXXXXX)
ssh-keygen -q -t ed25519 -N '' -C vipanel-bench-client -f "$DIR/client"
ssh-keygen -q -t ed25519 -N '' -C vipanel-bench-admin -f "$DIR/admin"
SSH_OPTS=(-F /dev/null -i "$DIR/client" -o IdentitiesOnly=yes -o IdentityAgent=none
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes
    -o LogLevel=ERROR -o ControlMaster=no -o ControlPath=none -T)

ENV=(VIPANEL_INITIAL_ADMIN_KEYS="$DIR/admin.pub" VIPANEL_AUTH__TOTP=required)
if [[ $DEFENSES -eq 0 ]]; then
    ENV+=(VIPANEL_PENALTIES__ENABLED=false
        VIPANEL_LIMITS__MAX_UNAUTHENTICATED_PER_SOURCE=$((CONNECTIONS + 10))
        VIPANEL_LIMITS__STARTUPS_BEGIN=$((CONNECTIONS + 10))
        VIPANEL_LIMITS__STARTUPS_FULL=$((CONNECTIONS + 10))
        VIPANEL_LIMITS__MAX_CONNECTIONS=$((CONNECTIONS + 20)))
fi
start_vipanel "$BINARY" "$DIR" "${ENV[@]}"

# TOTP is required: the logins use an automation key from 127.0.0.1, which needs no code.
"$BINARY" admin --data-dir "$DIR/var" key add --user admin --automation --from 127.0.0.1/32 \
    <"$DIR/client.pub" >/dev/null || die "cannot add the automation key"

login() { # one `whoami` from 127.0.0.1; fails loudly
    local out
    if ! out=$(ssh "${SSH_OPTS[@]}" -p "$PORT" panel@127.0.0.1 whoami </dev/null 2>"$DIR/login.err"); then
        show_log "$DIR/login.err"; show_log "$DIR/vipanel.err"
        die "login from 127.0.0.1 failed"
    fi
    [[ $(tr -d '\r' <<<"$out") == admin ]] || die "whoami printed '$out', expected 'admin'"
}

# -------------------------------------------------------------- measure ---

login
RSS_BEFORE=$(mem_kib "$VIPANEL_PID" VmRSS)

# The flood: opens every connection (source 127.0.0.2), prints one `opened ADMITTED REFUSED`
# line, then holds them until stdin closes (or it is killed).
mkfifo "$DIR/flood.in"
cat >"$DIR/flood.py" <<'PY'
import socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
held, admitted, refused = [], 0, 0
for _ in range(count):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.2", 0))
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
        banner = s.recv(64)
    except OSError:
        banner = b""
    if banner.startswith(b"SSH-"):
        admitted += 1
    else:
        refused += 1
    held.append(s)
print("opened", admitted, refused, flush=True)
sys.stdin.read()
PY
python3 "$DIR/flood.py" "$PORT" "$CONNECTIONS" <"$DIR/flood.in" >"$DIR/flood.out" 2>"$DIR/flood.err" &
FLOOD_PID=$!
exec {FLOOD_IN}>"$DIR/flood.in"

# Logins while the flood is being opened and held.
t0=$EPOCHREALTIME
for ((i = 0; i < LOGINS; i++)); do
    login
done
t1=$EPOCHREALTIME
LOGIN_MS=$(( (${t1//[.,]/} - ${t0//[.,]/}) / 1000 / LOGINS ))

deadline=$((SECONDS + 60))
until grep -q '^opened ' "$DIR/flood.out" 2>/dev/null; do
    kill -0 "$FLOOD_PID" 2>/dev/null || { show_log "$DIR/flood.err"; die "the flood script exited"; }
    ((SECONDS < deadline)) || die "the flood did not open its connections within 60 s"
    sleep 0.02
done
read -r _ ADMITTED REFUSED <"$DIR/flood.out"
RSS_FLOOD=$(mem_kib "$VIPANEL_PID" VmRSS)
PEAK=$(mem_kib "$VIPANEL_PID" VmHWM)

# End the flood; wait until the daemon holds no pending connection of it (its log says nothing
# about that, so give it a moment and check that a login still works).
exec {FLOOD_IN}>&-
wait "$FLOOD_PID" 2>/dev/null || true
FLOOD_PID=""
sleep 1
login
RSS_AFTER=$(mem_kib "$VIPANEL_PID" VmRSS)
PENALTY_LINES=$(grep -c 'source penalised' "$DIR/vipanel.err" || true)

# ------------------------------------------------------------- report -----

CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n1)
VIPANEL_VERSION=$("$BINARY" --version 2>/dev/null | head -n1 || true)
MODE=$([[ $DEFENSES -eq 1 ]] && echo "defaults (penalties on, 5 per source)" || echo "no defenses (every connection admitted)")
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

echo
echo "vipanel memory under a flood of idle connections"
echo "  machine : $(nproc) cpus${CPU_MODEL:+, $CPU_MODEL}, kernel $(uname -r)"
echo "  vipanel : $BINARY${VIPANEL_VERSION:+ ($VIPANEL_VERSION)}; $MODE"
echo "  flood   : $CONNECTIONS connections from 127.0.0.2: $ADMITTED admitted (banner), $REFUSED refused"
echo "  logins  : $LOGINS x ssh whoami from 127.0.0.1 during the flood, all ok, ${LOGIN_MS} ms each on average"
echo "  log     : $PENALTY_LINES 'source penalised' line(s)"
echo "  command : $CMDLINE"
echo
printf '  %-24s %10s %8s\n' "" KiB MiB
printf '  %-24s %10s %8s\n' "VmRSS before" "$RSS_BEFORE" "$(mib "$RSS_BEFORE")"
printf '  %-24s %10s %8s\n' "VmRSS during the flood" "$RSS_FLOOD" "$(mib "$RSS_FLOOD")"
printf '  %-24s %10s %8s\n' "VmHWM (peak)" "$PEAK" "$(mib "$PEAK")"
printf '  %-24s %10s %8s\n' "VmRSS after" "$RSS_AFTER" "$(mib "$RSS_AFTER")"
echo "  peak - before: $(mib $((PEAK - RSS_BEFORE))) MiB"

if [[ $MARKDOWN -eq 1 ]]; then
    echo
    echo "| mode | connections (admitted / refused) | logins ok | RSS before (MiB) | RSS during (MiB) | peak (MiB) | RSS after (MiB) |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    echo "| $MODE | $CONNECTIONS ($ADMITTED / $REFUSED) | $LOGINS / $LOGINS | $(mib "$RSS_BEFORE") | $(mib "$RSS_FLOOD") | $(mib "$PEAK") | $(mib "$RSS_AFTER") |"
    echo
    echo "Machine: $(nproc) cpus${CPU_MODEL:+ ($CPU_MODEL)}, Linux $(uname -r). Command: \`$CMDLINE\`"
fi
