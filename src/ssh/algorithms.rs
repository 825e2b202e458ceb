//! The algorithms the daemon offers, modern ones only (checked with ssh-audit 3.9 in CI, see
//! `.ci/ssh_audit.sh` and `docs/security.md`).
//!
//! - Key exchange: the post-quantum hybrid `mlkem768x25519-sha256` first, then
//!   `curve25519-sha256` for clients before OpenSSH 9.9 (Debian 12 ships 9.2, which has neither
//!   ML-KEM nor anything else post-quantum that russh implements). No finite-field
//!   Diffie-Hellman, no NIST curves, no SHA-1. Strict key exchange (the Terrapin fix) offered.
//! - Ciphers: AEAD only (ChaCha20-Poly1305, AES-GCM); so the MACs below are never used, but a
//!   client's MAC list must still be answered, and then only with encrypt-then-MAC ones.
//! - Host key: ed25519 (the only key the daemon has). The `key` list also tells clients which
//!   signature algorithms their own keys may use (`server-sig-algs`): no SHA-1 `ssh-rsa`.
//! - No compression: less code reachable before authentication.

use russh::keys::{Algorithm, EcdsaCurve, HashAlg};
use russh::{Preferred, cipher, compression, kex, mac};
use std::borrow::Cow;

const KEX: &[kex::Name] = &[
    kex::MLKEM768X25519_SHA256,
    kex::CURVE25519,
    kex::EXTENSION_SUPPORT_AS_SERVER,
    kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER,
];

const CIPHERS: &[cipher::Name] = &[
    cipher::CHACHA20_POLY1305,
    cipher::AES_256_GCM,
    cipher::AES_128_GCM,
];

const MACS: &[mac::Name] = &[mac::HMAC_SHA512_ETM, mac::HMAC_SHA256_ETM];

const KEYS: &[Algorithm] = &[
    Algorithm::Ed25519,
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP256,
    },
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP384,
    },
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP521,
    },
    Algorithm::Rsa {
        hash: Some(HashAlg::Sha512),
    },
    Algorithm::Rsa {
        hash: Some(HashAlg::Sha256),
    },
];

const COMPRESSION: &[compression::Name] = &[compression::NONE];

/// The algorithm preferences handed to russh.
pub fn preferred() -> Preferred {
    Preferred {
        kex: Cow::Borrowed(KEX),
        key: Cow::Borrowed(KEYS),
        host_key_certificates: Cow::Borrowed(&[]),
        cipher: Cow::Borrowed(CIPHERS),
        mac: Cow::Borrowed(MACS),
        compression: Cow::Borrowed(COMPRESSION),
    }
}
