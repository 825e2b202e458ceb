//! The small interactive pieces over a screen: a one-line input (the `/` filter and the `:`
//! command line), a form of fields (create a site, a server, a user; resize), and a
//! confirmation. Each becomes the words of one command; the dashboard runs it like the shell.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// A line of text being typed. Editing keys are fixed (they are text, not bindings).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LineInput {
    pub text: String,
}

/// What a key did to an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Changed,
    Unchanged,
    Submit,
    Cancel,
}

/// The most characters a line or a field takes.
const MAX_INPUT: usize = 256;

impl LineInput {
    pub fn with(text: &str) -> LineInput {
        LineInput {
            text: text.to_owned(),
        }
    }

    pub fn key(&mut self, key: &KeyEvent) -> Edit {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Enter => Edit::Submit,
            KeyCode::Esc => Edit::Cancel,
            KeyCode::Char('c') if ctrl => Edit::Cancel,
            KeyCode::Char('u') if ctrl => {
                self.text.clear();
                Edit::Changed
            }
            KeyCode::Char('w') if ctrl => {
                let keep = self.text.trim_end().rfind(' ').map_or(0, |i| i + 1);
                self.text.truncate(keep);
                Edit::Changed
            }
            KeyCode::Backspace => {
                if self.text.pop().is_some() {
                    Edit::Changed
                } else {
                    Edit::Unchanged
                }
            }
            KeyCode::Char(c) if !ctrl && !c.is_control() => {
                if self.text.chars().count() < MAX_INPUT {
                    self.text.push(c);
                    Edit::Changed
                } else {
                    Edit::Unchanged
                }
            }
            _ => Edit::Unchanged,
        }
    }
}

/// A field of a form: free text, or one of a few choices (←/→ or space to change).
#[derive(Debug, Clone, PartialEq)]
pub enum FieldKind {
    Text,
    Choice(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub label: &'static str,
    /// What the command gets (`--php`), or `None` for a positional word.
    pub flag: Option<&'static str>,
    pub kind: FieldKind,
    pub value: LineInput,
    /// Must not be empty.
    pub required: bool,
    /// Shown greyed when empty: what an empty value means.
    pub hint: &'static str,
    /// Only used when the field `when.0` has the value `when.1`.
    pub when: Option<(usize, &'static str)>,
}

impl Field {
    pub fn text(label: &'static str, flag: Option<&'static str>, required: bool) -> Field {
        Field {
            label,
            flag,
            kind: FieldKind::Text,
            value: LineInput::default(),
            required,
            hint: "",
            when: None,
        }
    }

    pub fn choice(label: &'static str, flag: &'static str, choices: &[&str]) -> Field {
        Field {
            label,
            flag: Some(flag),
            kind: FieldKind::Choice(choices.iter().map(|c| (*c).to_owned()).collect()),
            value: LineInput::with(choices.first().copied().unwrap_or_default()),
            required: true,
            hint: "",
            when: None,
        }
    }

    pub fn hint(mut self, hint: &'static str) -> Field {
        self.hint = hint;
        self
    }

    pub fn only_when(mut self, field: usize, value: &'static str) -> Field {
        self.when = Some((field, value));
        self
    }

    fn cycle(&mut self, forward: bool) {
        if let FieldKind::Choice(choices) = &self.kind {
            let at = choices
                .iter()
                .position(|c| *c == self.value.text)
                .unwrap_or(0);
            let next = if forward {
                (at + 1) % choices.len()
            } else {
                (at + choices.len() - 1) % choices.len()
            };
            self.value = LineInput::with(&choices[next]);
        }
    }
}

/// A form: a title, the command words before its fields, the fields, the focused one and an
/// error from the last submit.
#[derive(Debug, Clone, PartialEq)]
pub struct Form {
    pub title: String,
    pub command: Vec<String>,
    pub fields: Vec<Field>,
    pub focus: usize,
    pub error: Option<String>,
    /// Words after the fields.
    pub tail: Vec<String>,
}

/// What a key did to a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormResult {
    Editing,
    Cancel,
    /// The command words (without `-o json`) and a label for the status line.
    Submit(Vec<String>),
}

impl Form {
    pub fn new(title: impl Into<String>, command: &[&str], fields: Vec<Field>) -> Form {
        Form {
            title: title.into(),
            command: command.iter().map(|w| (*w).to_owned()).collect(),
            fields,
            focus: 0,
            error: None,
            tail: Vec::new(),
        }
    }

