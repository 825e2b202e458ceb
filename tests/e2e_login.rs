//! End-to-end login security with the real OpenSSH client: TOTP as the second step
//! (keyboard-interactive, answered by `sshpass -P 'Verification code'`), enrollment on a PTY
//! with the creator's one-time code, replay refusal, recovery codes, the per-user lockout and
//! automation keys. Each scenario uses a fresh user: a time step is accepted once per user.

mod support;

use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::{CLIENT_OPTIONS, Daemon, Key, Run, TtyClient, run_bounded};
use vipanel::secret::Totp;

/// A daemon with TOTP required and quick failures (no per-code delay).
fn daemon() -> Option<Daemon> {
    daemon_with(&[])
}

/// [`daemon`] with extra environment settings.
fn daemon_with(env: &[(&str, &str)]) -> Option<Daemon> {
    if !support::program_exists("sshpass") {
        assert!(
            std::env::var_os("VIPANEL_REQUIRE_SERVICES").is_none(),
            "sshpass is required (VIPANEL_REQUIRE_SERVICES is set)"
        );
        eprintln!("skipping: sshpass is not installed");
        return None;
    }
    let mut builder = Daemon::builder()
        .env("VIPANEL_AUTH__TOTP", "required")
        .env("VIPANEL_AUTH__CODE_FAILURE_DELAY_MS", "0");
    for (name, value) in env {
        builder = builder.env(name, value);
    }
    builder.start()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// The harness's client options without `BatchMode=yes` (which turns keyboard-interactive off)
/// and without `LogLevel=ERROR` (which hides keyboard-interactive instructions).
fn interactive_options() -> Vec<&'static str> {
    let mut options = Vec::new();
    let mut words = CLIENT_OPTIONS.iter();
    while let Some(word) = words.next() {
        if *word == "-o" {
            let value = words.next().expect("option value");
            if !value.starts_with("BatchMode") && !value.starts_with("LogLevel") {
                options.extend(["-o", *value]);
            }
        }
    }
    options
}

/// `ssh` for `login@127.0.0.1` without BatchMode; one code prompt at most.
fn ssh_command(d: &Daemon, key: &Key, login: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new("ssh");
    cmd.args(["-F", "/dev/null", "-p", &d.port().to_string(), "-i"])
        .arg(&key.private)
        .args(interactive_options())
        .args(["-o", "BatchMode=no", "-o", "NumberOfPasswordPrompts=1"])
        .args(["-o", "ControlMaster=no", "-o", "ControlPath=none"])
        .args(extra)
        .arg(format!("{login}@127.0.0.1"));
    cmd.env_remove("SSH_AUTH_SOCK");
    cmd
}

/// Logs in with `key` and answers `Verification code: ` with `code`, running `words`.
fn login_with_code(d: &Daemon, key: &Key, code: &str, words: &[&str]) -> Run {
    let mut cmd = Command::new("sshpass");
    cmd.args(["-P", "Verification code", "-p", code]);
    let ssh = ssh_command(d, key, "panel", &["-n"]);
    cmd.arg(ssh.get_program()).args(ssh.get_args());
    cmd.arg(support::remote_line(words));
    cmd.env_remove("SSH_AUTH_SOCK");
    run_bounded(
        &mut cmd,
        None,
        &format!("sshpass … ssh {}", words.join(" ")),
    )
}

/// A fresh user with a key and a provisioned authenticator (`vipanel admin totp enroll`).
fn enrolled_user(d: &Daemon, name: &str) -> (Key, Totp, Value) {
    let key = d.user("acme", name, "operator");
    let enrollment = d.admin_json(&["totp", "enroll", name]);
    let secret = enrollment["secret"].as_str().expect("secret");
    assert!(
        enrollment["uri"]
            .as_str()
            .expect("uri")
            .starts_with(&format!("otpauth://totp/vipanel:{name}?secret={secret}")),
        "{enrollment}"
    );
    (key, Totp::from_base32(secret).expect("base32"), enrollment)
}

fn whoami(run: &Run) -> String {
    run.stdout.trim().to_owned()
}

#[test]
fn key_and_code_log_in_and_a_code_is_accepted_once() {
    let Some(d) = daemon() else { return };
    let (key, totp, _) = enrolled_user(&d, "tara");
    // A key alone is not enough: BatchMode cannot answer the code prompt.
    let batch = d.panel(&key, &["whoami"]);
    assert_eq!(batch.code, 255, "{batch:?}");
    let t = now();
    let code = totp.code_at(t);
    let run = login_with_code(&d, &key, &code, &["whoami"]);
    run.expect(0);
    assert_eq!(whoami(&run), "tara");
    // The same code again, on a second connection in the same step: a replay.
    let replay = login_with_code(&d, &key, &code, &["whoami"]);
    assert_eq!(
        replay.code, 255,
        "a replayed code must be refused: {replay:?}"
    );
    // The next step's code (within the ±1 step window) is fresh and works.
    login_with_code(&d, &key, &totp.code_at(t + 30), &["whoami"]).expect(0);
    let rows = d.audit_rows();
    assert!(
        rows.iter().any(|r| r.action == "login"
            && r.actor == "tara"
            && r.result == "refused"
            && r.detail.contains("code already used")),
        "the replay is audited: {rows:#?}"
    );
}

