//! Keyboard signals while a command runs. The line editor reads keys in raw mode, but while a
//! command runs the terminal is in its normal mode, where Ctrl-C, Ctrl-\ and Ctrl-Z become
//! signals to this process (the foreground of its terminal). Ctrl-C cancels the running command
//! over the link; the other two are ignored, since a session process stopped or dumped by a key
//! would hang or drop the login.

use crate::session::link::Link;
use signal_hook::consts::{SIGINT, SIGQUIT, SIGTSTP};
use signal_hook::iterator::Signals;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Starts forwarding Ctrl-C to the link's foreground request.
pub fn forward_interrupts(link: Link) -> std::io::Result<()> {
    let ignored = Arc::new(AtomicBool::new(false));
    for signal in [SIGQUIT, SIGTSTP] {
        signal_hook::flag::register(signal, Arc::clone(&ignored))?;
    }
    let mut signals = Signals::new([SIGINT])?;
    std::thread::Builder::new()
        .name("interrupts".into())
        .spawn(move || {
            for _ in signals.forever() {
                link.interrupt();
            }
        })?;
    Ok(())
}