    /// Whether field `i` applies (a proxy's upstream only for proxies).
    pub fn applies(&self, i: usize) -> bool {
        match self.fields[i].when {
            None => true,
            Some((other, value)) => self.fields[other].value.text == value,
        }
    }

    fn move_focus(&mut self, forward: bool) {
        let n = self.fields.len();
        for _ in 0..n {
            self.focus = if forward {
                (self.focus + 1) % n
            } else {
                (self.focus + n - 1) % n
            };
            if self.applies(self.focus) {
                return;
            }
        }
    }

    pub fn key(&mut self, key: &KeyEvent) -> FormResult {
        let field = &mut self.fields[self.focus];
        let choice = matches!(field.kind, FieldKind::Choice(_));
        match key.code {
            KeyCode::Tab | KeyCode::Down => self.move_focus(true),
            KeyCode::BackTab | KeyCode::Up => self.move_focus(false),
            KeyCode::Left if choice => field.cycle(false),
            KeyCode::Right | KeyCode::Char(' ') if choice => field.cycle(true),
            KeyCode::Enter => return self.submit(),
            _ if choice => {
                if matches!(key.code, KeyCode::Esc)
                    || key.code == KeyCode::Char('c') && key.modifiers == KeyModifiers::CONTROL
                {
                    return FormResult::Cancel;
                }
            }
            _ => {
                if field.value.key(key) == Edit::Cancel {
                    return FormResult::Cancel;
                }
                self.error = None;
            }
        }
        FormResult::Editing
    }

    fn submit(&mut self) -> FormResult {
        let mut argv = self.command.clone();
        for i in 0..self.fields.len() {
            if !self.applies(i) {
                continue;
            }
            let field = &self.fields[i];
            let value = field.value.text.trim();
            if value.is_empty() {
                if field.required {
                    self.error = Some(format!("{} is required", field.label));
                    self.focus = i;
                    return FormResult::Editing;
                }
                continue;
            }
            if let Some(flag) = field.flag {
                argv.push(flag.to_owned());
            }
            argv.push(value.to_owned());
        }
        argv.extend(self.tail.iter().cloned());
        FormResult::Submit(argv)
    }
}

/// A question before a destructive command: its text and the command it would run.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    pub title: String,
    pub question: String,
    pub argv: Vec<String>,
}

/// The form that creates a site.
pub fn site_create() -> Form {
    Form::new(
        "Create a site",
        &["site", "create"],
        vec![
            Field::text("Domain", None, true),
            Field::choice("Type", "--type", &["php", "static", "proxy"]),
            Field::text("PHP", Some("--php"), false)
                .hint("newest installed")
                .only_when(1, "php"),
            Field::text("Upstream", Some("--upstream"), true)
                .hint("http://127.0.0.1:8080")
                .only_when(1, "proxy"),
        ],
    )
}

/// The form that orders a cloud server.
pub fn server_create() -> Form {
    Form::new(
        "Create a server",
        &["server", "create"],
        vec![
            Field::text("Name", None, true),
            Field::choice("Provider", "--provider", &["hetzner"]),
            Field::text("Type", Some("--type"), true).hint("cx22"),
            Field::text("Location", Some("--location"), true).hint("fsn1"),
            Field::text("Image", Some("--image"), true).hint("debian-12"),
        ],
    )
    .and(&["--no-wait"])
}

/// The form that resizes a server.
pub fn server_resize(name: &str) -> Form {
    Form::new(
        format!("Resize {name}"),
        &["server", "resize", name],
        vec![Field::text("Type", None, true).hint("cx32")],
    )
    .and(&["--yes", "--no-wait"])
}

/// The form that creates a user of the tenant.
pub fn user_create() -> Form {
    Form::new(
        "Create a user",
        &["user", "create"],
        vec![
            Field::text("Name", None, true),
            Field::choice("Role", "--role", &["viewer", "operator", "owner"]),
        ],
    )
}

impl Form {
    /// Words appended after the fields (`--no-wait`, `--yes`).
    fn and(mut self, tail: &[&str]) -> Form {
        self.tail = tail.iter().map(|w| (*w).to_owned()).collect();
        self
    }
}
