//! The command line as the audit trail records it: the words as typed (re-quoted like a shell
//! would need them), with secrets replaced by `***`.
//!
//! What is masked, whatever the command:
//! - the value of any flag whose name looks secret (`--token`, `--password`, `--secret`,
//!   `--code`, `--enroll-code`, `--recovery-code`, `--api-key`, …), given as `--flag VALUE` or
//!   `--flag=VALUE`, and of a short flag that stands for one;
//! - any positional argument whose name (in the clap tree) looks secret (a `CODE`, a `TOKEN`);
//! - in every other word, `KEY=VALUE` pairs whose key looks secret (`password=…`), and the
//!   password of a URL (`https://user:***@host`).
//!
//! Flag and argument names come from the clap tree itself, so a new command's `--secret` flag
//! is masked without anything to register here. The result is at most [`MAX_CHARS`] characters.

use clap::{Arg, Command};

/// What stands in for a secret.
pub const MASK: &str = "***";
/// The longest line recorded; longer lines are cut and end with `…`.
pub const MAX_CHARS: usize = 1024;

/// Name parts that are secrets on their own: `--code`, `--pin` (but not `--encode`).
const SECRET_WORDS: &[&str] = &[
    "auth",
    "authorization",
    "code",
    "codes",
    "cookie",
    "credential",
    "credentials",
    "otp",
    "pass",
    "passphrase",
    "pin",
    "private",
    "pw",
    "pwd",
    "totp",
];
/// Secrets wherever they appear in a name: `--db-password`, `--apikey`, `--recovery-codes`.
const SECRET_INFIXES: &[&str] = &[
    "accesskey",
    "apikey",
    "passwd",
    "password",
    "privatekey",
    "recovery",
    "secret",
    "token",
];

/// Whether a flag, argument or `KEY=` name looks like it holds a secret.
pub fn is_secret_name(name: &str) -> bool {
    let lower = name.to_lowercase();
    let compact: String = lower.chars().filter(char::is_ascii_alphanumeric).collect();
    lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| SECRET_WORDS.contains(&word))
        || SECRET_INFIXES.iter().any(|infix| compact.contains(infix))
}

fn is_secret_arg(arg: &Arg) -> bool {
    is_secret_name(arg.get_id().as_str())
        || arg.get_long().is_some_and(is_secret_name)
        || arg
            .get_value_names()
            .is_some_and(|names| names.iter().any(|n| is_secret_name(n)))
}

/// Whether the command line `argv` carries a secret (masking it would change it): such a line
/// is kept out of the shell history.
pub fn carries_secret(argv: &[String]) -> bool {
    let mut tree = <super::tree::Cli as clap::CommandFactory>::command();
    // Word by word and before any cut: a value that itself contains the mask, or a line long
    // enough to be cut, cannot hide a masked word.
    let masked = masked_words(&mut tree, argv);
    masked.len() != argv.len() || masked.iter().zip(argv).any(|(m, w)| *m != quote(w))
}

/// `argv` (already split like a shell) as it is recorded, secrets masked. `tree` is the clap
/// command `argv` was parsed with; words it does not know are masked by their names alone.
pub fn masked_line(tree: &mut Command, argv: &[String]) -> String {
    cut(masked_words(tree, argv).join(" "))
}

/// `argv`'s words, each quoted for a shell, secrets masked (a flag and its value stay two words).
fn masked_words(tree: &mut Command, argv: &[String]) -> Vec<String> {
    // Built, so global flags (`-o`) are known to every subcommand.
    tree.build();
    let mut current = &*tree;
    let mut out: Vec<String> = Vec::with_capacity(argv.len());
    let mut words = argv.iter();
    let mut positionals = 0usize;
    let mut rest_are_values = false;
    while let Some(word) = words.next() {
        if !rest_are_values && word == "--" {
            rest_are_values = true;
            out.push(quote(word));
        } else if let Some(long) = word
            .strip_prefix("--")
            .filter(|l| !rest_are_values && !l.is_empty())
        {
            let (name, inline) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (long, None),
            };
            let arg = current.get_arguments().find(|a| {
                a.get_long() == Some(name)
                    || a.get_all_aliases().is_some_and(|al| al.contains(&name))
            });
            let secret = arg.map_or_else(|| is_secret_name(name), is_secret_arg);
            // An unknown secret-looking flag is assumed to take a value, to be safe.
            let takes_value = arg.map_or(secret, |a| a.get_action().takes_values());
            match inline {
                Some(value) => out.push(quote(&format!("--{name}={}", shown(value, secret)))),
                None => {
                    out.push(quote(word));
                    if takes_value && let Some(value) = words.next() {
                        out.push(quote(&shown(value, secret)));
                    }
                }
            }
        } else if let Some(shorts) = word
            .strip_prefix('-')
            .filter(|s| !rest_are_values && !s.is_empty() && !s.starts_with('-'))
        {
            // A cluster of short flags (`-y`, `-ojson`, `-yo json`): the first one that takes a
            // value owns the rest of the word, or the next word.
            let mut text = String::from("-");
            let mut value_next = None;
            for (at, c) in shorts.char_indices() {
                text.push(c);
                let arg = current.get_arguments().find(|a| a.get_short() == Some(c));
                if let Some(arg) = arg.filter(|a| a.get_action().takes_values()) {
                    let secret = is_secret_arg(arg);
                    let attached = &shorts[at + c.len_utf8()..];
                    if attached.is_empty() {
                        value_next = Some(secret);
                    } else {
                        text.push_str(&shown(attached, secret));
                    }
                    break;
                }
            }
            out.push(quote(&text));
            if let Some(secret) = value_next
                && let Some(value) = words.next()
            {
                out.push(quote(&shown(value, secret)));
            }
        } else if positionals == 0
            && !rest_are_values
            && let Some(sub) = current.find_subcommand(word)
        {
            current = sub;
            out.push(quote(word));
        } else {
            let mut args = current.get_positionals();
            let arg = args
                .nth(positionals)
                .or_else(|| current.get_positionals().last());
            positionals += 1;
            if arg.is_some_and(Arg::is_trailing_var_arg_set) {
                rest_are_values = true;
            }
            out.push(quote(&shown(word, arg.is_some_and(is_secret_arg))));
        }
    }
    out
}

