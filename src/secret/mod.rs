//! The daemon's secret key and authenticated encryption of secrets stored in the database
//! (TOTP secrets): ChaCha20-Poly1305 with a random nonce, the row's identity as associated data.
//!
//! The key is 32 random bytes in a file outside the database (mode 0600, created on first use;
//! a looser mode is refused), so a copy of the database alone reveals no secret.

mod codes;
mod totp;

pub use codes::{OneTimeCode, hash_code, verify_code};
pub use totp::{Totp, qr_code_text};

use crate::error::{Error, Result};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

const KEY_LEN: usize = 32;
/// Marks the format of a sealed value: `v1.` then hex of nonce ‖ ciphertext ‖ tag.
const VERSION: &str = "v1.";

/// The key that seals and opens stored secrets.
pub struct SecretKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// Reads the key file, or creates it (0600) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<SecretKey> {
        match std::fs::metadata(path) {
            Ok(meta) => {
                if meta.permissions().mode() & 0o077 != 0 {
                    return Err(Error::invalid(format!(
                        "the secret key file {} is readable by others (mode {:o}); run: chmod 600 {}",
                        path.display(),
                        meta.permissions().mode() & 0o777,
                        path.display()
                    )));
                }
                let bytes = std::fs::read(path).map_err(|e| {
                    Error::unavailable(format!("cannot read {}: {e}", path.display()))
                })?;
                SecretKey::from_bytes(&bytes).ok_or_else(|| {
                    Error::invalid(format!(
                        "the secret key file {} is not 32 bytes long; restore it from your backup",
                        path.display()
                    ))
                })
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; KEY_LEN];
                fill_random(&mut bytes)?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        Error::unavailable(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| {
                        Error::unavailable(format!("cannot create {}: {e}", path.display()))
                    })?;
                file.write_all(&bytes)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| {
                        Error::unavailable(format!("cannot write {}: {e}", path.display()))
                    })?;
                tracing::info!(path = %path.display(), "created the secret key");
                Ok(SecretKey::from_bytes(&bytes).expect("32 bytes"))
            }
            Err(err) => Err(Error::unavailable(format!(
                "cannot read {}: {err}",
                path.display()
            ))),
        }
    }

    fn from_bytes(bytes: &[u8]) -> Option<SecretKey> {
        if bytes.len() != KEY_LEN {
            return None;
        }
        let key = UnboundKey::new(&CHACHA20_POLY1305, bytes).ok()?;
        Some(SecretKey {
            key: LessSafeKey::new(key),
        })
    }

    /// Encrypts `plaintext`, bound to `context` (e.g. `totp:USER_ID`): a sealed value copied to
    /// another row does not open there.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        let mut in_out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| Error::internal("cannot encrypt a secret"))?;
        let mut out = String::with_capacity(VERSION.len() + 2 * (NONCE_LEN + in_out.len()));
        out.push_str(VERSION);
        for byte in nonce.iter().chain(in_out.iter()) {
            out.push_str(&format!("{byte:02x}"));
        }
        Ok(out)
    }

    /// Decrypts a value made by [`SecretKey::seal`] with the same `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>> {
        let fail = || {
            Error::internal(
                "a stored secret does not decrypt with this secret key (was the key file replaced?)",
            )
        };
        let hex = sealed.strip_prefix(VERSION).ok_or_else(fail)?;
        let bytes = decode_hex(hex).ok_or_else(fail)?;
        if bytes.len() < NONCE_LEN {
            return Err(fail());
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| fail())?;
        let mut in_out = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut in_out)
            .map_err(|_| fail())?;
        Ok(plain.to_vec())
    }
}

/// Fills `buf` from the operating system's random source.
pub fn fill_random(buf: &mut [u8]) -> Result<()> {
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| Error::internal("the system random source failed"))
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) || !hex.is_ascii() {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_context_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let key = SecretKey::load_or_create(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let sealed = key.seal("totp:1", b"hello").unwrap();
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("hello"));
        assert_eq!(key.open("totp:1", &sealed).unwrap(), b"hello");
        assert!(key.open("totp:2", &sealed).is_err(), "bound to its row");
        let again = SecretKey::load_or_create(&path).unwrap();
        assert_eq!(again.open("totp:1", &sealed).unwrap(), b"hello");
        let other = SecretKey::load_or_create(&dir.path().join("other.key")).unwrap();
        assert!(other.open("totp:1", &sealed).is_err(), "another key");
        let mut tampered = sealed.clone();
        tampered.replace_range(10..11, if &sealed[10..11] == "0" { "1" } else { "0" });
        assert!(key.open("totp:1", &tampered).is_err());
        assert!(key.open("totp:1", "v1.zz").is_err());
        assert!(key.open("totp:1", "").is_err());
    }

    #[test]
    fn a_loose_or_short_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        std::fs::write(&path, [7u8; 32]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = SecretKey::load_or_create(&path).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(SecretKey::load_or_create(&path).is_ok());
        std::fs::write(&path, [7u8; 16]).unwrap();
        assert!(SecretKey::load_or_create(&path).is_err());
    }
}
