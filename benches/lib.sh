# shellcheck shell=bash
# Helpers shared by the benchmark scripts and .ci/ssh_audit.sh: which vipanel binary to run, and
# starting a private `vipanel serve` on loopback. The sourcing script defines die() and note().

# vipanel_binary NAMED ROOT: prints the absolute path of the binary to run: NAMED, or (when empty)
# ROOT/target/release/vipanel, built with `cargo build --release` if missing.
vipanel_binary() {
    local binary=$1 root=$2
    if [[ -z $binary ]]; then
        binary=$root/target/release/vipanel
        if [[ ! -x $binary ]]; then
            note "$binary missing: cargo build --release"
            (cd "$root" && cargo build --release) >&2
        fi
    fi
    [[ $binary == /* ]] || binary=$PWD/$binary
    [[ -f $binary && -x $binary ]] || die "vipanel binary not found or not executable: $binary"
    printf '%s\n' "$binary"
}

# The account session processes run as when the daemon runs as root: the caller's
# VIPANEL_SESSION__USER (CI names its own, and removes it), else a benchmark account that
# remove_bench_account deletes again if start_vipanel's daemon created it.
BENCH_ACCOUNT=${VIPANEL_SESSION__USER:-vipanel-t-bench}
BENCH_ACCOUNT_EXISTED=1

# remove_bench_account: deletes the benchmark's session account if this run created it (call it
# from the script's cleanup, after the daemon stopped).
remove_bench_account() {
    if [[ $EUID -eq 0 && $BENCH_ACCOUNT_EXISTED -eq 0 ]] && id -u "$BENCH_ACCOUNT" >/dev/null 2>&1; then
        userdel "$BENCH_ACCOUNT" >/dev/null 2>&1 || true
    fi
}

# start_vipanel BINARY DIR [NAME=VALUE]...: starts `BINARY serve` on 127.0.0.1:0 with the data
# dir DIR/var, no VIPANEL_* variable of the caller's and the given ones; output in DIR/vipanel.out
# and DIR/vipanel.err. Sets VIPANEL_PID and PORT; dies with the daemon's output when it does not
# print its address within ${START_TIMEOUT:-20} seconds. The caller stops VIPANEL_PID.
start_vipanel() {
    local binary=$1 dir=$2 line deadline
    shift 2
    id -u "$BENCH_ACCOUNT" >/dev/null 2>&1 || BENCH_ACCOUNT_EXISTED=0
    mkdir -m 0700 "$dir/var"
    (
        for var in $(compgen -e | grep '^VIPANEL_' || true); do unset "$var"; done
        export VIPANEL_SESSION__USER=$BENCH_ACCOUNT
        for assignment in "$@"; do export "${assignment?}"; done
        exec "$binary" serve --listen 127.0.0.1:0 --data-dir "$dir/var"
    ) </dev/null >"$dir/vipanel.out" 2>"$dir/vipanel.err" &
    VIPANEL_PID=$!
    PORT=""
    deadline=$((SECONDS + ${START_TIMEOUT:-20}))
    while [[ -z $PORT ]]; do
        line=$(grep -m1 -oE '^vipanel listening on 127\.0\.0\.1:[0-9]+' "$dir/vipanel.out" 2>/dev/null || true)
        [[ -n $line ]] && { PORT=${line##*:}; break; }
        if ! kill -0 "$VIPANEL_PID" 2>/dev/null || ((SECONDS >= deadline)); then
            cat "$dir/vipanel.out" "$dir/vipanel.err" >&2
            die "vipanel did not print 'vipanel listening on 127.0.0.1:PORT'"
        fi
        sleep 0.02
    done
}

# stop_pid PID [SECONDS]: TERM, wait up to SECONDS (default 5), then KILL; reaps it if it is the
# caller's child. Quiet when the process is already gone.
stop_pid() {
    local pid=$1 i tries=$((${2:-5} * 20))
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < tries; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# show_log FILE [LINES]: the last LINES (default 30) of FILE on stderr, when it is not empty.
show_log() { # file [lines]
    [[ -s $1 ]] || return 0
    printf -- '--- last lines of %s:\n' "${1##*/}" >&2
    tail -n "${2:-30}" "$1" >&2
}
