//! `totp enroll|reset|recovery-codes` and `user enroll-code`: secrets shown once, readable by
//! people in table form (QR code, secret, URI, codes) and complete in `-o json`.

use super::output::{Format, Rendered, object};
use crate::domain::Name;
use crate::error::Result;
use crate::service::{Actor, EnrollCode, Services, TotpEnrollment};

use super::tree::TotpCommand;

pub(super) async fn totp(
    s: &Services,
    actor: &Actor,
    cmd: TotpCommand,
    format: Format,
) -> Result<Rendered> {
    match cmd {
        TotpCommand::Enroll { user } => {
            let user = user
                .as_deref()
                .map(|u| Name::parse(u, "user name"))
                .transpose()?;
            let enrollment = s.totp_enroll(actor, user.as_ref()).await?;
            Ok(match format {
                Format::Table => Rendered::Text(enrollment_text(&enrollment)?),
                _ => object(&enrollment),
            })
        }
        TotpCommand::Reset { user } => {
            let code = s
                .totp_reset(actor, &Name::parse(&user, "user name")?)
                .await?;
            Ok(enroll_code(&code, format))
        }
        TotpCommand::RecoveryCodes => {
            let codes = s.totp_recovery_codes(actor).await?;
            Ok(match format {
                Format::Table => Rendered::Text(codes_text(&codes.recovery_codes)),
                _ => object(&codes),
            })
        }
    }
}

/// How a new enrollment code is shown: the code and what to do with it.
pub(super) fn enroll_code(code: &EnrollCode, format: Format) -> Rendered {
    match format {
        Format::Table => Rendered::Text(format!(
            "Enrollment code for {}: {}\n(valid until {} UTC, once; give it to the user, who types it at its first \
             interactive login)\n",
            code.user,
            code.enroll_code,
            code.expires_at.format("%Y-%m-%d %H:%M")
        )),
        _ => object(code),
    }
}

fn enrollment_text(e: &TotpEnrollment) -> Result<String> {
    Ok(format!(
        "New authenticator secret for {} (the previous secret and recovery codes no longer work).\n\
         Scan the QR code with an authenticator app:\n\n{}\nsecret: {}\nuri:    {}\n{}",
        e.user,
        crate::secret::qr_code_text(&e.uri)?,
        e.secret,
        e.uri,
        codes_text(&e.recovery_codes)
    ))
}

fn codes_text(codes: &[String]) -> String {
    let mut text = String::from(
        "\nRecovery codes (each works once instead of a code; store them safely, they are not shown again):\n",
    );
    for pair in codes.chunks(2) {
        text.push_str("  ");
        text.push_str(&pair.join("    "));
        text.push('\n');
    }
    text
}
