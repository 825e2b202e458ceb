//! The prompt: `USER@TENANT> `, `… ` on continuation lines, `USER@TENANT (search: TERM)> `
//! while searching the history.

use super::palette::Palette;
use reedline::{Color, Prompt, PromptEditMode, PromptHistorySearch, PromptHistorySearchStatus};
use std::borrow::Cow;

pub struct ShellPrompt {
    left: String,
    palette: Palette,
}

impl ShellPrompt {
    pub fn new(user: &str, tenant: &str, palette: Palette) -> Self {
        // Names are validated by the daemon; control characters are dropped anyway, since a
        // prompt is written to the terminal as it is.
        let clean = |s: &str| s.chars().filter(|c| !c.is_control()).collect::<String>();
        ShellPrompt {
            left: format!("{}@{}", clean(user), clean(tenant)),
            palette,
        }
    }
}

impl Prompt for ShellPrompt {
    fn render_prompt_left(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.left)
    }

    fn render_prompt_right(&self) -> Cow<'_, str> {
        Cow::Borrowed("")
    }

    fn render_prompt_indicator(&self, _mode: PromptEditMode) -> Cow<'_, str> {
        Cow::Borrowed("> ")
    }

    fn render_prompt_multiline_indicator(&self) -> Cow<'_, str> {
        Cow::Borrowed("… ")
    }

    fn render_prompt_history_search_indicator(&self, search: PromptHistorySearch) -> Cow<'_, str> {
        let failing = match search.status {
            PromptHistorySearchStatus::Passing => "",
            PromptHistorySearchStatus::Failing => "failing ",
        };
        Cow::Owned(format!(" ({failing}search: {})> ", search.term))
    }

    fn get_prompt_color(&self) -> Color {
        self.palette.prompt
    }

    fn get_indicator_color(&self) -> Color {
        self.palette.indicator
    }

    fn get_prompt_multiline_color(&self) -> Color {
        self.palette.indicator
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_at_tenant() {
        let prompt = ShellPrompt::new("alice", "acme", Palette::new(false));
        let line = format!(
            "{}{}",
            prompt.render_prompt_left(),
            prompt.render_prompt_indicator(PromptEditMode::Default)
        );
        assert_eq!(line, "alice@acme> ");
        let odd = ShellPrompt::new("al\x1b[2Jice", "ac\nme", Palette::new(true));
        assert_eq!(odd.render_prompt_left(), "al[2Jice@acme");
    }
}
