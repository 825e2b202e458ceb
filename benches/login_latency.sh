#!/usr/bin/env bash
# Login-latency benchmark: what the TOTP second step costs a login. Times a full
# `ssh panel@127.0.0.1 whoami` (new connection, key exchange, key, then the
# `Verification code: ` answer, exec) against the same login with an automation
# key (no second step), both driven through sshpass so the client-side harness
# is the same, against one vipanel with `auth.totp = "required"`.
#
#   bash benches/login_latency.sh [--runs N] [--binary PATH] [--markdown]
#
#   --runs N       timed logins per mode (default 20); each TOTP login uses its own
#                  user, since a time step is accepted once per user
#   --binary PATH  vipanel binary (default target/release/vipanel, built with
#                  `cargo build --release` if missing)
#   --markdown     also print a markdown table (for docs/benchmarks.md)
#
# Runs alternate (code, automation, code, ...) so drift in machine load affects
# both alike. Times are wall-clock per sshpass+ssh process, in ms, from bash's
# $EPOCHREALTIME; the code is computed (python3) before the clock starts.
# It starts a private vipanel and stops exactly that one (by PID) on exit.
set -euo pipefail

die() { printf 'login_latency: error: %s\n' "$*" >&2; exit 1; }
note() { printf 'login_latency: %s\n' "$*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
CMDLINE="bash benches/login_latency.sh${*:+ $*}"
RUNS=20
BINARY=""
MARKDOWN=0

while [[ $# -gt 0 ]]; do
    case $1 in
        --runs) [[ $# -ge 2 ]] || die "--runs needs a value"; RUNS=$2; shift 2 ;;
        --runs=*) RUNS=${1#*=}; shift ;;
        --binary) [[ $# -ge 2 ]] || die "--binary needs a value"; BINARY=$2; shift 2 ;;
        --binary=*) BINARY=${1#*=}; shift ;;
        --markdown) MARKDOWN=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ $RUNS =~ ^[0-9]+$ && $RUNS -ge 1 ]] || die "--runs must be a positive integer"
BINARY=$(vipanel_binary "$BINARY" "$ROOT")
for tool in ssh ssh-keygen sshpass python3; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
[[ -n ${EPOCHREALTIME:-} ]] || die "bash >= 5 needed (EPOCHREALTIME)"

DIR=$(mktemp -d /tmp/vipanel-login-bench.XXXXXX)
VIPANEL_PID=""
cleanup() {
    local rc=$?
    set +e
    if [[ -n $VIPANEL_PID ]]; then
        kill -TERM "$VIPANEL_PID" 2>/dev/null
        wait "$VIPANEL_PID" 2>/dev/null
    fi
    remove_bench_account
    rm -rf -- "$DIR"
    return "$rc"
}
trap cleanup EXIT

ssh-keygen -q -t ed25519 -N '' -C bench-admin -f "$DIR/admin"
start_vipanel "$BINARY" "$DIR" VIPANEL_INITIAL_ADMIN_KEYS="$DIR/admin.pub" VIPANEL_AUTH__TOTP=required

admin() { "$BINARY" admin --data-dir "$DIR/var" "$@"; }
admin tenant create bench >/dev/null
note "creating $RUNS users with an authenticator each, and one automation key"
for ((i = 1; i <= RUNS; i++)); do
    ssh-keygen -q -t ed25519 -N '' -C "u$i" -f "$DIR/u$i"
    admin user create "u$i" --role viewer --tenant bench --key "$(cat "$DIR/u$i.pub")" >/dev/null
    admin totp enroll "u$i" -o json |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["secret"])' >"$DIR/u$i.secret"
done
ssh-keygen -q -t ed25519 -N '' -C ci -f "$DIR/ci"
admin user create ci --role viewer --tenant bench >/dev/null
admin key add --user ci --automation --from 127.0.0.1/32 <"$DIR/ci.pub" >/dev/null

code_for() { # base32 secret -> the current 6-digit code
    python3 - "$1" <<'EOF'
import base64, hashlib, hmac, struct, sys, time
secret = sys.argv[1]
key = base64.b32decode(secret + "=" * (-len(secret) % 8))
digest = hmac.new(key, struct.pack(">Q", int(time.time()) // 30), hashlib.sha1).digest()
offset = digest[-1] & 15
print("%06d" % ((struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1000000))
EOF
}

SSH=(ssh -F /dev/null -p "$PORT" -o IdentitiesOnly=yes -o IdentityAgent=none
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
    -o ControlMaster=no -o ControlPath=none -o NumberOfPasswordPrompts=1 -n)

CODE_MS=()
AUTO_MS=()
elapsed_ms() { # start end (EPOCHREALTIME) -> ms with 2 decimals
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) * 1000 }'
}
for ((i = 1; i <= RUNS; i++)); do
    code=$(code_for "$(cat "$DIR/u$i.secret")")
    t0=$EPOCHREALTIME
    out=$(sshpass -P 'Verification code' -p "$code" "${SSH[@]}" -i "$DIR/u$i" panel@127.0.0.1 whoami) ||
        die "TOTP login $i failed"
    t1=$EPOCHREALTIME
    [[ $out == "u$i" ]] || die "TOTP login $i printed '$out'"
    CODE_MS+=("$(elapsed_ms "$t0" "$t1")")
    t0=$EPOCHREALTIME
    out=$(sshpass -P 'Verification code' -p unused "${SSH[@]}" -i "$DIR/ci" panel@127.0.0.1 whoami) ||
        die "automation login $i failed"
    t1=$EPOCHREALTIME
    [[ $out == ci ]] || die "automation login $i printed '$out'"
    AUTO_MS+=("$(elapsed_ms "$t0" "$t1")")
done

stats() { # values... -> "median p90 min max"
    printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
        p90 = int(NR * 0.9 + 0.5); if (p90 < 1) p90 = 1
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.2f %.2f %.2f %.2f", m, v[p90], v[1], v[NR] }'
}
read -r c_med c_p90 c_min c_max <<<"$(stats "${CODE_MS[@]}")"
read -r a_med a_p90 a_min a_max <<<"$(stats "${AUTO_MS[@]}")"
delta=$(awk -v a="$c_med" -v b="$a_med" 'BEGIN { printf "%.2f", a - b }')

printf 'login latency, %d logins per mode, ms (median p90 min max)\n' "$RUNS"
printf '  key + TOTP code     %8s %8s %8s %8s\n' "$c_med" "$c_p90" "$c_min" "$c_max"
printf '  automation key      %8s %8s %8s %8s\n' "$a_med" "$a_p90" "$a_min" "$a_max"
printf '  the second step costs %s ms (median difference)\n' "$delta"
if [[ $MARKDOWN -eq 1 ]]; then
    printf '\n`%s`\n\n' "$CMDLINE"
    printf '| login | median ms | p90 ms | min ms | max ms |\n|---|---|---|---|---|\n'
    printf '| key + TOTP code | %s | %s | %s | %s |\n' "$c_med" "$c_p90" "$c_min" "$c_max"
    printf '| automation key (no second step) | %s | %s | %s | %s |\n' "$a_med" "$a_p90" "$a_min" "$a_max"
fi
