#!/usr/bin/env bash
# TUI bytes benchmark: what the dashboard of an interactive login (`ssh -tt panel@127.0.0.1`)
# writes to the terminal at 120x40, measured end to end against the real daemon and the real
# OpenSSH client, in the normal and the low-bandwidth mode (Overview screen, default refresh).
#
#   bash benches/tui_bytes.sh [--binary PATH] [--idle SECONDS] [--presses N] [--modes LIST]
#                             [--sites N] [--markdown] [--show]
#
#   --binary PATH    vipanel binary (default target/release/vipanel, built with
#                    `cargo build --release` if missing)
#   --idle SECONDS   idle dashboard measured for this long (default 60)
#   --presses N      navigation keypresses, Down and Up alternately (default 200)
#   --modes LIST     comma-separated, of normal and low (default normal,low)
#   --sites N        sites seeded before the logins, so the tables have rows (default 20)
#   --markdown       also print markdown table rows (for docs/benchmarks.md)
#   --show           also print the screen of each mode's first frame (a rough render of the
#                    cursor moves and text; colours and attributes dropped)
#
# Setup: a private `vipanel serve` (temporary data dir, SQLite, sandbox host mode, the default)
# with `auth.totp = "off"`, so that the logins are plain admin key logins as a person's would be
# (no automation key, no code prompt). The --sites static sites are created with
# `ssh panel@127.0.0.1 site create siteN.example --type static`, one exec each. Before each
# mode's login, `ssh panel@127.0.0.1 ui bandwidth MODE` sets the mode; when that exec fails the
# benchmark stops (TUI_BYTES_SKIP_UI=1 skips it, for trying the harness on a build without the
# `ui` command; only with --modes normal).
#
# Measured, per mode, by a python3 client that plays the terminal: it runs ssh on a PTY of its
# own sized 120 columns x 40 rows (TIOCSWINSZ set before ssh starts, TERM=xterm-256color),
# answers each cursor-position query (ESC[6n) at once, and timestamps every chunk it reads from
# the PTY master (time.monotonic_ns()). ssh puts that PTY in raw mode (no output processing), so
# the bytes counted are exactly the channel data the session process wrote (SSH framing,
# padding and MAC not included). A "burst" is what arrives until the output has been quiet for
# a threshold: 1.5 s for the first frame, 300 ms after a key.
#   1. first frame: bytes from the spawn of ssh until quiet for 1.5 s, and the time from the
#      spawn to the last byte of that burst (which includes the SSH login);
#   2. navigation keypress: on the Sites screen (`3` first: the Overview has no selection),
#      Down (ESC[B), then Up (ESC[A), alternately, --presses in all, each
#      followed by its burst; median and max bytes per press;
#   3. keypress -> frame written: for each of those presses, the time from the write of the
#      key to the first byte and to the last byte of its burst (the frame complete); p50, p99
#      (nearest rank) and max, in ms. Presses that drew nothing are counted and left out;
#   4. screen switch: `3` (Sites) then `1` (Overview), ten times each; median and max bytes
#      per switch;
#   5. idle: with no input, the bytes written in the next --idle seconds; total and B/s;
#   6. memory: the session process's PSS, anonymous PSS and RSS (/proc/PID/smaps_rollup of the
#      daemon's `vipanel __session` child), read after the idle time. With one session the
#      binary's pages are shared with the daemon only, so PSS counts them at half; the anonymous
#      part is what each further session costs;
#   7. quit: `q` (TUI_BYTES_QUIT_KEYS=BYTES replaces it, a bash $'...' string, e.g.
#      $'\x15exit\r' for trying the harness against the line shell); ssh must exit with status
#      0 within 5 s, else the benchmark fails.
# The 300 ms threshold means a refresh that falls within 300 ms after a key's frame is counted
# with that key, and a screen that redraws more often than every 300 ms never ends a burst (the
# key then waits 10 s and is reported as such).
#
# When run as root the session processes run as the account in VIPANEL_SESSION__USER, else
# `vipanel-t-bench` (created by the daemon if missing, removed at the end if this run's daemon
# created it). Everything lives in a temp dir under /tmp, removed on exit. It starts a private
# vipanel, the python3 client and ssh processes, and stops exactly those (by PID) on exit.
set -euo pipefail

