#!/usr/bin/env bash
# Exec-latency benchmark: how long one `ssh host CMD` takes against vipanel
# compared with the same OpenSSH client against OpenSSH's sshd on the same
# machine, both on loopback, same client key (ed25519), same client options.
#
#   bash benches/exec_latency.sh [--runs N] [--warmup N] [--binary PATH] [--markdown] [--no-mux]
#
#   --runs N       timed runs per target and mode (default 30)
#   --warmup N     untimed runs per target and mode first (default 5)
#   --binary PATH  vipanel binary (default target/release/vipanel, built with
#                  `cargo build --release` if missing)
#   --markdown     also print a markdown table (for docs/benchmarks.md)
#   --no-mux       skip the ControlMaster (connection reuse) part
#   --kex NAME     make the client offer only this key exchange to both servers (e.g.
#                  curve25519-sha256), to compare them with the same kex
#
# Two modes are measured:
#   new connection : `ssh -p PORT user@127.0.0.1 CMD`, a full TCP connect, key
#                    exchange, public-key auth, one session channel, exec.
#   ControlMaster  : the same through an already authenticated master
#                    connection (`ssh -S ctl ...`): one new channel + exec.
# sshd runs `true` (through the login user's shell); vipanel runs `whoami`.
# Runs of the two targets alternate (sshd, vipanel, sshd, ...) so that drift in
# machine load affects both alike. Times are wall-clock per ssh process, in ms,
# from bash's $EPOCHREALTIME (microseconds, no extra process per sample).
#
# It starts a private sshd and a private vipanel, and stops exactly those (by
# PID) on exit, plus the two ssh ControlMaster processes it started.
set -euo pipefail