#[test]
fn a_wrong_code_is_refused() {
    let Some(d) = daemon() else { return };
    let (key, totp, _) = enrolled_user(&d, "wanda");
    let good = totp.code_at(now());
    let wrong = if good == "000000" { "111111" } else { "000000" };
    let run = login_with_code(&d, &key, wrong, &["whoami"]);
    assert_eq!(run.code, 255, "{run:?}");
    assert!(run.stdout.is_empty());
    let rows = d.audit_rows();
    assert!(
        rows.iter().any(|r| r.actor == "wanda"
            && r.result == "refused"
            && r.detail.contains("wrong code")),
        "{rows:#?}"
    );
}

#[test]
fn a_recovery_code_works_once() {
    let Some(d) = daemon() else { return };
    let (key, _, enrollment) = enrolled_user(&d, "rita");
    let codes: Vec<&str> = enrollment["recovery_codes"]
        .as_array()
        .expect("recovery codes")
        .iter()
        .map(|c| c.as_str().expect("code"))
        .collect();
    assert_eq!(codes.len(), 10);
    let first = codes[0];
    login_with_code(&d, &key, first, &["whoami"]).expect(0);
    let again = login_with_code(&d, &key, first, &["whoami"]);
    assert_eq!(
        again.code, 255,
        "a used recovery code must be refused: {again:?}"
    );
    // Another one still works, typed in upper case without dashes.
    let second = codes[1].replace('-', "").to_uppercase();
    login_with_code(&d, &key, &second, &["whoami"]).expect(0);
}

#[test]
fn five_wrong_codes_lock_the_user_out_until_unlocked() {
    let Some(d) = daemon() else { return };
    let (key, totp, _) = enrolled_user(&d, "luke");
    let t = now();
    let good = totp.code_at(t);
    let wrong = if good == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let run = login_with_code(&d, &key, wrong, &["whoami"]);
        assert_eq!(run.code, 255, "{run:?}");
    }
    // Locked out: even the right code is refused, and the client is told why.
    let locked = login_with_code(&d, &key, &good, &["whoami"]);
    assert_eq!(locked.code, 255, "{locked:?}");
    assert!(
        locked.stderr.contains("luke is locked out until")
            && locked.stderr.contains("user unlock luke"),
        "{}",
        locked.stderr
    );
    let rows = d.audit_rows();
    assert!(
        rows.iter()
            .any(|r| r.action == "login.lockout" && r.target == "luke"),
        "the lockout is audited: {rows:#?}"
    );
    d.admin(&["user", "unlock", "luke"]).expect(0);
    let run = login_with_code(&d, &key, &totp.code_at(t + 30), &["whoami"]);
    run.expect(0);
    assert_eq!(whoami(&run), "luke");
}

#[test]
fn automation_keys_skip_the_code_only_from_their_networks() {
    let Some(d) = daemon() else { return };
    let (_, _, _) = enrolled_user(&d, "otto");
    let ci = d.new_key("otto-ci");
    let added = d.admin_stdin(
        &[
            "key",
            "add",
            "--user",
            "otto",
            "--automation",
            "--from",
            "127.0.0.1/32",
            "--role",
            "viewer",
            "-o",
            "json",
        ],
        Some(&ci.public_bytes()),
    );
    added.expect(0);
    let listed = added.json();
    assert_eq!(listed[0]["automation"], true, "{listed}");
    assert_eq!(listed[0]["allowed_from"][0], "127.0.0.1/32", "{listed}");
    // BatchMode works: no code is asked; the role is capped at viewer.
    let me = d.ssh_json(&ci, &["whoami"]);
    assert_eq!(me["user"], "otto");
    assert_eq!(me["role"], "viewer", "{me}");
    let refused = d.panel(&ci, &["site", "create", "ci.example.com"]);
    assert_eq!(refused.code, 6, "{refused:?}");
    // It cannot lift its own limits: no new keys, no authenticator changes.
    let escape = d.new_key("otto-escape");
    let run = d.ssh_stdin(
        &ci,
        "panel",
        &["key", "add", "--automation", "--from", "0.0.0.0/0"],
        &escape.public_bytes(),
    );
    assert_eq!(run.code, 6, "{run:?}");
    assert!(
        run.stderr.contains("automation key cannot"),
        "{}",
        run.stderr
    );
    assert_eq!(d.panel(&ci, &["totp", "enroll"]).code, 6);
    assert_eq!(d.panel(&ci, &["totp", "recovery-codes"]).code, 6);

    let elsewhere = d.new_key("otto-elsewhere");
    d.admin_stdin(
        &[
            "key",
            "add",
            "--user",
            "otto",
            "--automation",
            "--from",
            "10.0.0.0/8",
        ],
        Some(&elsewhere.public_bytes()),
    )
    .expect(0);
    let run = d.panel(&elsewhere, &["whoami"]);
    assert_eq!(run.code, 255, "outside its --from: {run:?}");
    let rows = d.audit_rows();
    assert!(
        rows.iter().any(|r| r.action == "login"
            && r.result == "refused"
            && r.detail.contains("outside its --from")),
        "{rows:#?}"
    );

    // --role above the user's own role, and --from without --automation, are refused.
    let higher = d.new_key("otto-higher");
    let run = d.admin_stdin(
        &[
            "key",
            "add",
            "--user",
            "otto",
            "--automation",
            "--from",
            "127.0.0.1",
            "--role",
            "admin",
        ],
        Some(&higher.public_bytes()),
    );
    assert_eq!(run.code, 5, "{run:?}");
    let run = d.admin_stdin(
        &["key", "add", "--user", "otto", "--from", "127.0.0.1"],
        Some(&higher.public_bytes()),
    );
    assert_eq!(run.code, 2, "{run:?}");
}

