//! The four roles of product.md, ordered from least to most powerful.

use crate::error::{Error, Result};
use std::fmt;

/// A user's role inside its tenant. `Ord` follows power: viewer < operator < owner < admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Owner,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::Owner, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Owner => "owner",
            Role::Admin => "admin",
        }
    }

    pub fn parse(input: &str) -> Result<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == input)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown role {:?}: use admin, owner, operator or viewer",
                    super::domain_name::printable(input)
                ))
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders() {
        assert_eq!(Role::parse("owner").unwrap(), Role::Owner);
        assert!(Role::parse("Owner").is_err());
        assert!(Role::parse("root").is_err());
        assert!(Role::Viewer < Role::Operator && Role::Owner < Role::Admin);
    }
}
