//! A screen's table: rows as text cells, a filter (plain text, or `re:` and a regular
//! expression), a sort column and direction, and a selection that follows its row across
//! refreshes (by the row's id, not its position).

use crate::domain::ui::StyleName;
use regex::Regex;

/// One cell: its text and, if it stands out, the meaning of its style.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub text: String,
    pub style: Option<StyleName>,
}

impl Cell {
    pub fn plain(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            style: None,
        }
    }
    pub fn styled(text: impl Into<String>, style: StyleName) -> Cell {
        Cell {
            text: text.into(),
            style: Some(style),
        }
    }
}

/// One row: the id of what it shows (a domain, a server name, a job id) and its cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: String,
    pub cells: Vec<Cell>,
}

/// A column: its title, its width in cells (the last column takes the rest) and whether it
/// sorts as a number.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub title: &'static str,
    pub width: u16,
    pub numeric: bool,
}

impl Column {
    pub const fn text(title: &'static str, width: u16) -> Column {
        Column {
            title,
            width,
            numeric: false,
        }
    }
    pub const fn number(title: &'static str, width: u16) -> Column {
        Column {
            title,
            width,
            numeric: true,
        }
    }
}

/// What rows a table shows.
#[derive(Debug, Clone, Default)]
pub enum Filter {
    #[default]
    None,
    /// Case-insensitive substring of any cell.
    Plain(String),
    /// A regular expression matching any cell.
    Regex(String, Regex),
}

impl Filter {
    /// Parses what the user typed after `/`: `re:PATTERN` is a regular expression, anything
    /// else plain text. An empty text is no filter.
    pub fn parse(text: &str) -> Result<Filter, String> {
        if text.is_empty() {
            return Ok(Filter::None);
        }
        if let Some(pattern) = text.strip_prefix("re:") {
            return regex::RegexBuilder::new(pattern)
                .case_insensitive(true)
                .size_limit(1 << 20)
                .build()
                .map(|re| Filter::Regex(text.to_owned(), re))
                .map_err(|e| format!("not a regular expression: {}", first_line(&e.to_string())));
        }
        Ok(Filter::Plain(text.to_lowercase()))
    }

    /// The text the user typed.
    pub fn text(&self) -> &str {
        match self {
            Filter::None => "",
            Filter::Plain(t) | Filter::Regex(t, _) => t,
        }
    }

    pub fn is_active(&self) -> bool {
        !matches!(self, Filter::None)
    }

    fn matches(&self, row: &Row) -> bool {
        match self {
            Filter::None => true,
            Filter::Plain(t) => row.cells.iter().any(|c| c.text.to_lowercase().contains(t)),
            Filter::Regex(_, re) => row.cells.iter().any(|c| re.is_match(&c.text)),
        }
    }
}

fn first_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
}

/// Selection, sort and filter of one table.
#[derive(Debug, Clone, Default)]
pub struct TableNav {
    /// The id of the selected row (kept across refreshes).
    pub selected: Option<String>,
    /// The selected row's position among the visible rows.
    pub index: usize,
    /// The first visible row (scrolling).
    pub offset: usize,
    pub sort: Option<usize>,
    pub reverse: bool,
    pub filter: Filter,
}

impl TableNav {
    /// The rows to show, filtered and sorted; the selection is moved to its row (or kept in
    /// range when that row is gone).
    pub fn visible(&mut self, columns: &[Column], rows: &[Row]) -> Vec<Row> {
        let shown = self.arrange(columns, rows);
        self.follow(&shown);
        shown
    }

    /// The rows to show: filtered, then sorted (stable) by the sort column.
    pub fn arrange(&self, columns: &[Column], rows: &[Row]) -> Vec<Row> {
        let shown = rows.iter().filter(|r| self.filter.matches(r));
        let Some(col) = self.sort.filter(|c| *c < columns.len()) else {
            return shown.cloned().collect();
        };
        fn text(r: &Row, col: usize) -> &str {
            r.cells.get(col).map_or("", |c| c.text.as_str())
        }
        let mut keyed: Vec<(SortKey, &Row)> = shown
            .map(|r| {
                let key = if columns[col].numeric {
                    SortKey::Number(number(text(r, col)))
                } else {
                    SortKey::Text(text(r, col).to_lowercase())
                };
                (key, r)
            })
            .collect();
        keyed.sort_by(|(x, _), (y, _)| {
            let order = x.cmp(y);
            if self.reverse { order.reverse() } else { order }
        });
        keyed.into_iter().map(|(_, r)| r.clone()).collect()
    }