#[test]
fn keyboard_interactive_without_the_key_step_is_refused() {
    let Some(d) = daemon() else { return };
    let (key, totp, _) = enrolled_user(&d, "kim");
    let mut cmd = Command::new("sshpass");
    cmd.args(["-P", "Verification code", "-p", &totp.code_at(now())]);
    let ssh = ssh_command(
        &d,
        &key,
        "panel",
        &["-n", "-o", "PreferredAuthentications=keyboard-interactive"],
    );
    cmd.arg(ssh.get_program())
        .args(ssh.get_args())
        .arg("whoami");
    let run = run_bounded(&mut cmd, None, "ssh with keyboard-interactive only");
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stdout.is_empty());
}

/// An `ssh -tt` session driven like a person at a terminal: wait for text, type a line.
struct Terminal(TtyClient);

impl Terminal {
    fn start(d: &Daemon, key: &Key, words: &[&str]) -> Terminal {
        Terminal::spawn(d, key, Some(&support::remote_line(words)))
    }

    /// A login without a command: the dashboard.
    fn interactive(d: &Daemon, key: &Key) -> Terminal {
        Terminal::spawn(d, key, None)
    }

    fn spawn(d: &Daemon, key: &Key, remote: Option<&str>) -> Terminal {
        let mut cmd = ssh_command(d, key, "panel", &["-tt"]);
        cmd.args(remote);
        Terminal(TtyClient::spawn(cmd))
    }

    /// Waits until `needle` appears (at most 30 s) and returns everything seen so far.
    #[track_caller]
    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let seen = self.0.text();
            if seen.contains(needle) {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} did not appear; the terminal shows:\n{seen}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn type_line(&mut self, line: &str) {
        self.0.type_line(line);
    }

