//! A backend wrapper that ends a row with "erase to end of line" (`ESC[K`, 3 bytes) where the
//! rest of the row becomes blank, instead of writing each space. A screen switch clears long
//! stretches of rows; this makes it cheaper on slow links. Everything else goes to the wrapped
//! backend unchanged.
//!
//! It keeps a model of which cells of the terminal are blank (a space in the default colours):
//! all of them after the clear the dashboard starts with, then every cell drawn and every
//! clear. An erase is used only from the column after a row's last non-blank cell, where every
//! cell is blank in the new frame, and only when it replaces enough changed cells; it writes
//! those cells exactly, with the attributes the wrapped backend reset at the end of its `draw`.
//! A frame in which no cell changed writes nothing, and the cursor is hidden only once.

use ratatui::backend::{Backend, ClearType, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};
use ratatui::style::{Color, Modifier};

/// Changed blank cells at the end of a row worth an erase rather than spaces (a cursor move and
/// `ESC[K` cost about 11 bytes).
const MIN_RUN: usize = 12;

/// The wrapper.
pub struct Trimmed<B> {
    inner: B,
    width: u16,
    height: u16,
    /// Whether each cell (row-major) shows a blank on the terminal.
    blank: Vec<bool>,
    cursor: Position,
    /// The cursor is hidden already (ratatui hides it after every frame).
    hidden: bool,
}

impl<B> Trimmed<B> {
    /// Wraps `inner`, whose `width`×`height` screen was just cleared and its cursor hidden.
    pub fn new(inner: B, width: u16, height: u16) -> Trimmed<B> {
        Trimmed {
            inner,
            width,
            height,
            blank: vec![true; usize::from(width) * usize::from(height)],
            cursor: Position::ORIGIN,
            hidden: true,
        }
    }

    /// The terminal's new size: nothing is known of its cells until they are cleared or drawn.
    pub fn set_size(&mut self, width: u16, height: u16) {
        self.width = width;
        self.height = height;
        self.blank = vec![false; usize::from(width) * usize::from(height)];
    }

    fn index(&self, x: u16, y: u16) -> Option<usize> {
        (x < self.width && y < self.height)
            .then(|| usize::from(y) * usize::from(self.width) + usize::from(x))
    }

    /// Marks cells `from..to` (row-major indexes) blank.
    fn cleared(&mut self, from: usize, to: usize) {
        let to = to.min(self.blank.len());
        if from < to {
            self.blank[from..to].fill(true);
        }
    }
}

fn blank(cell: &Cell) -> bool {
    cell.symbol() == " "
        && cell.fg == Color::Reset
        && cell.bg == Color::Reset
        && cell.underline_color == Color::Reset
        && cell.modifier == Modifier::empty()
}

impl<B: Backend> Backend for Trimmed<B> {
    type Error = B::Error;

    fn draw<'a, I>(&mut self, content: I) -> Result<(), Self::Error>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        let cells: Vec<(u16, u16, &Cell)> = content.collect();
        for (x, y, cell) in &cells {
            if let Some(i) = self.index(*x, *y) {
                self.blank[i] = blank(cell);
            }
        }
        let mut keep = Vec::with_capacity(cells.len());
        let mut erase = Vec::new();
        for row in cells.chunk_by(|a, b| a.1 == b.1) {
            let y = row[0].1;
            // The column after the row's last non-blank cell, in the new frame.
            let from = match self.index(0, y) {
                Some(start) => {
                    let line = &self.blank[start..start + usize::from(self.width)];
                    line.iter().rposition(|b| !b).map_or(0, |x| x + 1) as u16
                }
                None => self.width,
            };
            let split = row.partition_point(|c| c.0 < from);
            if row.len() - split >= MIN_RUN {
                keep.extend_from_slice(&row[..split]);
                erase.push(Position::new(from, y));
            } else {
                keep.extend_from_slice(row);
            }
        }
        // A frame with nothing changed writes nothing at all (not even the attribute reset).
        if !keep.is_empty() {
            self.inner.draw(keep.into_iter())?;
        }
        for at in erase {
            self.inner.set_cursor_position(at)?;
            self.inner.clear_region(ClearType::UntilNewLine)?;
        }
        Ok(())
    }

    fn hide_cursor(&mut self) -> Result<(), Self::Error> {
        if self.hidden {
            return Ok(());
        }
        self.hidden = true;
        self.inner.hide_cursor()
    }

    fn show_cursor(&mut self) -> Result<(), Self::Error> {
        self.hidden = false;
        self.inner.show_cursor()
    }

    fn get_cursor_position(&mut self) -> Result<Position, Self::Error> {
        self.inner.get_cursor_position()
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> Result<(), Self::Error> {
        let position = position.into();
        self.cursor = position;
        self.inner.set_cursor_position(position)
    }

    fn clear(&mut self) -> Result<(), Self::Error> {
        self.cleared(0, self.blank.len());
        self.inner.clear()
    }

    fn clear_region(&mut self, clear_type: ClearType) -> Result<(), Self::Error> {
        let width = usize::from(self.width);
        let at = usize::from(self.cursor.y) * width + usize::from(self.cursor.x);
        let line = usize::from(self.cursor.y) * width;
        match clear_type {
            ClearType::All => self.cleared(0, self.blank.len()),
            ClearType::AfterCursor => self.cleared(at, self.blank.len()),
            ClearType::BeforeCursor => self.cleared(0, at + 1),
            ClearType::CurrentLine => self.cleared(line, line + width),
            ClearType::UntilNewLine => self.cleared(at, line + width),
        }
        self.inner.clear_region(clear_type)
    }

    fn size(&self) -> Result<Size, Self::Error> {
        self.inner.size()
    }

    fn window_size(&mut self) -> Result<WindowSize, Self::Error> {
        self.inner.window_size()
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush()
    }
}