/// A value as recorded: all masked when it is a secret, else with its secret parts masked.
fn shown(value: &str, secret: bool) -> String {
    if secret {
        return MASK.to_owned();
    }
    // Whitespace-separated parts: a quoted argument may hold several (`--key 'a b c'`).
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while !rest.is_empty() {
        let part_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (part, after) = rest.split_at(part_len);
        out.push_str(&masked_part(part));
        let space_len = after
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(after.len());
        out.push_str(&after[..space_len]);
        rest = &after[space_len..];
    }
    out
}

/// `KEY=VALUE` with a secret-looking key, and URL passwords.
fn masked_part(part: &str) -> String {
    if let Some((key, _)) = part.split_once('=')
        && !key.is_empty()
        && is_secret_name(key.trim_start_matches('-'))
    {
        return format!("{key}={MASK}");
    }
    if let Some(scheme_end) = part.find("://") {
        let authority_start = scheme_end + 3;
        let authority_end = part[authority_start..]
            .find(['/', '?', '#'])
            .map_or(part.len(), |i| authority_start + i);
        let authority = &part[authority_start..authority_end];
        if let Some(at) = authority.rfind('@')
            && let Some(colon) = authority[..at].find(':')
        {
            let user = &authority[..colon];
            return format!(
                "{}{user}:{MASK}{}",
                &part[..authority_start],
                &part[authority_start + at..]
            );
        }
    }
    part.to_owned()
}

/// Quotes a word when it would not read back as one word: with single quotes, like a shell.
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !"'\"\\;|&<>()$`#!{}".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

