//! The shell's own part of `help`: its keys and words, shown after the command tree's help.

/// Appended to the output of a bare `help` in the shell.
pub const SHELL_KEYS: &str = "\
Shell:
  Tab          complete commands, flags and names (sites, servers, users, tenants)
  Up, Down     walk the history (kept by the panel, shared by your sessions)
  Ctrl-R       search the history
  Right, Ctrl-F  accept the grey hint from history
  Ctrl-C       clear the line, or cancel a running command
  Ctrl-L       clear the screen (also `clear`)
  Ctrl-D       leave (also `exit`)
  tui          back to the dashboard (where `!` comes here)
  A line starting with a space is not kept in the history. An open quote continues the
  line on the next one.
";
