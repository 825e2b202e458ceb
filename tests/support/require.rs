//! Whether the external programs a test drives are installed; shared by the test harnesses
//! (`support`, `session_support`).

use std::process::{Command, Stdio};

/// Runs each `(program, harmless argument)`; when some are missing, panics under
/// `VIPANEL_REQUIRE_SERVICES=1`, else prints why (`{what} needs … ({install})`) and says no.
pub fn programs_available(programs: &[(&str, &str)], what: &str, install: &str) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .filter(|(program, arg)| {
            Command::new(program)
                .arg(arg)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_err()
        })
        .map(|(program, _)| *program)
        .collect();
    if missing.is_empty() {
        return true;
    }
    cannot_run(&format!(
        "{what} needs {} ({install})",
        missing.join(" and ")
    ));
    false
}

/// A test cannot run here, for `reason`: panics under `VIPANEL_REQUIRE_SERVICES=1`, else prints
/// the reason (the caller then skips).
pub fn cannot_run(reason: &str) {
    if std::env::var("VIPANEL_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("{reason}; VIPANEL_REQUIRE_SERVICES=1 forbids skipping");
    }
    eprintln!("skipping: {reason}");
}
