//! Rendering command results as `-o table` (default), `-o json` or `-o plain`, and errors as
//! `error: …` or the JSON error object. Results go to stdout, messages to stderr.

use crate::error::Error;
use serde::Serialize;
use serde_json::Value;

/// The output format chosen with `-o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns with a header, for people.
    #[default]
    Table,
    /// JSON: lists as arrays of objects, one object for show; stable snake_case fields.
    Json,
    /// Tab-separated values, no header, one record a line, for shell scripts.
    Plain,
}

/// What a command produced, before formatting.
pub enum Rendered {
    /// A list of records; `columns` are the fields shown by `table` and `plain`.
    List {
        items: Vec<Value>,
        columns: &'static [&'static str],
        empty: &'static str,
    },
    /// One record, every field shown.
    Object(Value),
    /// A result that is only a message (e.g. a deletion): JSON gets `value`, people get `message`.
    Done { message: String, value: Value },
    /// Text printed as is on stdout whatever the format (help, version in table mode).
    Text(String),
    /// Another rendering with a non-zero exit status that is not an error (`job watch` of a
    /// job that failed: the job is the output, 8 the status).
    WithExit(Box<Rendered>, u8),
}

/// The bytes a command writes and its exit status.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit: u8,
}

impl Outcome {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

pub fn list<T: Serialize>(
    items: &[T],
    columns: &'static [&'static str],
    empty: &'static str,
) -> Rendered {
    Rendered::List {
        items: items.iter().map(to_value).collect(),
        columns,
        empty,
    }
}

pub fn object<T: Serialize>(item: &T) -> Rendered {
    Rendered::Object(to_value(item))
}

pub fn done<T: Serialize>(message: impl Into<String>, item: &T) -> Rendered {
    Rendered::Done {
        message: message.into(),
        value: to_value(item),
    }
}

fn to_value<T: Serialize>(item: &T) -> Value {
    serde_json::to_value(item).unwrap_or(Value::Null)
}

/// Formats a successful result into an [`Outcome`] with exit 0.
pub fn render(rendered: Rendered, format: Format) -> Outcome {
    if let Rendered::WithExit(inner, exit) = rendered {
        let mut out = render(*inner, format);
        out.exit = exit;
        return out;
    }
    let mut out = Outcome::default();
    match (rendered, format) {
        (Rendered::Text(text), _) => out.stdout = text.into_bytes(),
        (Rendered::List { items, .. }, Format::Json) => {
            out.stdout = json_line(&Value::Array(items))
        }
        (Rendered::Object(value), Format::Json) | (Rendered::Done { value, .. }, Format::Json) => {
            out.stdout = json_line(&value)
        }
        (
            Rendered::List {
                items,
                columns,
                empty,
            },
            Format::Table,
        ) => {
            if items.is_empty() {
                out.stderr = format!("{empty}\n").into_bytes();
            } else {
                out.stdout = table(columns, &items).into_bytes();
            }
        }
        (Rendered::List { items, columns, .. }, Format::Plain) => {
            let mut text = String::new();
            for item in &items {
                let cells: Vec<String> = columns.iter().map(|c| plain_cell(item.get(*c))).collect();
                text.push_str(&cells.join("\t"));
                text.push('\n');
            }
            out.stdout = text.into_bytes();
        }
        (Rendered::Object(value), Format::Table) => {
            out.stdout = key_values(&value, ": ", true).into_bytes()
        }
        (Rendered::Object(value), Format::Plain) => {
            out.stdout = key_values(&value, "\t", false).into_bytes()
        }
        (Rendered::Done { message, .. }, _) => out.stderr = format!("{message}\n").into_bytes(),
        // Unwrapped above.
        (Rendered::WithExit(..), _) => {}
    }
    out
}

/// Formats an error: `error: …` on stderr, or the JSON error object with `-o json`.
pub fn render_error(err: &Error, format: Format) -> Outcome {
    let stderr = if format == Format::Json {
        let value = serde_json::json!({"error": {"code": err.kind.code(), "message": err.message}});
        json_line(&value)
    } else {
        format!("error: {}\n", err.message).into_bytes()
    };
    Outcome {
        stdout: Vec::new(),
        stderr,
        exit: err.kind.exit_code(),
    }
}