die() { printf 'exec_latency: error: %s\n' "$*" >&2; exit 1; }
note() { printf 'exec_latency: %s\n' "$*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CMDLINE="bash benches/exec_latency.sh${*:+ $*}"

RUNS=30
WARMUP=5
BINARY=""
MARKDOWN=0
MUX=1
KEX=""
START_TIMEOUT=${VIPANEL_BENCH_START_TIMEOUT:-20}
# Login name for vipanel; overridable only to test this script against a stub.
PANEL_USER=${VIPANEL_BENCH_USER:-panel}
M_RATIO=""

while [[ $# -gt 0 ]]; do
    case $1 in
        --runs) [[ $# -ge 2 ]] || die "--runs needs a value"; RUNS=$2; shift 2 ;;
        --runs=*) RUNS=${1#*=}; shift ;;
        --warmup) [[ $# -ge 2 ]] || die "--warmup needs a value"; WARMUP=$2; shift 2 ;;
        --warmup=*) WARMUP=${1#*=}; shift ;;
        --binary) [[ $# -ge 2 ]] || die "--binary needs a value"; BINARY=$2; shift 2 ;;
        --binary=*) BINARY=${1#*=}; shift ;;
        --markdown) MARKDOWN=1; shift ;;
        --no-mux) MUX=0; shift ;;
        --kex) [[ $# -ge 2 ]] || die "--kex needs a value"; KEX=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ $RUNS =~ ^[0-9]+$ && $RUNS -ge 1 ]] || die "--runs must be a positive integer"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "--warmup must be a non-negative integer"

if [[ -z $BINARY ]]; then
    BINARY=$ROOT/target/release/vipanel
    if [[ ! -x $BINARY ]]; then
        note "$BINARY missing: cargo build --release"
        (cd "$ROOT" && cargo build --release) >&2
    fi
fi
[[ $BINARY == /* ]] || BINARY=$PWD/$BINARY
[[ -x $BINARY ]] || die "vipanel binary not found or not executable: $BINARY"

SSHD=/usr/sbin/sshd
[[ -x $SSHD ]] || die "$SSHD not found (apt-get install openssh-server)"
command -v ssh >/dev/null || die "ssh not found (apt-get install openssh-client)"
command -v ssh-keygen >/dev/null || die "ssh-keygen not found"
[[ -n ${EPOCHREALTIME:-} ]] || die "bash >= 5 needed (EPOCHREALTIME)"

LOGIN_USER=$(id -un)

# ------------------------------------------------------------- cleanup ----

DIR=""
SSHD_PID=""
VIPANEL_PID=""
MASTER_PIDS=()
CREATED_RUN_SSHD=0

stop_pid() { # pid: TERM, wait up to 5 s, then KILL; reap if it is our child
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? ctl pid
    set +e
    if [[ -n $DIR ]]; then
        for ctl in "$DIR"/ctl-*; do
            [[ -S $ctl ]] && ssh -S "$ctl" -O exit dummy >/dev/null 2>&1
        done
    fi
    for pid in "${MASTER_PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null && stop_pid "$pid"
    done
    [[ -n $VIPANEL_PID ]] && stop_pid "$VIPANEL_PID"
    [[ -n $SSHD_PID ]] && stop_pid "$SSHD_PID"
    [[ -n $DIR && -d $DIR ]] && rm -rf -- "$DIR"
    [[ $CREATED_RUN_SSHD -eq 1 ]] && rmdir /run/sshd 2>/dev/null
    return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_log() { # file [lines]
    [[ -s $1 ]] || return 0
    printf -- '--- last lines of %s:\n' "${1##*/}" >&2
    tail -n "${2:-30}" "$1" >&2
}

free_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    else
        echo $((20000 + RANDOM % 40000))
    fi
}

# --------------------------------------------------------------- setup ----

# Short path under /tmp: ControlPath sockets have a ~100 byte limit.
DIR=$(mktemp -d /tmp/vipanel-bench.XXXXXX)
ssh-keygen -q -t ed25519 -N '' -C vipanel-bench-client -f "$DIR/client"
ssh-keygen -q -t ed25519 -N '' -C vipanel-bench-host -f "$DIR/ssh_host_ed25519_key"
cp "$DIR/client.pub" "$DIR/authorized_keys"

SSH_BASE=(-F /dev/null -i "$DIR/client" -o IdentitiesOnly=yes -o StrictHostKeyChecking=no
    -o UserKnownHostsFile=/dev/null -o BatchMode=yes -T)
[[ -z $KEX ]] || SSH_BASE+=(-o "KexAlgorithms=$KEX")
SSH_OPTS=("${SSH_BASE[@]}" -o LogLevel=ERROR)

# sshd ----------------------------------------------------------------------
if [[ $EUID -eq 0 && ! -d /run/sshd ]]; then
    mkdir -p /run/sshd # privilege-separation chroot; sshd refuses to start without it
    chmod 0755 /run/sshd
    CREATED_RUN_SSHD=1
fi
cat >"$DIR/sshd_config" <<EOF
ListenAddress 127.0.0.1
HostKey $DIR/ssh_host_ed25519_key
AuthorizedKeysFile $DIR/authorized_keys
# The temp dir is not laid out the way StrictModes wants ~/.ssh to be.
StrictModes no
PidFile $DIR/sshd.pid
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers $LOGIN_USER
PrintMotd no
PrintLastLog no
UseDNS no
X11Forwarding no
AllowTcpForwarding no
# sshd runs the command as "\$SHELL -c CMD"; bash, when started by sshd at
# shell level 1, sources ~/.bashrc (Debian builds bash with SSH_SOURCE_BASHRC),
# which on a developer machine may run slow things (pyenv init, ...). SHLVL=1
# makes that shell level 2, so the baseline measures sshd, not someone's rc file.
SetEnv SHLVL=1
EOF
# OpenSSH >= 9.8 penalises sources whose connections end without auth; keep
# it out of the way where the option exists (9.2 on Debian 12 rejects it).
if "$SSHD" -t -f "$DIR/sshd_config" -o PerSourcePenalties=no >/dev/null 2>&1; then
    echo "PerSourcePenalties no" >>"$DIR/sshd_config"
fi
"$SSHD" -t -f "$DIR/sshd_config" || die "sshd rejected its config"

SSHD_PORT=""
for attempt in 1 2 3 4 5; do
    port=$(free_port)
    "$SSHD" -D -e -f "$DIR/sshd_config" -p "$port" </dev/null >"$DIR/sshd.log" 2>&1 &
    SSHD_PID=$!
    # Readiness: sshd logs "Server listening on 127.0.0.1 port N." once bound.
    for ((i = 0; i < 500; i++)); do # <= 10 s
        if grep -q "Server listening on 127.0.0.1 port $port" "$DIR/sshd.log" 2>/dev/null; then
            SSHD_PORT=$port
            break
        fi
        kill -0 "$SSHD_PID" 2>/dev/null || break
        sleep 0.02
    done
    [[ -n $SSHD_PORT ]] && break
    note "sshd did not come up on port $port (attempt $attempt)"
    show_log "$DIR/sshd.log" 10
    stop_pid "$SSHD_PID"
    SSHD_PID=""
done
[[ -n $SSHD_PORT ]] || die "could not start sshd"

# vipanel -------------------------------------------------------------------
mkdir -m 0700 "$DIR/var"
VIPANEL_INITIAL_ADMIN_KEYS=$DIR/client.pub VIPANEL_AUTH__TOTP=off \
    "$BINARY" serve --listen 127.0.0.1:0 --data-dir "$DIR/var" \
    </dev/null >"$DIR/vipanel.out" 2>"$DIR/vipanel.err" &
VIPANEL_PID=$!
VIPANEL_PORT=""
deadline=$((SECONDS + START_TIMEOUT))
while [[ -z $VIPANEL_PORT ]]; do
    line=$(grep -m1 -oE '^vipanel listening on 127\.0\.0\.1:[0-9]+' "$DIR/vipanel.out" 2>/dev/null || true)
    if [[ -n $line ]]; then
        VIPANEL_PORT=${line##*:}
        break
    fi
    if ! kill -0 "$VIPANEL_PID" 2>/dev/null; then
        wait "$VIPANEL_PID" 2>/dev/null && st=0 || st=$?
        VIPANEL_PID=""
        show_log "$DIR/vipanel.out"; show_log "$DIR/vipanel.err"
        die "vipanel exited (status $st) before printing 'vipanel listening on 127.0.0.1:PORT'"
    fi
    if ((SECONDS >= deadline)); then
        show_log "$DIR/vipanel.out"; show_log "$DIR/vipanel.err"
        die "vipanel did not print 'vipanel listening on 127.0.0.1:PORT' within ${START_TIMEOUT}s"
    fi
    sleep 0.02
done

SSHD_DEST=(-p "$SSHD_PORT" "$LOGIN_USER@127.0.0.1")
VIPANEL_DEST=(-p "$VIPANEL_PORT" "$PANEL_USER@127.0.0.1")

# ---------------------------------------------------------- measuring -----

run_ssh() { # label ssh-args... : one run, output to $DIR/last.out, fail loudly
    local label=$1
    shift
    if ! ssh "$@" </dev/null >"$DIR/last.out" 2>"$DIR/last.err"; then
        note "ssh to $label failed: ssh $*"
        show_log "$DIR/last.out"; show_log "$DIR/last.err"
        [[ $label == vipanel* ]] && { show_log "$DIR/vipanel.out"; show_log "$DIR/vipanel.err"; }
        [[ $label == sshd* ]] && show_log "$DIR/sshd.log"
        exit 1
    fi
}

check_whoami() { # label ssh-args...
    run_ssh "$@"
    local got
    got=$(tr -d '\r' <"$DIR/last.out" | sed -e 's/[[:space:]]*$//' | sed '/^$/d')
    [[ $got == admin ]] || {
        note "vipanel 'whoami' printed '$got', expected 'admin'"
        show_log "$DIR/last.err"; show_log "$DIR/vipanel.err"
        exit 1
    }
}

# bench MODE: WARMUP then RUNS alternating sshd / vipanel; samples (us) in
# $DIR/MODE-sshd.us and $DIR/MODE-vipanel.us
bench() {
    local mode=$1 i t0 t1
    shift
    local -a sshd_args=("${SSH_OPTS[@]}") vip_args=("${SSH_OPTS[@]}")
    if [[ $mode == mux ]]; then
        sshd_args+=(-o ControlMaster=no -S "$DIR/ctl-sshd")
        vip_args+=(-o ControlMaster=no -S "$DIR/ctl-vipanel")
    fi
    sshd_args+=("${SSHD_DEST[@]}" true)
    vip_args+=("${VIPANEL_DEST[@]}" whoami)
    : >"$DIR/$mode-sshd.us"
    : >"$DIR/$mode-vipanel.us"
    for ((i = 0; i < WARMUP; i++)); do
        run_ssh "sshd ($mode)" "${sshd_args[@]}"
        run_ssh "vipanel ($mode)" "${vip_args[@]}"
    done
    for ((i = 0; i < RUNS; i++)); do
        t0=$EPOCHREALTIME
        run_ssh "sshd ($mode)" "${sshd_args[@]}"
        t1=$EPOCHREALTIME
        echo $((${t1//[.,]/} - ${t0//[.,]/})) >>"$DIR/$mode-sshd.us"
        t0=$EPOCHREALTIME
        run_ssh "vipanel ($mode)" "${vip_args[@]}"
        t1=$EPOCHREALTIME
        echo $((${t1//[.,]/} - ${t0//[.,]/})) >>"$DIR/$mode-vipanel.us"
    done
}

# stats FILE -> "median p90 min max mean" in ms (p90: nearest rank)
stats() {
    sort -n "$1" | awk '
        { a[NR] = $1; s += $1 }
        END {
            n = NR
            med = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
            r = int(0.9 * n); if (r < 0.9 * n) r++; if (r < 1) r = 1
            printf "%.2f %.2f %.2f %.2f %.2f\n", med / 1000, a[r] / 1000, a[1] / 1000, a[n] / 1000, s / n / 1000
        }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

start_master() { # name dest...
    local name=$1 out pid
    shift
    if ! ssh "${SSH_OPTS[@]}" -M -S "$DIR/ctl-$name" -o ControlPersist=60 -fN "$@" \
        </dev/null >"$DIR/master-$name.log" 2>&1; then
        show_log "$DIR/master-$name.log"
        die "could not start a ControlMaster connection to $name"
    fi
    out=$(ssh -S "$DIR/ctl-$name" -O check dummy 2>&1) || die "ControlMaster to $name not running: $out"
    pid=$(sed -n 's/.*pid=\([0-9]*\).*/\1/p' <<<"$out")
    [[ -n $pid ]] && MASTER_PIDS+=("$pid")
    return 0
}

stop_master() { # name
    local name=$1
    ssh -S "$DIR/ctl-$name" -O check dummy >/dev/null 2>&1 \
        || die "ControlMaster to $name died during the runs (samples may be new connections)"
    ssh -S "$DIR/ctl-$name" -O exit dummy >/dev/null 2>&1 || true
}

negotiated() { # dest... -> "kex / hostkey / cipher"
    ssh "${SSH_BASE[@]}" -v "$@" </dev/null 2>&1 >/dev/null | awk '
        /kex: algorithm:/ { kex = $NF }
        /kex: host key algorithm:/ { hk = $NF }
        /kex: server->client cipher:/ { for (i = 1; i <= NF; i++) if ($i == "cipher:") c = $(i + 1) }
        END { printf "kex %s, host key %s, cipher %s", kex, hk, c }'
}

check_whoami "vipanel" "${SSH_OPTS[@]}" "${VIPANEL_DEST[@]}" whoami
NEG_SSHD=$(negotiated "${SSHD_DEST[@]}" true)
NEG_VIPANEL=$(negotiated "${VIPANEL_DEST[@]}" whoami)

note "sshd on port $SSHD_PORT, vipanel on port $VIPANEL_PORT; $WARMUP warm-up + $RUNS timed runs per target"
bench new
read -r N_SSHD_MED N_SSHD_P90 N_SSHD_MIN N_SSHD_MAX _ < <(stats "$DIR/new-sshd.us")
read -r N_VIP_MED N_VIP_P90 N_VIP_MIN N_VIP_MAX _ < <(stats "$DIR/new-vipanel.us")
N_RATIO=$(ratio "$N_VIP_MED" "$N_SSHD_MED")

if [[ $MUX -eq 1 ]]; then
    start_master sshd "${SSHD_DEST[@]}"
    start_master vipanel "${VIPANEL_DEST[@]}"
    check_whoami "vipanel (mux)" "${SSH_OPTS[@]}" -o ControlMaster=no -S "$DIR/ctl-vipanel" "${VIPANEL_DEST[@]}" whoami
    bench mux
    # The client's own floor: an ssh process that only asks the master whether it is alive
    # (no channel, no server round trip). What a command costs above this is the server's part.
    : >"$DIR/mux-floor.us"
    for ((i = 0; i < RUNS; i++)); do
        t0=$EPOCHREALTIME
        ssh "${SSH_OPTS[@]}" -S "$DIR/ctl-vipanel" -O check "${VIPANEL_DEST[@]}" >/dev/null 2>&1 \
            || die "ssh -O check failed"
        t1=$EPOCHREALTIME
        echo $((${t1//[.,]/} - ${t0//[.,]/})) >>"$DIR/mux-floor.us"
    done
    read -r M_FLOOR_MED M_FLOOR_P90 M_FLOOR_MIN M_FLOOR_MAX _ < <(stats "$DIR/mux-floor.us")
    stop_master sshd
    stop_master vipanel
    read -r M_SSHD_MED M_SSHD_P90 M_SSHD_MIN M_SSHD_MAX _ < <(stats "$DIR/mux-sshd.us")
    read -r M_VIP_MED M_VIP_P90 M_VIP_MIN M_VIP_MAX _ < <(stats "$DIR/mux-vipanel.us")
    M_RATIO=$(ratio "$M_VIP_MED" "$M_SSHD_MED")
fi

# ------------------------------------------------------------- report -----

CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n1)
SSH_VERSION=$(ssh -V 2>&1)
VIPANEL_VERSION=$("$BINARY" --version 2>/dev/null | head -n1 || true)
LOGIN_SHELL=$(getent passwd "$LOGIN_USER" | cut -d: -f7)

row() { printf '  %-22s %9s %9s %9s %9s\n' "$@"; }
echo
echo "vipanel exec latency (ms, wall clock per ssh invocation)"
echo "  machine : $(nproc) cpus${CPU_MODEL:+, $CPU_MODEL}, kernel $(uname -r)"
echo "  client  : $SSH_VERSION (same client, options and ed25519 key for both)"
echo "  sshd    : $SSHD as $LOGIN_USER (shell $LOGIN_SHELL, rc files skipped); $NEG_SSHD"
echo "  vipanel : $BINARY${VIPANEL_VERSION:+ ($VIPANEL_VERSION)}; $NEG_VIPANEL"
echo "  runs    : $RUNS timed after $WARMUP warm-up per target and mode, alternating targets"
echo "  command : $CMDLINE"
echo
row "new connection" median p90 min max
row "sshd (true)" "$N_SSHD_MED" "$N_SSHD_P90" "$N_SSHD_MIN" "$N_SSHD_MAX"
row "vipanel (whoami)" "$N_VIP_MED" "$N_VIP_P90" "$N_VIP_MIN" "$N_VIP_MAX"
echo "  ratio vipanel/sshd (medians): ${N_RATIO}x"
if [[ $MUX -eq 1 ]]; then
    echo
    row "ControlMaster" median p90 min max
    row "sshd (true)" "$M_SSHD_MED" "$M_SSHD_P90" "$M_SSHD_MIN" "$M_SSHD_MAX"
    row "vipanel (whoami)" "$M_VIP_MED" "$M_VIP_P90" "$M_VIP_MIN" "$M_VIP_MAX"
    row "client floor (-O check)" "$M_FLOOR_MED" "$M_FLOOR_P90" "$M_FLOOR_MIN" "$M_FLOOR_MAX"
    echo "  ratio vipanel/sshd (medians): ${M_RATIO}x"
fi

if [[ $MARKDOWN -eq 1 ]]; then
    echo
    echo "| target | mode | median (ms) | p90 (ms) | min (ms) | max (ms) |"
    echo "| --- | --- | ---: | ---: | ---: | ---: |"
    echo "| OpenSSH sshd, \`true\` | new connection | $N_SSHD_MED | $N_SSHD_P90 | $N_SSHD_MIN | $N_SSHD_MAX |"
    echo "| vipanel, \`whoami\` | new connection | $N_VIP_MED | $N_VIP_P90 | $N_VIP_MIN | $N_VIP_MAX |"
    if [[ $MUX -eq 1 ]]; then
        echo "| OpenSSH sshd, \`true\` | ControlMaster | $M_SSHD_MED | $M_SSHD_P90 | $M_SSHD_MIN | $M_SSHD_MAX |"
        echo "| vipanel, \`whoami\` | ControlMaster | $M_VIP_MED | $M_VIP_P90 | $M_VIP_MIN | $M_VIP_MAX |"
        echo "| client floor, \`ssh -O check\` | ControlMaster | $M_FLOOR_MED | $M_FLOOR_P90 | $M_FLOOR_MIN | $M_FLOOR_MAX |"
    fi
    echo
    echo "vipanel/sshd ratio of medians: ${N_RATIO}x (new connection)${M_RATIO:+, ${M_RATIO}x (ControlMaster)}."
    echo
    echo "Machine: $(nproc) cpus${CPU_MODEL:+ ($CPU_MODEL)}, Linux $(uname -r), $SSH_VERSION."
    echo "$RUNS timed runs after $WARMUP warm-up runs per row, targets alternating."
    echo "Command: \`$CMDLINE\`"
fi
