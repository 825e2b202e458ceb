//! What the shell knows of the command tree: nouns, verbs, flags and positionals, read once from
//! the same clap tree exec parses with, plus the shell's own words (`exit`, `clear`).
//!
//! [`Grammar::walk`] follows typed words through the tree; the completer and the highlighter both
//! use it, so they agree on what a word is. Where live values come from (site domains, user
//! names, …) is decided here too, from the argument's name.

use crate::command::Cli;
use crate::domain::{Role, SiteKind};
use crate::rpc::CompletionKind;
use clap::CommandFactory;

/// Words the shell handles itself, with what they do.
pub const BUILTINS: &[(&str, &str)] = &[
    ("exit", "Leave the shell (also Ctrl-D)."),
    ("clear", "Clear the screen (also Ctrl-L)."),
];

/// A command (noun or verb) and what follows it.
#[derive(Debug, Clone, Default)]
pub struct Node {
    pub name: String,
    pub aliases: Vec<String>,
    pub about: String,
    pub children: Vec<Node>,
    pub flags: Vec<Flag>,
    /// Positional argument ids, in order.
    pub positionals: Vec<String>,
    /// The last positional takes the rest of the line (`key add KEY…`, `help WORDS…`).
    pub trailing: bool,
}

/// A flag (`--tenant`, `-o`).
#[derive(Debug, Clone)]
pub struct Flag {
    pub id: String,
    pub long: Option<String>,
    pub short: Option<char>,
    pub takes_value: bool,
    /// Fixed choices, when clap knows them (`--output`).
    pub choices: Vec<String>,
    pub about: String,
}

/// Where the values of an argument come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Values {
    Live(CompletionKind),
    Fixed(Vec<String>),
}

/// How a typed word reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WordKind {
    /// A noun, verb or shell word that exists.
    Command,
    /// A word where a command was expected that does not exist.
    Unknown,
    Flag,
    /// A flag's value or a positional argument.
    Argument,
}

/// Where a walk over the typed words ended.
#[derive(Debug, Clone)]
pub struct Position<'g> {
    pub node: &'g Node,
    /// Noun and verb names from the root.
    pub path: Vec<&'g str>,
    /// After `help`: the words name commands, not arguments.
    pub help: bool,
    /// Positional arguments given so far.
    pub positionals: usize,
    /// The flag whose value comes next.
    pub expecting: Option<&'g Flag>,
    /// A word did not fit the tree: nothing after it can be completed.
    pub lost: bool,
}

/// The command tree as the shell sees it.
#[derive(Debug, Clone)]
pub struct Grammar {
    root: Node,
}

impl Grammar {
    /// Reads the panel's command tree, adding the shell's own words.
    pub fn load() -> Grammar {
        let mut command = Cli::command();
        command.build();
        let mut root = node(&command);
        for (name, about) in BUILTINS {
            root.children.push(Node {
                name: (*name).to_owned(),
                about: (*about).to_owned(),
                ..Node::default()
            });
        }
        Grammar { root }
    }

    pub fn root(&self) -> &Node {
        &self.root
    }

    /// Follows `words` from the root, classifying each one.
    pub fn walk<'g, S: AsRef<str>>(&'g self, words: &[S]) -> (Position<'g>, Vec<WordKind>) {
        let mut at = Position {
            node: &self.root,
            path: Vec::new(),
            help: false,
            positionals: 0,
            expecting: None,
            lost: false,
        };
        let mut kinds = Vec::with_capacity(words.len());
        for word in words {
            let word = word.as_ref();
            if at.expecting.take().is_some() {
                kinds.push(WordKind::Argument);
                continue;
            }
            if word.len() > 1 && word.starts_with('-') && !(at.help || at.node.trailing_now(&at)) {
                kinds.push(WordKind::Flag);
                if let Some(flag) = at.node.flag_for(word)
                    && flag.takes_value
                    && !word.contains('=')
                    && (word.len() <= 2 || word.starts_with("--"))
                {
                    at.expecting = Some(flag);
                }
                continue;
            }
            if !at.node.children.is_empty() && !at.lost {
                if let Some(child) = at.node.child(word) {
                    kinds.push(WordKind::Command);
                    at.path.push(&child.name);
                    if at.path == ["help"] {
                        // `help site create`: the words after it walk the tree again.
                        at.help = true;
                        at.node = &self.root;
                    } else {
                        at.node = child;
                    }
                } else {
                    kinds.push(WordKind::Unknown);
                    at.lost = true;
                }
                continue;
            }
            kinds.push(if at.lost {
                WordKind::Unknown
            } else {
                WordKind::Argument
            });
            at.positionals += 1;
        }
        (at, kinds)
    }
}

impl Node {
    /// The child named `word` (or aliased so).
    pub fn child(&self, word: &str) -> Option<&Node> {
        self.children
            .iter()
            .find(|c| c.name == word || c.aliases.iter().any(|a| a == word))
    }

    /// The flag `word` names (`--tenant`, `--tenant=x`, `-o`, `-ojson`).
    pub fn flag_for(&self, word: &str) -> Option<&Flag> {
        if let Some(long) = word.strip_prefix("--") {
            let long = long.split('=').next().unwrap_or(long);
            return self.flags.iter().find(|f| f.long.as_deref() == Some(long));
        }
        let short = word.strip_prefix('-')?.chars().next()?;
        self.flags.iter().find(|f| f.short == Some(short))
    }

    /// Whether the trailing positional has started, so dashes are its text (`key add -- …`).
    fn trailing_now(&self, at: &Position<'_>) -> bool {
        self.trailing && at.positionals >= self.positionals.len()
    }

