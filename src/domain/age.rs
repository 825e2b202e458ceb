//! How far back a query looks: `90s`, `30m`, `12h`, `7d`, `2w` (for `--since`).

use super::domain_name::printable;
use crate::error::{Error, Result};

/// Parses an age like `30m` into a duration (at most ten years).
pub fn parse_age(input: &str) -> Result<chrono::Duration> {
    let bad = || {
        Error::invalid(format!(
            "{} is not an age: use a number and a unit s, m, h, d or w, like 30m or 7d",
            printable(input)
        ))
    };
    let split = input.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (digits, unit) = input.split_at(split);
    if digits.is_empty() || digits.len() > 6 {
        return Err(bad());
    }
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        "w" => n * 604_800,
        _ => return Err(bad()),
    };
    if seconds > 10 * 365 * 86_400 {
        return Err(bad());
    }
    Ok(chrono::Duration::seconds(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(parse_age("90s").unwrap().num_seconds(), 90);
        assert_eq!(parse_age("7d").unwrap().num_hours(), 168);
        for bad in [
            "", "h", "10", "1y", "-1h", "1.5h", "1h2m", "9999999d", "1 h",
        ] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }
}