pub(super) fn json_line(value: &Value) -> Vec<u8> {
    let text = serde_json::to_string(value).unwrap_or_default();
    // serde_json leaves DEL and the C1 controls (U+0080–U+009F, e.g. CSI) raw, and a terminal
    // may act on them: escape them too, so JSON output never drives the reader's terminal.
    let mut out = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        if ('\u{7f}'..='\u{9f}').contains(&c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out.push('\n');
    out.into_bytes()
}

fn table(columns: &[&str], items: &[Value]) -> String {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(columns.iter().map(|c| c.to_uppercase().replace('_', " ")));
    for item in items {
        table.add_row(columns.iter().map(|c| human_cell(item.get(*c))));
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    let mut text: String = table
        .lines()
        .map(|l| l.trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n");
    text.push('\n');
    text
}

/// Rows of a streaming command, rendered one batch at a time: `json` as JSON Lines (one object a
/// line), `plain` as tab-separated lines, `table` as aligned rows under one header, the column
/// widths fixed by the header and the first batch (a wider cell later just pushes its line).
pub struct RowStream {
    format: Format,
    columns: &'static [&'static str],
    widths: Option<Vec<usize>>,
}

impl RowStream {
    pub fn new(format: Format, columns: &'static [&'static str]) -> RowStream {
        RowStream {
            format,
            columns,
            widths: None,
        }
    }

    /// The bytes for `items` (the first call of a table also writes the header).
    pub fn render(&mut self, items: &[Value]) -> Vec<u8> {
        let mut out = Vec::new();
        match self.format {
            Format::Json => {
                for item in items {
                    out.extend(json_line(item));
                }
            }
            Format::Plain => {
                for item in items {
                    let cells: Vec<String> = self
                        .columns
                        .iter()
                        .map(|c| plain_cell(item.get(*c)))
                        .collect();
                    out.extend(cells.join("\t").into_bytes());
                    out.push(b'\n');
                }
            }
            Format::Table => {
                let rows: Vec<Vec<String>> = items
                    .iter()
                    .map(|item| {
                        self.columns
                            .iter()
                            .map(|c| human_cell(item.get(*c)))
                            .collect()
                    })
                    .collect();
                let widths = match &self.widths {
                    Some(widths) => widths.clone(),
                    None => {
                        let header: Vec<String> = self
                            .columns
                            .iter()
                            .map(|c| c.to_uppercase().replace('_', " "))
                            .collect();
                        let widths: Vec<usize> = (0..self.columns.len())
                            .map(|i| {
                                rows.iter()
                                    .chain(std::iter::once(&header))
                                    .filter_map(|row| row.get(i))
                                    .map(|cell| cell.chars().count())
                                    .max()
                                    .unwrap_or(0)
                            })
                            .collect();
                        out.extend(aligned(&header, &widths).into_bytes());
                        self.widths = Some(widths.clone());
                        widths
                    }
                };
                for row in &rows {
                    out.extend(aligned(row, &widths).into_bytes());
                }
            }
        }
        out
    }
}

/// One table line: cells padded to `widths` and two spaces apart, no trailing blanks.
fn aligned(cells: &[String], widths: &[usize]) -> String {
    let mut line = String::new();
    for (cell, width) in cells.iter().zip(widths) {
        line.push_str(cell);
        let pad = width.saturating_sub(cell.chars().count()) + 2;
        line.extend(std::iter::repeat_n(' ', pad));
    }
    let mut line = line.trim_end().to_owned();
    line.push('\n');
    line
}

fn key_values(value: &Value, separator: &str, align: bool) -> String {
    let Value::Object(map) = value else {
        return format!("{}\n", human_cell(Some(value)));
    };
    let width = if align {
        map.keys().map(String::len).max().unwrap_or(0)
    } else {
        0
    };
    let mut text = String::new();
    for (key, value) in map {
        let cell = if align {
            human_cell(Some(value))
        } else {
            plain_cell(Some(value))
        };
        if align {
            text.push_str(&format!("{key:width$}{separator}{cell}\n"));
        } else {
            text.push_str(&format!("{key}{separator}{cell}\n"));
        }
    }
    text
}

/// A value for people: `-` for nothing, lists comma-separated, times without sub-seconds.
fn human_cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) if s.len() >= 20 => t.format("%Y-%m-%d %H:%M:%S").to_string(),
            _ => sanitize(s),
        },
        Some(Value::Array(items)) if items.is_empty() => "-".into(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| human_cell(Some(v)))
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", human_cell(Some(v))))
            .collect::<Vec<_>>()
            .join(" "),
        Some(other) => other.to_string(),
    }
}