    /// Waits for the end (at most 30 s): the exit code and everything shown.
    fn finish(mut self) -> (i32, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.0.child.try_wait().expect("wait for ssh") {
                std::thread::sleep(Duration::from_millis(50));
                return (status.code().unwrap_or(-1), self.0.seen());
            }
            if Instant::now() > deadline {
                panic!("ssh -tt did not end:\n{}", self.0.seen());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The base32 secret shown by the enrollment screen.
fn shown_secret(screen: &str) -> String {
    let line = screen
        .lines()
        .find(|l| l.contains("enter the secret by hand:"))
        .unwrap_or_else(|| panic!("no secret on the screen:\n{screen}"));
    line.rsplit(':').next().expect("secret").trim().to_owned()
}

#[test]
fn enrollment_needs_the_creators_one_time_code() {
    let Some(d) = daemon() else { return };
    let key = d.new_key("erin");
    d.admin(&["tenant", "create", "acme"]).expect(0);
    let created = d.admin_json(&[
        "user",
        "create",
        "erin",
        "--role",
        "operator",
        "--tenant",
        "acme",
        "--key",
        &key.public_line(),
    ]);
    let enroll_code = created["enroll_code"]
        .as_str()
        .expect("enroll_code")
        .to_owned();
    assert!(created["enroll_code_expires_at"].is_string(), "{created}");

    // Without a terminal the command does not run, and the message says how to enroll.
    let run = d.panel(&key, &["user", "create", "mallory", "--role", "viewer"]);
    assert_eq!(run.code, 7, "{run:?}");
    assert!(run.stderr.contains("ssh -t -p"), "{}", run.stderr);
    assert!(run.stderr.contains("enrollment code"), "{}", run.stderr);
    assert_eq!(
        d.admin(&["user", "show", "mallory"]).code,
        3,
        "the command did not run"
    );

    // At a terminal: a wrong enrollment code is refused, the right one shows the QR code.
    let mut term = Terminal::start(&d, &key, &["whoami"]);
    term.wait_for("Enrollment code: ");
    term.type_line("aaaa-bbbb-cccc");
    term.wait_for("wrong or has expired");
    term.type_line(&enroll_code);
    let screen = term.wait_for("Verification code: ");
    assert!(
        screen.contains('█') || screen.contains('▀'),
        "a QR code:\n{screen}"
    );
    assert!(
        screen.contains("otpauth://totp/vipanel:erin?secret="),
        "{screen}"
    );
    let totp = Totp::from_base32(&shown_secret(&screen)).expect("shown secret");
    let t = now();
    term.type_line(&totp.code_at(t));
    term.wait_for("recovery codes");
    let (code, screen) = term.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("erin"),
        "the command ran after enrolling:\n{screen}"
    );

    // From now on the code is asked at login, and the enrollment code is spent.
    login_with_code(&d, &key, &totp.code_at(t + 30), &["whoami"]).expect(0);
    let rows = d.audit_rows();
    assert!(
        rows.iter()
            .any(|r| r.action == "totp.enroll" && r.target == "erin"),
        "{rows:#?}"
    );
}

#[test]
fn the_bootstrap_admin_enrolls_at_its_first_login_without_a_code() {
    // A short pre-authentication deadline: enrolling gets the longer enrollment deadline.
    let Some(d) = daemon_with(&[("VIPANEL_LIMITS__PRE_AUTH_TIMEOUT_SECS", "1")]) else {
        return;
    };
    let mut term = Terminal::start(&d, &d.admin_key, &["whoami"]);
    let screen = term.wait_for("Verification code: ");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!screen.contains("Enrollment code"), "{screen}");
    let totp = Totp::from_base32(&shown_secret(&screen)).expect("shown secret");
    // A wrong confirmation code is refused; the right one enrolls.
    let good = totp.code_at(now());
    term.type_line(if good == "000000" { "111111" } else { "000000" });
    term.wait_for("does not match");
    term.type_line(&good);
    let (code, screen) = term.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("admin"), "{screen}");
}

#[test]
fn a_shell_login_of_an_unenrolled_user_enrolls_first_then_starts_the_shell() {
    let Some(d) = daemon() else { return };
    let mut term = Terminal::start(&d, &d.admin_key, &["shell"]);
    let screen = term.wait_for("Verification code: ");
    let totp = Totp::from_base32(&shown_secret(&screen)).expect("shown secret");
    term.type_line(&totp.code_at(now()));
    term.wait_for("recovery codes");
    term.wait_for("Press Enter when you have stored them.");
    term.type_line("");
    term.wait_for("admin@system> ");
    term.type_line("exit");
    let (code, screen) = term.finish();
    assert_eq!(code, 0, "{screen}");
}

#[test]
fn an_interactive_login_of_an_unenrolled_user_enrolls_first_then_opens_the_dashboard() {
    let Some(d) = daemon() else { return };
    let mut term = Terminal::interactive(&d, &d.admin_key);
    let screen = term.wait_for("Verification code: ");
    let totp = Totp::from_base32(&shown_secret(&screen)).expect("shown secret");
    term.type_line(&totp.code_at(now()));
    term.wait_for("recovery codes");
    term.wait_for("Press Enter when you have stored them.");
    term.type_line("");
    term.wait_for("Recent events");
    term.type_line("q");
    let (code, screen) = term.finish();
    assert_eq!(code, 0, "{screen}");
}

#[test]
fn owners_reset_an_authenticator_and_issue_enrollment_codes() {
    let Some(d) = daemon() else { return };
    let (_, _, _) = enrolled_user(&d, "olga");
    // A user with an authenticator gets no enrollment code until it is reset.
    assert_eq!(d.admin(&["user", "enroll-code", "olga"]).code, 4);
    let reset = d.admin_json(&["totp", "reset", "olga"]);
    assert_eq!(reset["user"], "olga");
    assert_eq!(
        reset["enroll_code"].as_str().map(str::len),
        Some(14),
        "{reset}"
    );
    let again = d.admin_json(&["user", "enroll-code", "olga"]);
    assert_ne!(again["enroll_code"], reset["enroll_code"]);
    // The table form says what to do with it.
    let shown = d.admin(&["user", "enroll-code", "olga"]);
    shown.expect(0);
    assert!(
        shown.stdout.contains("Enrollment code for olga"),
        "{}",
        shown.stdout
    );
}
