#!/usr/bin/env bash
# End-to-end interactive-session benchmark against the real daemon: `ssh -tt panel@127.0.0.1
# shell` (a shell login; a login without a command opens the dashboard, measured by
# benches/tui_bytes.sh) until the shell's prompt is drawn, the memory of many concurrent
# sessions, the bytes sent back per echoed keystroke, and the terminal round trips a prompt costs.
#
#   bash benches/session_login.sh [--runs N] [--sessions N] [--binary PATH] [--markdown]
#
#   --runs N       timed logins to the first prompt (default 30)
#   --sessions N   sessions held open at once for the memory figures (default 50)
#   --binary PATH  vipanel binary (default target/release/vipanel, built with
#                  `cargo build --release` if missing)
#   --markdown     also print markdown table rows (for docs/benchmarks.md)
#
# The daemon runs with `auth.totp = "required"`; the logins use an automation key from
# 127.0.0.1 (no code), so what is timed is the SSH login, the spawn of `vipanel __session` on its
# PTY and the shell's start. A python3 client plays the terminal: it runs ssh on a PTY of its own,
# answers each cursor-position query (ESC[6n) at once, as a terminal does, and counts them.
# Memory: PSS, RSS and private dirty of every `vipanel __session` child of the daemon from
# /proc/PID/smaps_rollup once all sessions sit at their prompt, and the daemon's VmRSS before and
# then. When run as root the session processes run as the account `vipanel-bench` (created by
# the daemon if missing, removed again at the end if this script's daemon created it).
# It starts a private vipanel and the ssh clients, and stops exactly those (by PID) on exit.
set -euo pipefail