/// A value for scripts: empty for nothing, lists comma-separated, times as RFC 3339.
fn plain_cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => sanitize(s),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| plain_cell(Some(v)))
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    }
}

/// Stored text never reaches a terminal with control characters in it.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_output_escapes_every_terminal_control() {
        let line = json_line(&json!({"command": "site create \u{9b}31m\u{7f}\u{1b}x"}));
        let text = String::from_utf8(line).unwrap();
        assert_eq!(
            text,
            "{\"command\":\"site create \\u009b31m\\u007f\\u001bx\"}\n"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["command"], "site create \u{9b}31m\u{7f}\u{1b}x");
    }

    #[test]
    fn table_plain_json() {
        let items = vec![
            json!({"name": "a", "n": 1, "tags": ["x", "y"]}),
            json!({"name": "b", "n": null, "tags": []}),
        ];
        let r = || Rendered::List {
            items: items.clone(),
            columns: &["name", "n", "tags"],
            empty: "none",
        };
        let t = render(r(), Format::Table).stdout_text();
        assert!(t.starts_with("NAME"), "{t}");
        assert!(t.contains("x,y"));
        assert_eq!(
            render(r(), Format::Plain).stdout_text(),
            "a\t1\tx,y\nb\t\t\n"
        );
        let j: Value = serde_json::from_slice(&render(r(), Format::Json).stdout).unwrap();
        assert_eq!(j[0]["name"], "a");
    }

    #[test]
    fn empty_list_says_so_on_stderr() {
        let out = render(
            Rendered::List {
                items: vec![],
                columns: &["a"],
                empty: "no sites",
            },
            Format::Table,
        );
        assert!(out.stdout.is_empty());
        assert_eq!(out.stderr_text(), "no sites\n");
    }

    #[test]
    fn errors() {
        let err = Error::not_found("site x not found");
        let out = render_error(&err, Format::Json);
        assert_eq!(out.exit, 3);
        let v: Value = serde_json::from_slice(&out.stderr).unwrap();
        assert_eq!(v["error"]["code"], "not_found");
        assert_eq!(
            render_error(&err, Format::Table).stderr_text(),
            "error: site x not found\n"
        );
    }

    #[test]
    fn streamed_rows() {
        let batch = |n: &str| vec![json!({"seq": 1, "action": n})];
        let mut json = RowStream::new(Format::Json, &["seq", "action"]);
        assert_eq!(
            String::from_utf8(json.render(&batch("a"))).unwrap(),
            "{\"seq\":1,\"action\":\"a\"}\n"
        );
        let mut table = RowStream::new(Format::Table, &["seq", "action"]);
        assert_eq!(
            String::from_utf8(table.render(&batch("site.create"))).unwrap(),
            "SEQ  ACTION\n1    site.create\n"
        );
        assert_eq!(
            String::from_utf8(table.render(&batch("x\u{1b}"))).unwrap(),
            "1    x?\n"
        );
        let mut plain = RowStream::new(Format::Plain, &["seq", "action"]);
        assert_eq!(plain.render(&batch("a")), b"1\ta\n");
    }

    #[test]
    fn control_characters_are_masked() {
        assert_eq!(human_cell(Some(&json!("a\u{1b}[31mb"))), "a?[31mb");
    }
}