    /// Where the values of the argument `id` come from, at `path`.
    pub fn values_for(&self, path: &[&str], id: &str) -> Option<Values> {
        if let Some(flag) = self.flags.iter().find(|f| f.id == id)
            && !flag.choices.is_empty()
        {
            return Some(Values::Fixed(flag.choices.clone()));
        }
        let creating = path.last() == Some(&"create");
        let live = match (id, path.first().copied()) {
            ("tenant", _) => CompletionKind::Tenants,
            ("user", _) => CompletionKind::Users,
            ("role", _) => {
                return Some(Values::Fixed(
                    Role::ALL.iter().map(|r| r.as_str().to_owned()).collect(),
                ));
            }
            ("kind", Some("site")) => {
                return Some(Values::Fixed(
                    [SiteKind::Php, SiteKind::Static, SiteKind::Proxy]
                        .iter()
                        .map(|k| k.as_str().to_owned())
                        .collect(),
                ));
            }
            _ if creating => return None,
            ("domain", Some("site")) => CompletionKind::Sites,
            ("name", Some("user")) => CompletionKind::Users,
            ("name", Some("tenant")) => CompletionKind::Tenants,
            ("name", Some("server")) | ("server", Some("metrics")) => CompletionKind::Servers,
            _ => return None,
        };
        Some(Values::Live(live))
    }
}

fn node(command: &clap::Command) -> Node {
    let mut flags = Vec::new();
    let mut positionals = Vec::new();
    let mut trailing = false;
    for arg in command.get_arguments().filter(|a| !a.is_hide_set()) {
        let id = arg.get_id().as_str().to_owned();
        if arg.is_positional() {
            trailing |= arg.is_trailing_var_arg_set();
            positionals.push(id);
            continue;
        }
        flags.push(Flag {
            id,
            long: arg.get_long().map(str::to_owned),
            short: arg.get_short(),
            takes_value: arg.get_action().takes_values(),
            choices: arg
                .get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| v.get_name().to_owned())
                .collect(),
            about: arg.get_help().map(|h| h.to_string()).unwrap_or_default(),
        });
    }
    Node {
        name: command.get_name().to_owned(),
        aliases: command.get_all_aliases().map(str::to_owned).collect(),
        about: command
            .get_about()
            .map(|a| a.to_string())
            .unwrap_or_default(),
        children: command
            .get_subcommands()
            // `shell` starts the shell this already is: not offered inside it.
            .filter(|c| !c.is_hide_set() && c.get_name() != "shell")
            .map(node)
            .collect(),
        flags,
        positionals,
        trailing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_command_tree() {
        let grammar = Grammar::load();
        let root = grammar.root();
        for noun in ["site", "user", "tenant", "server", "audit", "help", "exit"] {
            assert!(root.child(noun).is_some(), "{noun}");
        }
        let site = root.child("site").unwrap();
        assert!(site.child("ls").is_some(), "aliases count");
        let create = site.child("create").unwrap();
        assert_eq!(create.positionals, ["domain"]);
        let output = create.flag_for("-o").unwrap();
        assert_eq!(output.choices, ["table", "json", "plain"]);
        assert!(create.flag_for("--php").unwrap().takes_value);
        assert!(root.child("key").unwrap().child("add").unwrap().trailing);
    }

    #[test]
    fn walks_words_through_the_tree() {
        let grammar = Grammar::load();
        let (at, kinds) = grammar.walk(&["site", "show", "example.com", "-o", "json"]);
        assert_eq!(at.path, ["site", "show"]);
        assert_eq!(at.positionals, 1);
        assert!(at.expecting.is_none());
        use WordKind::*;
        assert_eq!(kinds, [Command, Command, Argument, Flag, Argument]);

        let (at, kinds) = grammar.walk(&["site", "list", "--tenant"]);
        assert_eq!(at.expecting.unwrap().id, "tenant");
        assert_eq!(kinds, [Command, Command, Flag]);

        let (at, kinds) = grammar.walk(&["sight", "list"]);
        assert!(at.lost);
        assert_eq!(kinds, [Unknown, Unknown]);

        let (at, kinds) = grammar.walk(&["help", "site", "cr"]);
        assert!(at.help);
        assert_eq!(kinds, [Command, Command, Unknown]);
        assert_eq!(at.node.name, "site");
    }

    #[test]
    fn live_values_follow_the_argument() {
        let grammar = Grammar::load();
        let root = grammar.root();
        let values = |path: &[&str], id: &str| {
            let mut node = root;
            for word in path {
                node = node.child(word).unwrap();
            }
            node.values_for(path, id)
        };
        use CompletionKind::*;
        assert_eq!(
            values(&["site", "show"], "domain"),
            Some(Values::Live(Sites))
        );
        assert_eq!(
            values(&["site", "delete"], "domain"),
            Some(Values::Live(Sites))
        );
        assert_eq!(values(&["site", "create"], "domain"), None);
        assert_eq!(
            values(&["site", "create"], "tenant"),
            Some(Values::Live(Tenants))
        );
        assert_eq!(
            values(&["server", "show"], "name"),
            Some(Values::Live(Servers))
        );
        assert_eq!(values(&["metrics"], "server"), Some(Values::Live(Servers)));
        assert_eq!(values(&["user", "lock"], "name"), Some(Values::Live(Users)));
        assert_eq!(values(&["user", "create"], "name"), None);
        assert_eq!(
            values(&["totp", "reset"], "user"),
            Some(Values::Live(Users))
        );
        assert!(
            matches!(values(&["user", "role"], "role"), Some(Values::Fixed(r)) if r.len() == 4)
        );
        assert!(
            matches!(values(&["site", "list"], "output"), Some(Values::Fixed(f)) if f.contains(&"json".to_owned()))
        );
    }
}