fn cut(line: String) -> String {
    if line.chars().count() <= MAX_CHARS {
        return line;
    }
    let mut cut: String = line.chars().take(MAX_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_with_secrets_are_recognised() {
        let argv = |line: &str| shell_words::split(line).unwrap();
        for secret in [
            "totp reset alice --code 123456",
            "site create a.example --password=hunter2",
            "site create a.example --upstream https://u:pw@h.example",
            // A secret that itself looks masked, and one past where a recorded line is cut.
            "site create a.example --upstream 'https://u:p***w@h.example'",
        ] {
            assert!(carries_secret(&argv(secret)), "{secret}");
        }
        let long = format!(
            "site create a.example --alias {} --upstream https://u:pw@h.example",
            "\"it's\" ".repeat(150).trim_end()
        );
        assert!(carries_secret(&argv(&long)), "a long line");
        for plain in [
            "site list",
            "audit list --follow -o json",
            "site create '***'",
        ] {
            assert!(!carries_secret(&argv(plain)), "{plain}");
        }
    }

    fn tree() -> Command {
        Command::new("t")
            .no_binary_name(true)
            .arg(Arg::new("output").short('o').long("output").global(true))
            .subcommand(
                Command::new("user").subcommand(
                    Command::new("create")
                        .arg(Arg::new("name"))
                        .arg(Arg::new("key").long("key").action(clap::ArgAction::Append))
                        .arg(Arg::new("password").long("password").short('p'))
                        .arg(Arg::new("enroll_code").long("enroll-code"))
                        .arg(
                            Arg::new("yes")
                                .short('y')
                                .long("yes")
                                .action(clap::ArgAction::SetTrue),
                        ),
                ),
            )
            .subcommand(
                Command::new("totp").subcommand(
                    Command::new("verify")
                        .arg(Arg::new("code"))
                        .arg(Arg::new("user")),
                ),
            )
            .subcommand(
                Command::new("key").subcommand(
                    Command::new("add").arg(
                        Arg::new("key")
                            .num_args(0..)
                            .trailing_var_arg(true)
                            .allow_hyphen_values(true),
                    ),
                ),
            )
    }

    fn masked(line: &str) -> String {
        let argv = shell_words::split(line).unwrap();
        masked_line(&mut tree(), &argv)
    }

    #[test]
    fn secrets_are_masked_and_the_rest_kept() {
        for (line, want) in [
            ("user create bob", "user create bob"),
            (
                "user create bob --password hunter2",
                "user create bob --password ***",
            ),
            (
                "user create bob --password=hunter2",
                "user create bob --password=***",
            ),
            ("user create bob -p hunter2 -y", "user create bob -p *** -y"),
            ("user create bob -phunter2", "user create bob -p***"),
            ("user create bob -yp hunter2", "user create bob -yp ***"),
            (
                "user create bob --enroll-code 123-456",
                "user create bob --enroll-code ***",
            ),
            ("totp verify 123456 bob", "totp verify *** bob"),
            (
                "user create bob -o json --password x",
                "user create bob -o json --password ***",
            ),
            (
                "-o json user create bob --password x",
                "-o json user create bob --password ***",
            ),
            // Unknown flags (clap refuses them, but the mask must not leak either way).
            ("user create bob --token abc", "user create bob --token ***"),
            (
                "user create bob --API_KEY=abc",
                "user create bob --API_KEY=***",
            ),
            (
                "user create bob --recovery-codes a b",
                "user create bob --recovery-codes *** b",
            ),
            ("user create bob --verbose x", "user create bob --verbose x"),
            // KEY=VALUE and URLs anywhere.
            (
                "user create bob --key 'ssh-ed25519 AAAA secret=x'",
                "user create bob --key 'ssh-ed25519 AAAA secret=***'",
            ),
            (
                "key add ssh-ed25519 AAAA password=hunter2",
                "key add ssh-ed25519 AAAA password=***",
            ),
            ("key add --token x", "key add --token ***"),
            (
                "user create https://u:pw@h.example/x",
                "user create https://u:***@h.example/x",
            ),
            (
                "user create db_pass=x name=y",
                "user create db_pass=*** name=y",
            ),
            ("user create x --key 'a  b'", "user create x --key 'a  b'"),
            // Names that only look alike are kept.
            (
                "user create encode=1 spinner=2 footprint=3",
                "user create encode=1 spinner=2 footprint=3",
            ),
            (
                "user create bob -- --password",
                "user create bob -- --password",
            ),
        ] {
            assert_eq!(masked(line), want, "{line}");
        }
    }

    #[test]
    fn evil_input_never_leaks() {
        for (line, want) in [
            ("user create bob --password", "user create bob --password"),
            (
                "user create bob --password ''",
                "user create bob --password ***",
            ),
            (
                "user create bob --password=",
                "user create bob --password=***",
            ),
            (
                "user create bob --password --password",
                "user create bob --password ***",
            ),
            (
                "user create bob --password 'a\nb'",
                "user create bob --password ***",
            ),
            (
                "user create bob --password=a=b=c",
                "user create bob --password=***",
            ),
            (
                "user create bob --PassWord sekrit",
                "user create bob --PassWord ***",
            ),
            (
                "user create bob --password 'it'\\''s'",
                "user create bob --password ***",
            ),
            (
                "user create bob 'TOKEN=abc def'",
                "user create bob 'TOKEN=*** def'",
            ),
            ("user create 'x;y' 'a b'", "user create 'x;y' 'a b'"),
            ("user create \"it's\"", "user create 'it'\\''s'"),
            ("user create 'a\nb'", "user create 'a\nb'"),
            ("user create a\u{0}b", "user create 'a\u{0}b'"),
            // A Cyrillic look-alike is not a flag of the tree and not a secret name: clap
            // refuses such a flag, so the line is never recorded anyway.
            ("user create --pаssword x", "user create --pаssword x"),
        ] {
            assert_eq!(masked(line), want, "{line:?}");
        }
        // 10 kB values are cut.
        let got = masked(&format!("user create {}", "a".repeat(10_000)));
        assert_eq!(got.chars().count(), MAX_CHARS);
        assert!(got.ends_with('…'));
    }

    #[test]
    fn names() {
        for secret in [
            "password",
            "db-password",
            "passwd",
            "token",
            "api_token",
            "secret",
            "client-secret",
            "code",
            "enroll-code",
            "recovery",
            "recovery-codes",
            "api-key",
            "apikey",
            "otp",
            "pin",
            "PASSWORD",
            "private-key",
            "totp",
        ] {
            assert!(is_secret_name(secret), "{secret}");
        }
        for plain in [
            "key",
            "name",
            "user",
            "encode",
            "footprint",
            "spin",
            "tenant",
            "output",
            "yes",
        ] {
            assert!(!is_secret_name(plain), "{plain}");
        }
    }
}