die() { printf 'tui_bytes: error: %s\n' "$*" >&2; exit 1; }
note() { printf 'tui_bytes: %s\n' "$*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
CMDLINE="bash benches/tui_bytes.sh${*:+ $*}"

BINARY=""
IDLE=60
PRESSES=200
MODES=normal,low
SITES=20
MARKDOWN=0
SHOW=0
SKIP_UI=${TUI_BYTES_SKIP_UI:-0}
QUIT_KEYS=${TUI_BYTES_QUIT_KEYS:-q}

while [[ $# -gt 0 ]]; do
    case $1 in
        --binary) [[ $# -ge 2 ]] || die "--binary needs a value"; BINARY=$2; shift 2 ;;
        --binary=*) BINARY=${1#*=}; shift ;;
        --idle) [[ $# -ge 2 ]] || die "--idle needs a value"; IDLE=$2; shift 2 ;;
        --idle=*) IDLE=${1#*=}; shift ;;
        --presses) [[ $# -ge 2 ]] || die "--presses needs a value"; PRESSES=$2; shift 2 ;;
        --presses=*) PRESSES=${1#*=}; shift ;;
        --modes) [[ $# -ge 2 ]] || die "--modes needs a value"; MODES=$2; shift 2 ;;
        --modes=*) MODES=${1#*=}; shift ;;
        --sites) [[ $# -ge 2 ]] || die "--sites needs a value"; SITES=$2; shift 2 ;;
        --sites=*) SITES=${1#*=}; shift ;;
        --markdown) MARKDOWN=1; shift ;;
        --show) SHOW=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ $IDLE =~ ^[0-9]+$ && $IDLE -ge 1 ]] || die "--idle must be a positive integer"
[[ $PRESSES =~ ^[0-9]+$ && $PRESSES -ge 1 ]] || die "--presses must be a positive integer"
[[ $SITES =~ ^[0-9]+$ ]] || die "--sites must be a whole number"
IFS=, read -r -a MODE_LIST <<<"$MODES"
[[ ${#MODE_LIST[@]} -ge 1 ]] || die "--modes is empty"
for mode in "${MODE_LIST[@]}"; do
    [[ $mode == normal || $mode == low ]] || die "--modes: unknown mode '$mode' (normal, low)"
done
[[ $SKIP_UI == 0 || $MODES == normal ]] \
    || die "TUI_BYTES_SKIP_UI=1 cannot set a mode: use it with --modes normal only"
[[ -n $QUIT_KEYS ]] || die "TUI_BYTES_QUIT_KEYS is empty"

BINARY=$(vipanel_binary "$BINARY" "$ROOT")
for tool in ssh ssh-keygen python3 timeout; do
    command -v "$tool" >/dev/null || die "$tool not found"
done

# ------------------------------------------------------------- cleanup ----

DIR=""
VIPANEL_PID=""
CLIENT_PID=""
EXEC_PID=""

# stop_ssh_of FILE: stops the ssh process whose PID the client wrote to FILE, if it still runs
# ssh (the client stops it itself unless it was killed).
stop_ssh_of() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 0
    [[ $pid =~ ^[0-9]+$ && $(cat "/proc/$pid/comm" 2>/dev/null) == ssh ]] || return 0
    stop_pid "$pid"
}

cleanup() {
    local rc=$?
    set +e
    [[ -n $CLIENT_PID ]] && stop_pid "$CLIENT_PID"
    [[ -n $DIR ]] && stop_ssh_of "$DIR/ssh.pid"
    [[ -n $EXEC_PID ]] && stop_pid "$EXEC_PID"
    [[ -n $VIPANEL_PID ]] && stop_pid "$VIPANEL_PID"
    remove_bench_account
    [[ -n $DIR && -d $DIR ]] && rm -rf -- "$DIR"
    return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --------------------------------------------------------------- setup ----

DIR=$(mktemp -d /tmp/vipanel-tui-bytes.XXXXXX)
ssh-keygen -q -t ed25519 -N '' -C vipanel-bench-admin -f "$DIR/admin"
start_vipanel "$BINARY" "$DIR" VIPANEL_INITIAL_ADMIN_KEYS="$DIR/admin.pub" VIPANEL_AUTH__TOTP=off
SSH_OPTS=(-F /dev/null -p "$PORT" -i "$DIR/admin" -o IdentitiesOnly=yes -o IdentityAgent=none
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
    -o BatchMode=yes -o ControlMaster=no -o ControlPath=none -o ConnectTimeout=10)

# run_exec WHAT ARGS...: `ssh panel@127.0.0.1 ARGS...` within 60 s (in the background, so that
# a TERM stops it at once); dies with its output and the daemon's log when it fails.
run_exec() {
    local what=$1 rc=0
    shift
    timeout 60 ssh "${SSH_OPTS[@]}" -T panel@127.0.0.1 "$@" </dev/null >"$DIR/exec.out" 2>&1 &
    EXEC_PID=$!
    wait "$EXEC_PID" || rc=$?
    EXEC_PID=""
    if [[ $rc -ne 0 ]]; then
        show_log "$DIR/exec.out"
        show_log "$DIR/vipanel.err" 10
        die "$what: \`ssh panel@127.0.0.1 $*\` exited with status $rc"
    fi
}

if [[ $SITES -gt 0 ]]; then
    note "seeding $SITES static sites"
    for ((i = 1; i <= SITES; i++)); do
        run_exec "seeding site $i" site create "site$i.example" --type static
    done
fi

# ------------------------------------------------------ the terminal -----

cat >"$DIR/client.py" <<'PY'
import fcntl, json, math, os, pty, re, select, signal, statistics, struct, sys, termios, time

COLS, ROWS = 120, 40
DSR, DSR_REPLY = b"\x1b[6n", b"\x1b[1;1R"
DOWN, UP = b"\x1b[B", b"\x1b[A"

def measure(port, key, mode, presses, idle, quit_keys, pid_file, out_file, show):
    ssh = ["ssh", "-F", "/dev/null", "-p", port, "-i", key, "-o", "IdentitiesOnly=yes",
           "-o", "IdentityAgent=none", "-o", "StrictHostKeyChecking=no",
           "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
           "-o", "ControlMaster=no", "-o", "ControlPath=none", "-o", "ConnectTimeout=10",
           "-tt", "panel@127.0.0.1"]
    env = dict(os.environ, TERM="xterm-256color")
    t_spawn = time.monotonic_ns()
    pid, fd = pty.fork()
    if pid == 0:
        try:
            # The child's stdin is the PTY's slave: its size before ssh reads it for pty-req.
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
            os.execvpe("ssh", ssh, env)
        finally:
            os._exit(127)
    with open(pid_file, "w") as f:
        f.write(f"{pid}\n")
    state = {"status": None}

    def stop_ssh(*_):
        if state["status"] is None:
            try:
                os.kill(pid, signal.SIGTERM)
                time.sleep(0.2)
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass
        sys.exit(143)
    signal.signal(signal.SIGTERM, stop_ssh)

    raw = bytearray()   # everything read, for --show
    tail = b""          # the last bytes of the previous chunk: a query split across reads
    queries = 0

    def read(timeout):
        """One chunk read within `timeout` s: (monotonic ns, bytes) or None; answers ESC[6n."""
        nonlocal tail, queries
        ready, _, _ = select.select([fd], [], [], max(timeout, 0))
        if not ready:
            return None
        try:
            data = os.read(fd, 65536)
        except OSError:     # EIO: ssh exited and the slave is closed
            data = b""
        t = time.monotonic_ns()
        if not data:
            return (t, b"")
        raw.extend(data)
        seen = tail + data
        n = seen.count(DSR) - tail.count(DSR)
        if n:
            queries += n
            os.write(fd, DSR_REPLY * n)
        tail = seen[-(len(DSR) - 1):]
        return (t, data)

    def burst(quiet_s, max_s):
        """Chunks until nothing arrives for quiet_s (or max_s in all): [(ns, len)], timed_out."""
        chunks = []
        end = time.monotonic() + max_s
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return chunks, True
            got = read(min(quiet_s, left))
            if got is None:
                return chunks, False
            if not got[1]:
                fail(f"ssh closed the terminal (after {len(raw)} bytes)")
            chunks.append((got[0], len(got[1])))

    def fail(msg):
        stop_ssh_nowait()
        sys.stderr.write(f"tui_bytes: error: {mode}: {msg}; the terminal's last bytes: "
                         f"{bytes(raw[-300:])!r}\n")
        sys.exit(1)

    def stop_ssh_nowait():
        if state["status"] is None:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass
            state["status"] = -1

    def key(data, quiet_s=0.3, max_s=10.0):
        t_write = time.monotonic_ns()
        os.write(fd, data)
        chunks, timed_out = burst(quiet_s, max_s)
        size = sum(n for _, n in chunks)
        first = (chunks[0][0] - t_write) / 1e6 if chunks else None
        last = (chunks[-1][0] - t_write) / 1e6 if chunks else None
        return size, first, last, timed_out

    # 1. First frame: the first byte within 30 s of the spawn, then until quiet for 1.5 s.
    got = read(30.0)
    if got is None or not got[1]:
        fail("nothing on the terminal within 30 s of the spawn of ssh")
    chunks, timed_out = burst(1.5, 30.0)
    chunks.insert(0, (got[0], len(got[1])))
    first_bytes = sum(n for _, n in chunks)
    first_ms = (chunks[-1][0] - t_spawn) / 1e6
    first_raw = bytes(raw)
    if timed_out:
        sys.stderr.write(f"tui_bytes: {mode}: the first frame never went quiet for 1.5 s "
                         f"in 30 s\n")

    # 2. and 3. Navigation keypresses, on the Sites screen (the Overview has no selection).
    key(b"3")
    press_bytes, press_first, press_last, press_slow = [], [], [], 0
    for i in range(presses):
        size, first, last, slow = key(DOWN if i % 2 == 0 else UP)
        press_bytes.append(size)
        press_slow += slow
        if last is not None:
            press_first.append(first)
            press_last.append(last)

    # 4. Screen switches.
    switch_bytes, switch_slow = [], 0
    for _ in range(10):
        for k in (b"3", b"1"):
            size, _, _, slow = key(k)
            switch_bytes.append(size)
            switch_slow += slow

    # 5. Idle.
    idle_bytes, idle_chunks = 0, 0
    end = time.monotonic() + idle
    while (left := end - time.monotonic()) > 0:
        got = read(left)
        if got is None:
            break
        if not got[1]:
            fail("ssh closed the terminal while idle")
        idle_bytes += len(got[1])
        idle_chunks += 1

    # The session process's memory after all that (its PSS, from smaps_rollup).
    memory = session_memory_kb(int(os.environ.get("TUI_BYTES_DAEMON", "0")))

    # 6. Quit.
    os.write(fd, quit_keys)
    end = time.monotonic() + 5
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            state["status"] = os.waitstatus_to_exitcode(status)
            break
        read(0.05)
    exit_code = state["status"]
    if exit_code is None:
        stop_ssh_nowait()
    os.close(fd)

    result = {
        "mode": mode, "first_bytes": first_bytes, "first_ms": first_ms, "first_slow": timed_out,
        "presses": presses, "press_bytes": press_bytes, "press_first_ms": press_first,
        "press_last_ms": press_last, "press_slow": press_slow,
        "switch_bytes": switch_bytes, "switch_slow": switch_slow,
        "idle_s": idle, "idle_bytes": idle_bytes, "idle_chunks": idle_chunks,
        "queries": queries, "exit_code": exit_code, "memory_kb": memory,
    }
    with open(out_file, "a") as f:
        f.write(json.dumps(result) + "\n")
    if show:
        print(f"first frame, {mode} mode ({first_bytes} bytes), rendered:")
        print("+" + "-" * COLS + "+")
        for line in render(first_raw):
            print("|" + line + "|")
        print("+" + "-" * COLS + "+")
    if exit_code is None:
        sys.exit(f"tui_bytes: error: {mode}: ssh did not exit within 5 s of the quit key "
                 f"{quit_keys!r} (killed)")
    if exit_code != 0:
        sys.exit(f"tui_bytes: error: {mode}: ssh exited with status {exit_code} after the quit key")

CSI = re.compile(r"\x1b\[([0-9;?<>=]*)[ -/]*([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b.")

def render(data):
    """A rough screen of the bytes: text, CR/LF/BS, cursor moves (H f A B C D E F G d),
    erase (J K); everything else dropped."""
    text = data.decode("utf-8", "replace")
    grid = [[" "] * COLS for _ in range(ROWS)]
    r = c = 0
    i = 0
    while i < len(text):
        m = CSI.match(text, i)
        if m:
            i = m.end()
            if m.group(2) is None:
                continue
            args = [int(a) if a.isdigit() else 0 for a in m.group(1).lstrip("?<>=").split(";")]
            a0 = args[0] or 1
            cmd = m.group(2)
            if cmd in "Hf":
                r = (args[0] or 1) - 1
                c = ((args[1] if len(args) > 1 else 0) or 1) - 1
            elif cmd == "A": r -= a0
            elif cmd == "B": r += a0
            elif cmd == "C": c += a0
            elif cmd == "D": c -= a0
            elif cmd == "E": r, c = r + a0, 0
            elif cmd == "F": r, c = r - a0, 0
            elif cmd == "G": c = a0 - 1
            elif cmd == "d": r = a0 - 1
            elif cmd == "J" and args[0] == 2:
                grid = [[" "] * COLS for _ in range(ROWS)]
            elif cmd == "J" and args[0] == 0:
                for rr in range(max(r, 0), ROWS):
                    for cc in range(max(c, 0) if rr == r else 0, COLS):
                        grid[rr][cc] = " "
            elif cmd == "K" and 0 <= r < ROWS:
                lo, hi = {0: (c, COLS), 1: (0, c + 1), 2: (0, COLS)}.get(args[0], (c, COLS))
                for cc in range(max(lo, 0), min(hi, COLS)):
                    grid[r][cc] = " "
            r, c = min(max(r, 0), ROWS - 1), min(max(c, 0), COLS - 1)
            continue
        ch = text[i]
        i += 1
        if ch == "\r": c = 0
        elif ch == "\n": r += 1
        elif ch == "\b": c = max(c - 1, 0)
        elif ch >= " ":
            if c >= COLS:
                r, c = r + 1, 0
            if r >= ROWS:
                grid = grid[1:] + [[" "] * COLS]
                r = ROWS - 1
            grid[r][c] = ch
            c += 1
        if r >= ROWS:
            grid = grid[1:] + [[" "] * COLS]
            r = ROWS - 1
    return ["".join(row) for row in grid]

def pct(values, p):
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]

def session_memory_kb(daemon):
    """Pss, Pss_Anon and Rss in kB of the daemon's one `vipanel __session` child ({} when not
    found). Pss counts the binary's pages shared with the daemon at half: Pss_Anon is what this
    session alone costs."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            argv = open(f"/proc/{entry}/cmdline", "rb").read()
            if ppid != daemon or b"__session" not in argv:
                continue
            fields = {}
            for line in open(f"/proc/{entry}/smaps_rollup"):
                name, _, rest = line.partition(":")
                if name in ("Pss", "Pss_Anon", "Rss"):
                    fields[name] = int(rest.split()[0])
            return fields
        except (OSError, ValueError, IndexError):
            continue
    return {}

def report(results_file, cmdline, machine, markdown):
    rows = [json.loads(line) for line in open(results_file)]
    med = statistics.median
    print()
    print(f"dashboard bytes at {COLS}x{ROWS} (bytes the session wrote; quiet = 1.5 s for the "
          f"first frame, 300 ms after a key)")
    print(f"  machine : {machine}")
    print(f"  command : {cmdline}")
    for x in rows:
        pb, lat, fst = x["press_bytes"], x["press_last_ms"], x["press_first_ms"]
        drew = len(lat)
        print(f"\n  {x['mode']} mode")
        print(f"    first frame            {x['first_bytes']:>8} bytes, last byte "
              f"{x['first_ms']:.0f} ms after the spawn of ssh"
              + (" (NEVER QUIET for 1.5 s: 30 s of output)" if x["first_slow"] else ""))
        print(f"    navigation press       median {med(pb):>6g} bytes, max {max(pb)} "
              f"({x['presses']} presses, {x['presses'] - drew} drew nothing, "
              f"{x['press_slow']} never went quiet)")
        if lat:
            print(f"    key -> last byte       p50 {pct(lat, 50):.1f} ms, p99 {pct(lat, 99):.1f}, "
                  f"max {max(lat):.1f}")
            print(f"    key -> first byte      p50 {pct(fst, 50):.1f} ms, p99 {pct(fst, 99):.1f}, "
                  f"max {max(fst):.1f}")
        else:
            print("    key -> frame           n/a (no press drew anything)")
        sb = x["switch_bytes"]
        print(f"    screen switch 3/1      median {med(sb):>6g} bytes, max {max(sb)} "
              f"({len(sb)} switches, {sb.count(0)} drew nothing, {x['switch_slow']} never went quiet)")
        print(f"    idle {x['idle_s']:>4} s              {x['idle_bytes']:>8} bytes, "
              f"{x['idle_bytes'] / x['idle_s']:.1f} B/s in {x['idle_chunks']} reads")
        print(f"    cursor queries         {x['queries']} answered")
        m = x.get("memory_kb") or {}
        print(f"    session process        PSS {m.get('Pss', 'n/a')} kB, of it anonymous "
              f"{m.get('Pss_Anon', 'n/a')} kB; RSS {m.get('Rss', 'n/a')} kB (after the idle time)")
        quit = ("no exit within 5 s (killed)" if x["exit_code"] is None
                else f"ssh exit status {x['exit_code']}")
        print(f"    quit                   {quit}")
    if markdown:
        print()
        print(f"`{cmdline}`")
        print()
        print("| mode | first frame bytes | nav press median/max bytes | switch median/max bytes "
              "| idle B/s | key→frame p50/p99/max ms | session PSS / anon kB |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for x in rows:
            lat = x["press_last_ms"]
            lat_s = (f"{pct(lat, 50):.1f} / {pct(lat, 99):.1f} / {max(lat):.1f}" if lat else "n/a")
            first = f"{x['first_bytes']}" + (" (never quiet)" if x["first_slow"] else "")
            print(f"| {x['mode']} | {first} | {med(x['press_bytes']):g} / "
                  f"{max(x['press_bytes'])} | {med(x['switch_bytes']):g} / {max(x['switch_bytes'])} "
                  f"| {x['idle_bytes'] / x['idle_s']:.1f} | {lat_s} "
                  f"| {(x.get('memory_kb') or {}).get('Pss', 'n/a')} / "
                  f"{(x.get('memory_kb') or {}).get('Pss_Anon', 'n/a')} |")
        print()
        print(f"Machine: {machine}.")

if __name__ == "__main__":
    if sys.argv[1] == "measure":
        port, key_file, mode, presses, idle, quit_hex, pid_file, out_file, show = sys.argv[2:11]
        measure(port, key_file, mode, int(presses), int(idle), bytes.fromhex(quit_hex),
                pid_file, out_file, show == "1")
    else:
        report(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == "1")
PY

# -------------------------------------------------------------- measure ---

QUIT_HEX=$(printf '%s' "$QUIT_KEYS" | od -An -tx1 | tr -d ' \n')
FAILED=""
for mode in "${MODE_LIST[@]}"; do
    if [[ $SKIP_UI == 1 ]]; then
        note "TUI_BYTES_SKIP_UI=1: not setting the bandwidth mode (the default applies)"
    else
        run_exec "setting the $mode mode (needs the \`ui\` command; TUI_BYTES_SKIP_UI=1 skips it)" \
            ui bandwidth "$mode"
    fi
    note "$mode mode: first frame, $PRESSES presses, 20 screen switches, ${IDLE} s idle"
    rc=0
    TUI_BYTES_DAEMON=$VIPANEL_PID python3 "$DIR/client.py" measure "$PORT" "$DIR/admin" "$mode" "$PRESSES" "$IDLE" \
        "$QUIT_HEX" "$DIR/ssh.pid" "$DIR/results.jsonl" "$SHOW" &
    CLIENT_PID=$!
    wait "$CLIENT_PID" || rc=$?
    CLIENT_PID=""
    stop_ssh_of "$DIR/ssh.pid"
    if [[ $rc -ne 0 ]]; then
        show_log "$DIR/vipanel.err" 10
        FAILED="$mode mode: the terminal client failed (status $rc)"
        break
    fi
done

# ------------------------------------------------------------- report -----

CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n1)
SSH_VERSION=$(ssh -V 2>&1 | cut -d, -f1)
VIPANEL_VERSION=$("$BINARY" --version 2>/dev/null | head -n1 || true)
MACHINE="$(nproc) cpus${CPU_MODEL:+ ($CPU_MODEL)}, Linux $(uname -r), $SSH_VERSION${VIPANEL_VERSION:+, $VIPANEL_VERSION}; $SITES sites"
# What was measured is printed also when a mode failed (e.g. only its quit), then it fails.
if [[ -s $DIR/results.jsonl ]]; then
    python3 "$DIR/client.py" report "$DIR/results.jsonl" "$CMDLINE" "$MACHINE" "$MARKDOWN"
fi
[[ -z $FAILED ]] || die "$FAILED"
