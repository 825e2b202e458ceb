//! RFC 6238 time-based one-time passwords as authenticator apps use them: HMAC-SHA1, 6 digits,
//! 30-second steps, one step of clock skew either way; plus the otpauth URI and its QR code.
//!
//! Verification returns the matched time step: the caller accepts each step at most once.

use crate::error::{Error, Result};

const DIGITS: u8 = 6;
const STEP_SECS: u64 = 30;
const SKEW_STEPS: u16 = 1;
/// 160 bits, as RFC 4226 recommends.
pub const SECRET_LEN: usize = 20;

/// One user's TOTP generator and checker.
pub struct Totp {
    inner: totp_rs::Totp,
}

impl Totp {
    pub fn new(secret: &[u8]) -> Result<Totp> {
        let inner = totp_rs::Builder::new()
            .with_algorithm(totp_rs::Algorithm::SHA1)
            .with_digits(DIGITS)
            .with_step_duration(STEP_SECS)
            .with_skew(SKEW_STEPS)
            .with_secret(secret.to_vec())
            .build()
            .map_err(|e| Error::internal(format!("bad TOTP secret: {e}")))?;
        Ok(Totp { inner })
    }

    /// The generator for a secret given in base32 (as `totp enroll` prints it).
    pub fn from_base32(secret: &str) -> Result<Totp> {
        let secret = totp_rs::Secret::try_from_base32(secret.trim())
            .map_err(|_| Error::invalid("the secret is not base32 text"))?;
        Totp::new(secret.as_bytes())
    }

    /// A fresh random secret.
    pub fn generate_secret() -> Result<Vec<u8>> {
        let mut secret = vec![0u8; SECRET_LEN];
        super::fill_random(&mut secret)?;
        Ok(secret)
    }

    /// The time step `code` is valid for at `unix_time` (±1 step), if any.
    pub fn check(&self, code: &str, unix_time: u64) -> Option<u64> {
        let code = code.trim();
        if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.inner.check(code, unix_time)
    }

    /// The code for `unix_time` (tests and `totp` provisioning checks).
    pub fn code_at(&self, unix_time: u64) -> String {
        self.inner.generate(unix_time).to_string()
    }

    /// The time step a moment falls in.
    pub fn step_of(unix_time: u64) -> u64 {
        unix_time / STEP_SECS
    }

    /// The secret in base32 without padding, as people type it into an app.
    pub fn secret_base32(secret: &[u8]) -> String {
        totp_rs::Secret::from(secret.to_vec())
            .to_base32()
            .trim_end_matches('=')
            .to_owned()
    }

    /// `otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`
    /// (Key Uri Format). Issuer and account are validated names, percent-encoded anyway.
    pub fn uri(issuer: &str, account: &str, secret: &[u8]) -> String {
        let issuer = percent_encode(issuer);
        format!(
            "otpauth://totp/{issuer}:{}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
            percent_encode(account),
            Totp::secret_base32(secret),
        )
    }
}

fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `text` as a QR code drawn with Unicode half blocks (two modules a character row), dark on a
/// light quiet zone so it scans on dark and light terminals alike. One line per row, `\n` ends.
pub fn qr_code_text(text: &str) -> Result<String> {
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::L)
        .map_err(|e| Error::internal(format!("cannot draw a QR code: {e}")))?;
    Ok(code
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build()
        + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA1 (8-digit codes there; the last 6 digits here).
    #[test]
    fn rfc_6238_vectors() {
        let totp = Totp::new(b"12345678901234567890").unwrap();
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(totp.code_at(time), code, "at {time}");
            assert_eq!(totp.check(code, time), Some(Totp::step_of(time)));
        }
    }

    #[test]
    fn one_step_of_skew_either_way_and_no_more() {
        let totp = Totp::new(&[42u8; SECRET_LEN]).unwrap();
        let now = 1_700_000_000;
        let code = totp.code_at(now);
        assert_eq!(totp.check(&code, now + 30), Some(Totp::step_of(now)));
        assert_eq!(totp.check(&code, now - 30), Some(Totp::step_of(now)));
        assert_eq!(totp.check(&code, now + 90), None);
        for bad in ["", "12345", "1234567", "abcdef", "12 456", "１２３４５６"] {
            assert_eq!(totp.check(bad, now), None, "{bad:?}");
        }
        assert_eq!(
            totp.check(&format!(" {code}\n"), now),
            Some(Totp::step_of(now))
        );
    }

    #[test]
    fn uri_and_qr_code() {
        let uri = Totp::uri("vipanel", "alice", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/vipanel:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=vipanel&algorithm=SHA1&digits=6&period=30"
        );
        let qr = qr_code_text(&uri).unwrap();
        assert!(qr.lines().count() > 15);
        assert!(qr.contains('█') || qr.contains('▀') || qr.contains('▄'));
        assert_eq!(
            Totp::uri("my panel", "a", b"x").split('?').next(),
            Some("otpauth://totp/my%20panel:a")
        );
    }
}
