//! SSH public keys as users paste them (`ssh-ed25519 AAAA… comment`), parsed with `russh::keys`.

use crate::error::{Error, Result};
use russh::keys::{HashAlg, PublicKey, ssh_key::public::KeyData};

/// A parsed public key with its SHA-256 fingerprint, normalized OpenSSH text and comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshPublicKey {
    key: PublicKey,
    fingerprint: String,
    comment: String,
}

const MIN_RSA_BITS: usize = 2048;
const MAX_COMMENT: usize = 200;

impl SshPublicKey {
    /// Parses one key line. Options before the key (`from="…" ssh-ed25519 …`) are refused: key
    /// restrictions are set with `key add` flags, never smuggled in the key text.
    pub fn parse(line: &str) -> Result<SshPublicKey> {
        let line = line.trim();
        if line.is_empty() {
            return Err(Error::invalid("the public key is empty"));
        }
        if line.len() > 16 * 1024 {
            return Err(Error::invalid("the public key is too long"));
        }
        let key = PublicKey::from_openssh(line).map_err(|e| {
            Error::invalid(format!(
                "not an OpenSSH public key ({e}); paste one line of a .pub file, like 'ssh-ed25519 AAAA… you@laptop'"
            ))
        })?;
        if let KeyData::Rsa(rsa) = key.key_data() {
            let bits = rsa.key_size() as usize;
            if bits < MIN_RSA_BITS {
                return Err(Error::invalid(format!(
                    "this RSA key has {bits} bits; at least {MIN_RSA_BITS} are required (ed25519 is best)"
                )));
            }
        }
        if matches!(key.key_data(), KeyData::Dsa(_)) {
            return Err(Error::invalid("DSA keys are not accepted; use ed25519"));
        }
        let comment: String = String::from_utf8_lossy(key.comment().as_bytes())
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_COMMENT)
            .collect();
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        let mut key = key;
        key.set_comment("");
        Ok(SshPublicKey {
            key,
            fingerprint,
            comment,
        })
    }

    /// Parses every key in an authorized_keys-style text: blank lines and `#` comments are skipped.
    pub fn parse_many(text: &str) -> Result<Vec<SshPublicKey>> {
        let keys = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(SshPublicKey::parse)
            .collect::<Result<Vec<_>>>()?;
        if keys.is_empty() {
            return Err(Error::invalid("no public key given"));
        }
        Ok(keys)
    }

    /// Fingerprint of an already-parsed key, as the SSH layer sees it.
    pub fn fingerprint_of(key: &PublicKey) -> String {
        key.fingerprint(HashAlg::Sha256).to_string()
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
    pub fn algorithm(&self) -> String {
        self.key.algorithm().as_str().to_owned()
    }
    pub fn comment(&self) -> &str {
        &self.comment
    }
    /// The key in OpenSSH text form without comment.
    pub fn openssh(&self) -> Result<String> {
        self.key
            .to_openssh()
            .map_err(|e| Error::internal(format!("cannot encode key: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGjQmLz1hTnzsbEGHrbPAZhKm6vBR1dkkmYoKG4pGvt9 alice@laptop";

    #[test]
    fn parses_ed25519_with_comment() {
        let key = SshPublicKey::parse(ED).unwrap();
        assert!(key.fingerprint().starts_with("SHA256:"));
        assert_eq!(key.comment(), "alice@laptop");
        assert_eq!(key.algorithm(), "ssh-ed25519");
        assert!(!key.openssh().unwrap().contains("alice"));
    }

    #[test]
    fn refuses_garbage_and_options() {
        for bad in [
            "",
            "ssh-ed25519",
            "ssh-ed25519 AAAA",
            "from=\"10.0.0.1\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGjQmLz1hTnzsbEGHrbPAZhKm6vBR1dkkmYoKG4pGvt9",
            "hello world",
        ] {
            assert!(SshPublicKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parse_many_skips_comments() {
        let text = format!("# mine\n\n{ED}\n");
        assert_eq!(SshPublicKey::parse_many(&text).unwrap().len(), 1);
        assert!(SshPublicKey::parse_many("# nothing\n").is_err());
    }
}