die() { printf 'session_login: error: %s\n' "$*" >&2; exit 1; }
note() { printf 'session_login: %s\n' "$*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
CMDLINE="bash benches/session_login.sh${*:+ $*}"
RUNS=30
SESSIONS=50
BINARY=""
MARKDOWN=0
ACCOUNT=vipanel-bench

while [[ $# -gt 0 ]]; do
    case $1 in
        --runs) [[ $# -ge 2 ]] || die "--runs needs a value"; RUNS=$2; shift 2 ;;
        --sessions) [[ $# -ge 2 ]] || die "--sessions needs a value"; SESSIONS=$2; shift 2 ;;
        --binary) [[ $# -ge 2 ]] || die "--binary needs a value"; BINARY=$2; shift 2 ;;
        --markdown) MARKDOWN=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ $RUNS =~ ^[0-9]+$ && $RUNS -ge 1 ]] || die "--runs must be a positive integer"
[[ $SESSIONS =~ ^[0-9]+$ && $SESSIONS -ge 1 ]] || die "--sessions must be a positive integer"
BINARY=$(vipanel_binary "$BINARY" "$ROOT")
for tool in ssh ssh-keygen python3; do
    command -v "$tool" >/dev/null || die "$tool not found"
done

ACCOUNT_EXISTED=0
id -u "$ACCOUNT" >/dev/null 2>&1 && ACCOUNT_EXISTED=1
DIR=$(mktemp -d /tmp/vipanel-session-bench.XXXXXX)
VIPANEL_PID=""
cleanup() {
    local rc=$?
    set +e
    if [[ -n $VIPANEL_PID ]]; then
        kill -TERM "$VIPANEL_PID" 2>/dev/null
        wait "$VIPANEL_PID" 2>/dev/null
    fi
    if [[ $EUID -eq 0 && $ACCOUNT_EXISTED -eq 0 ]] && id -u "$ACCOUNT" >/dev/null 2>&1; then
        userdel "$ACCOUNT" >/dev/null 2>&1
    fi
    rm -rf -- "$DIR"
    return "$rc"
}
trap cleanup EXIT

ssh-keygen -q -t ed25519 -N '' -C bench-admin -f "$DIR/admin"
ssh-keygen -q -t ed25519 -N '' -C bench-client -f "$DIR/client"
start_vipanel "$BINARY" "$DIR" VIPANEL_INITIAL_ADMIN_KEYS="$DIR/admin.pub" \
    VIPANEL_AUTH__TOTP=required VIPANEL_SESSION__USER="$ACCOUNT" \
    VIPANEL_SESSION__MAX_PER_USER=$((SESSIONS + 10)) VIPANEL_LIMITS__MAX_CONNECTIONS=$((SESSIONS + 50))
"$BINARY" admin --data-dir "$DIR/var" key add --user admin --automation --from 127.0.0.1/32 \
    <"$DIR/client.pub" >/dev/null || die "cannot add the automation key"

python3 - "$PORT" "$DIR/client" "$VIPANEL_PID" "$RUNS" "$SESSIONS" "$MARKDOWN" "$CMDLINE" <<'PY'
import os, pty, re, select, signal, statistics, sys, time

port, key, daemon, runs, sessions, markdown, cmdline = sys.argv[1:8]
daemon, runs, sessions, markdown = int(daemon), int(runs), int(sessions), markdown == "1"
SSH = ["ssh", "-F", "/dev/null", "-p", port, "-i", key, "-o", "IdentitiesOnly=yes",
       "-o", "IdentityAgent=none", "-o", "StrictHostKeyChecking=no",
       "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
       "-o", "ControlMaster=no", "-o", "ControlPath=none", "-tt", "panel@127.0.0.1", "shell"]
PROMPT = b"admin@system> "
ESCAPES = re.compile(rb"\x1b\[[0-9;?]*[@-~]|\x1b\][^\x07]*\x07")
DSR = b"\x1b[6n"

class Session:
    def __init__(self):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execvp("ssh", SSH)
        self.raw = b""
        self.queries = 0

    def pump(self, timeout):
        """Reads what arrived within `timeout` s, answering cursor-position queries."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return b""
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            return b""
        self.raw += data
        for _ in range(data.count(DSR)):
            self.queries += 1
            os.write(self.fd, b"\x1b[1;1R")
        return data

    def text(self):
        return ESCAPES.sub(b"", self.raw)

    def wait_prompts(self, count, timeout=20.0):
        end = time.monotonic() + timeout
        while self.text().count(PROMPT) < count:
            left = end - time.monotonic()
            if left <= 0:
                sys.exit("session_login: no prompt; the terminal shows: %r" % self.text()[-400:])
            self.pump(min(left, 0.5))

    def quiet(self, seconds=0.3):
        """Reads until nothing arrives for `seconds`; the bytes read."""
        got = b""
        while True:
            data = self.pump(seconds)
            if not data:
                return got
            got += data

    def close(self):
        try:
            os.write(self.fd, b"exit\r")
        except OSError:
            pass
        end = time.monotonic() + 5
        while time.monotonic() < end:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                break
            self.pump(0.05)
        else:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)

def kib(pid, field, name="status"):
    with open(f"/proc/{pid}/{name}") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0

def session_children():
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == daemon and b"__session" in argv:
            out.append(int(entry))
    return out

# 1. Connect -> first prompt.
times = []
for _ in range(runs):
    t0 = time.perf_counter()
    s = Session()
    s.wait_prompts(1)
    times.append((time.perf_counter() - t0) * 1000)
    s.close()
times.sort()
p90 = times[min(len(times) - 1, int(len(times) * 0.9 + 0.5) - 1)]

# 2. Keystrokes and repaints in one session.
s = Session()
s.wait_prompts(1)
s.quiet()
echo = []
for ch in b"whoami":
    os.write(s.fd, bytes([ch]))
    echo.append(len(s.quiet(0.15)))
s.queries = 0
os.write(s.fd, b"\r")
s.wait_prompts(2)
s.quiet()
per_command_prompt = s.queries
s.queries = 0
os.write(s.fd, b"\r")
s.wait_prompts(3)
s.quiet()
per_empty_prompt = s.queries
s.close()

# 3. Many sessions at once.
rss_before = kib(daemon, "VmRSS")
held = []
for _ in range(sessions):
    h = Session()
    h.wait_prompts(1)
    held.append(h)
for h in held:
    h.quiet(0.05)
time.sleep(0.5)
os.sync()
children = session_children()
pss = sorted(kib(p, "Pss", "smaps_rollup") for p in children)
rss = sorted(kib(p, "Rss", "smaps_rollup") for p in children)
dirty = sorted(kib(p, "Private_Dirty", "smaps_rollup") for p in children)
rss_during = kib(daemon, "VmRSS")
for h in held:
    h.close()

med = statistics.median
print(f"interactive sessions over SSH, vipanel on 127.0.0.1:{port}")
print(f"  connect -> first prompt ({runs} runs): median {med(times):.1f} ms, p90 {p90:.1f}, "
      f"min {times[0]:.1f}, max {times[-1]:.1f}")
print(f"  {len(children)} sessions at once, per session: PSS median {med(pss)} kB (max {pss[-1]}), "
      f"RSS {med(rss)} kB, private dirty {med(dirty)} kB")
print(f"  daemon VmRSS: {rss_before} kB before, {rss_during} kB with them "
      f"(+{(rss_during - rss_before) / max(len(children), 1):.0f} kB a session)")
print(f"  bytes sent back per echoed keystroke: median {med(echo)} (of {echo})")
print(f"  cursor-position queries: {per_command_prompt} for the prompt after a command, "
      f"{per_empty_prompt} after an empty line")
if len(children) != sessions:
    sys.exit(f"session_login: expected {sessions} session processes, found {len(children)}")
if markdown:
    print(f"\n`{cmdline}`\n")
    print("| measure | value |\n| --- | ---: |")
    print(f"| connect → first prompt, median of {runs} (p90) | {med(times):.1f} ms ({p90:.1f} ms) |")
    print(f"| PSS per session, {sessions} at once (median / max) | {med(pss)} / {pss[-1]} kB |")
    print(f"| RSS / private dirty per session (median) | {med(rss)} / {med(dirty)} kB |")
    print(f"| daemon VmRSS before → with {sessions} sessions | {rss_before} → {rss_during} kB |")
    print(f"| bytes per echoed keystroke (median) | {med(echo)} |")
    print(f"| cursor-position queries per prompt (after a command / an empty line) | {per_command_prompt} / {per_empty_prompt} |")
PY