    /// Moves the selection to its row among `shown` (by id), or keeps it in range when that row
    /// is gone.
    pub fn follow(&mut self, shown: &[Row]) {
        if let Some(id) = &self.selected
            && let Some(pos) = shown.iter().position(|r| &r.id == id)
        {
            self.index = pos;
        }
        self.index = self.index.min(shown.len().saturating_sub(1));
        self.selected = shown.get(self.index).map(|r| r.id.clone());
    }

    /// Moves the selection by `delta` rows within `len` rows.
    pub fn step(&mut self, delta: isize, len: usize) {
        if len == 0 {
            return;
        }
        let next = (self.index as isize + delta).clamp(0, len as isize - 1);
        self.index = next as usize;
        self.selected = None;
    }

    /// Keeps the selection within a window of `height` rows.
    pub fn scroll_into_view(&mut self, height: usize) {
        if height == 0 {
            return;
        }
        if self.index < self.offset {
            self.offset = self.index;
        } else if self.index >= self.offset + height {
            self.offset = self.index + 1 - height;
        }
    }

    /// The next sort column (none → 0 → 1 … → none).
    pub fn sort_next(&mut self, columns: usize) {
        self.sort = match self.sort {
            None => Some(0),
            Some(c) if c + 1 < columns => Some(c + 1),
            Some(_) => None,
        };
    }
}

/// What a row sorts by: its cell as text (case-insensitive) or as a number.
#[derive(Debug)]
enum SortKey {
    Number(f64),
    Text(String),
}

impl SortKey {
    fn cmp(&self, other: &SortKey) -> std::cmp::Ordering {
        match (self, other) {
            (SortKey::Number(a), SortKey::Number(b)) => a.total_cmp(b),
            (SortKey::Text(a), SortKey::Text(b)) => a.cmp(b),
            (SortKey::Number(_), SortKey::Text(_)) => std::cmp::Ordering::Less,
            (SortKey::Text(_), SortKey::Number(_)) => std::cmp::Ordering::Greater,
        }
    }
}

/// A cell's text as a number for sorting (`12.5%` → 12.5; text → −∞, so blanks sort first).
fn number(text: &str) -> f64 {
    let digits: String = text
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
        .collect();
    digits.parse().unwrap_or(f64::NEG_INFINITY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Row> {
        ["b.example", "a.example", "shop-12.example"]
            .iter()
            .enumerate()
            .map(|(i, d)| Row {
                id: (*d).to_owned(),
                cells: vec![Cell::plain(*d), Cell::plain(format!("{}", 10 - i))],
            })
            .collect()
    }
    const COLS: [Column; 2] = [Column::text("DOMAIN", 20), Column::number("N", 4)];

    #[test]
    fn plain_and_regex_filters() {
        let mut nav = TableNav {
            filter: Filter::parse("SHOP").unwrap(),
            ..TableNav::default()
        };
        assert_eq!(nav.visible(&COLS, &rows()).len(), 1);
        nav.filter = Filter::parse(r"re:^[ab]\.").unwrap();
        assert_eq!(nav.visible(&COLS, &rows()).len(), 2);
        assert!(
            Filter::parse("re:(")
                .unwrap_err()
                .contains("regular expression")
        );
    }

    #[test]
    fn sorting_keeps_the_selected_row() {
        let mut nav = TableNav::default();
        nav.visible(&COLS, &rows());
        nav.step(1, 3);
        let shown = nav.visible(&COLS, &rows());
        assert_eq!(nav.selected.as_deref(), Some("a.example"));
        assert_eq!(shown[nav.index].id, "a.example");
        nav.sort_next(2);
        nav.reverse = true;
        let shown = nav.visible(&COLS, &rows());
        assert_eq!(shown[0].id, "shop-12.example");
        assert_eq!(shown[nav.index].id, "a.example");
        nav.sort_next(2);
        let shown = nav.visible(&COLS, &rows());
        assert_eq!(shown[0].id, "b.example", "numeric, reversed: 10 first");
    }
}
