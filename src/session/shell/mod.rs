//! The interactive shell (reedline): the prompt, completion, hints, highlighting, the validator,
//! history over the link, and the loop that runs each entered line.
//!
//! Modules: [`words`] splits a line as exec does; [`grammar`] is the command tree as the shell
//! sees it; [`complete`], [`highlight`], [`validate`], [`history`] and [`prompt`] plug into
//! reedline; [`run`] runs a command over the link; [`terminal`] writes outside the editor;
//! [`signals`] turns Ctrl-C during a command into a cancel.
//!
//! Round trips to the user's terminal: reedline asks for the cursor position (`ESC[6n`) once
//! per prompt, on a resize, on each completion menu step that calls the completer and after a
//! notice; typing costs none. Nothing here adds more: no idle callback (it would re-anchor the
//! prompt on every poll), no kitty keyboard query, no right prompt. See docs/benchmarks.md.

pub mod complete;
pub mod grammar;
pub mod help;
pub mod highlight;
pub mod history;
pub mod palette;
pub mod prompt;
pub mod run;
pub mod signals;
pub mod terminal;
pub mod validate;
pub mod words;

use crate::session::link::{Link, LinkError, Welcome};
use complete::{CommandCount, LinkValues, ShellCompleter};
use grammar::Grammar;
use highlight::ShellHighlighter;
use history::LinkHistory;
use palette::Palette;
use prompt::ShellPrompt;
use reedline::{
    ColumnarMenu, DefaultHinter, Emacs, ExternalPrinter, KeyCode, KeyModifiers, MenuBuilder,
    Reedline, ReedlineEvent, ReedlineMenu, Signal, default_emacs_keybindings,
};
use std::sync::Arc;
use std::time::Duration;
use validate::QuoteValidator;

/// How often the editor looks for notices and for the end of the link while idle.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Notices queued for the editor before more are held by the link.
const PRINTER_CAPACITY: usize = 16;
const COMPLETION_MENU: &str = "completion";

/// Exit codes of the session process.
pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;

/// How the shell looks: colour or not.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub colour: bool,
}

/// How the shell ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `exit`, Ctrl-D or the end of the link: the session ends with this code.
    Exit(u8),
    /// `tui`: back to the dashboard.
    Dashboard,
}

/// Runs the shell until `exit`, Ctrl-D, `tui` or the end of the link.
pub fn run(link: &Link, welcome: &Welcome, options: Options) -> Outcome {
    Outcome::Exit(match run_editor(link, welcome, options) {
        Ok(Flow::Dashboard) => return Outcome::Dashboard,
        Ok(_) => EXIT_OK,
        Err(code) => code,
    })
}

fn run_editor(link: &Link, welcome: &Welcome, options: Options) -> Result<Flow, u8> {
    let palette = Palette::new(options.colour);
    let commands = CommandCount::default();
    let mut editor = match editor(link, palette, commands.clone()) {
        Ok(editor) => editor,
        Err(err) => {
            terminal::write_output("", &format!("vipanel: cannot start the shell: {err}\n"));
            return Err(EXIT_FAILED);
        }
    };
    let prompt = ShellPrompt::new(&welcome.user, &welcome.tenant, palette);
    loop {
        let line = match editor.read_line(&prompt) {
            Ok(Signal::Success(line)) => line,
            Ok(Signal::CtrlD) => return Ok(Flow::Exit),
            Ok(Signal::ExternalBreak(_)) => return Err(link_ended(link)),
            Ok(_) => continue,
            Err(err) => {
                terminal::write_output("", &format!("vipanel: terminal error: {err}\n"));
                return Err(EXIT_FAILED);
            }
        };
        commands.bump();
        match run_line(link, &line) {
            Ok(Flow::Continue) => {}
            Ok(flow) => return Ok(flow),
            Err(_) => return Err(link_ended(link)),
        }
    }
}

enum Flow {
    Continue,
    Exit,
    Dashboard,
}

fn run_line(link: &Link, line: &str) -> Result<Flow, LinkError> {
    let argv = match shell_words::split(line) {
        Ok(argv) => argv,
        Err(_) => {
            terminal::write_output("", "vipanel: unbalanced quotes\n");
            return Ok(Flow::Continue);
        }
    };
    match argv.first().map(String::as_str) {
        None => {}
        Some("exit") => return Ok(Flow::Exit),
        Some("tui") if argv.len() == 1 => return Ok(Flow::Dashboard),
        Some("clear") => terminal::clear_screen(),
        Some("help") if argv.len() == 1 => {
            run::run(link, argv)?;
            terminal::write_output(&format!("\n{}", help::SHELL_KEYS), "");
        }
        Some(_) => {
            run::run(link, argv)?;
        }
    }
    Ok(Flow::Continue)
}

/// Shows what the panel said last and ends the session.
pub fn link_ended(link: &Link) -> u8 {
    for notice in link.take_held_notices() {
        terminal::write_notice(&notice);
    }
    terminal::write_notice("The connection to the panel ended.");
    EXIT_FAILED
}

fn editor(link: &Link, palette: Palette, commands: CommandCount) -> reedline::Result<Reedline> {
    let grammar = Arc::new(Grammar::load());
    let history = LinkHistory::load(link.clone())?;
    let printer = ExternalPrinter::new(PRINTER_CAPACITY);
    link.set_notice_sink(printer.sender());

    let mut keys = default_emacs_keybindings();
    keys.add_binding(
        KeyModifiers::NONE,
        KeyCode::Tab,
        ReedlineEvent::UntilFound(vec![
            ReedlineEvent::Menu(COMPLETION_MENU.to_owned()),
            ReedlineEvent::MenuNext,
        ]),
    );
    keys.add_binding(
        KeyModifiers::SHIFT,
        KeyCode::BackTab,
        ReedlineEvent::MenuPrevious,
    );
    // The external editor needs a temporary file; the session keeps nothing on disk.
    keys.remove_binding(KeyModifiers::CONTROL, KeyCode::Char('o'));

    // The menu's marker stands in for the prompt indicator while it is open: keep it alike.
    let menu = ColumnarMenu::default()
        .with_name(COMPLETION_MENU)
        .with_marker("> ");
    let mut editor = Reedline::create()
        .with_history(Box::new(history))
        .with_history_exclusion_prefix(Some(" ".to_owned()))
        .with_completer(Box::new(ShellCompleter::new(
            Arc::clone(&grammar),
            LinkValues::new(link.clone(), commands).following_changes(),
        )))
        .with_menu(ReedlineMenu::EngineCompleter(Box::new(menu)))
        // One candidate is taken at once; several share their common start first.
        .with_quick_completions(true)
        .with_partial_completions(true)
        .with_highlighter(Box::new(ShellHighlighter::new(grammar, palette)))
        .with_validator(Box::new(QuoteValidator))
        .with_edit_mode(Box::new(Emacs::new(keys)))
        .with_ansi_colors(palette.colour)
        .with_external_printer(printer)
        .with_break_signal(link.closed_flag())
        .with_poll_interval(POLL_INTERVAL)
        .use_bracketed_paste(true);
    // A hint is told from typed text by its colour alone.
    if palette.colour {
        editor = editor.with_hinter(Box::new(DefaultHinter::default().with_style(palette.hint)));
    }
    Ok(editor)
}
