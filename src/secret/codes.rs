//! One-time codes people type: enrollment codes and recovery codes. Random, shown once, stored
//! only as argon2id hashes (m = 19456 KiB, t = 2, p = 1, per OWASP's password storage sheet).

use crate::error::{Error, Result};
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

/// Letters and digits without look-alikes (no 0/o, 1/l/i).
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
/// Three groups of four: 12 characters of a 31-letter alphabet, about 59 bits.
const GROUPS: usize = 3;
const GROUP_LEN: usize = 4;

/// A freshly generated code, to show once and then forget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeCode(pub String);

impl OneTimeCode {
    pub fn generate() -> Result<OneTimeCode> {
        let mut random = [0u8; GROUPS * GROUP_LEN];
        super::fill_random(&mut random)?;
        let mut code = String::new();
        for (i, byte) in random.iter().enumerate() {
            if i > 0 && i % GROUP_LEN == 0 {
                code.push('-');
            }
            // 256 % 31 = 8: the bias towards the first letters is negligible for 59 bits.
            code.push(char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]));
        }
        Ok(OneTimeCode(code))
    }

    /// Whether typed text has the shape of such a code (so it is not mistaken for a TOTP code).
    pub fn looks_like(typed: &str) -> bool {
        normalise(typed).len() == GROUPS * GROUP_LEN
    }
}

/// What is hashed: lower case, without dashes and spaces, so `ABCD-efgh-2345` and
/// `abcdefgh2345` match.
fn normalise(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t' | '\r' | '\n'))
        .flat_map(char::to_lowercase)
        .collect()
}

fn hasher() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The argon2id PHC string of a code (slow on purpose: run it off the async threads).
pub fn hash_code(code: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    super::fill_random(&mut salt)?;
    hasher()
        .hash_password_with_salt(normalise(code).as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| Error::internal(format!("cannot hash a code: {e}")))
}

/// Whether `typed` matches `hash` (a PHC string made by [`hash_code`]).
pub fn verify_code(typed: &str, hash: &str) -> bool {
    let typed = normalise(typed);
    if typed.is_empty() || typed.len() > 64 {
        return false;
    }
    hasher().verify_password(typed.as_bytes(), hash).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_hash_and_verify_forgivingly() {
        let code = OneTimeCode::generate().unwrap();
        assert_eq!(code.0.len(), 14);
        assert!(OneTimeCode::looks_like(&code.0));
        assert!(!OneTimeCode::looks_like("123456"));
        let hash = hash_code(&code.0).unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_code(&code.0, &hash));
        assert!(verify_code(&code.0.to_uppercase().replace('-', " "), &hash));
        assert!(!verify_code("aaaa-bbbb-cccc", &hash));
        assert!(!verify_code("", &hash));
        assert!(!verify_code(&"a".repeat(10_000), &hash));
        assert!(!verify_code(&code.0, "not a hash"));
        assert_ne!(code, OneTimeCode::generate().unwrap());
    }
}
