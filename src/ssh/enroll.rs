//! Enrolling an authenticator at login, for a user whose key was accepted but who has no TOTP
//! secret yet. It runs on the session channel before the user's command, and only on a PTY
//! (`ssh -t`, or a plain interactive login): the QR code, the secret and the otpauth URI are
//! drawn there, and the user types the one-time enrollment code (unless it is the bootstrap
//! admin) and then one code from the app. Without a PTY (scripts, BatchMode) the command does
//! not run and the client is told how to enroll.
//!
//! Why not inside keyboard-interactive: OpenSSH prints keyboard-interactive instructions through
//! its log function, which hides them below `LogLevel INFO` and escapes non-ASCII bytes, so a
//! QR code drawn with Unicode blocks would not survive; and BatchMode clients skip
//! keyboard-interactive entirely, so they could not be told anything.

use super::exec::ChannelIo;
use crate::command::Invocation;
use crate::error::{Error, Result};
use crate::service::{CodeCheck, EnrollRequirement, LoginIdentity, Services};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How many tries each prompt allows before the login ends.
const TRIES: usize = 3;

/// A connection whose user still has to enroll; shared by its channels.
#[derive(Clone)]
pub struct Enrollment {
    pub identity: LoginIdentity,
    pub login: String,
    /// Set once the user enrolled on any channel of the connection.
    pub done: Arc<AtomicBool>,
    /// The connection's pre-authentication slot, kept until the user has enrolled.
    pub pending: Arc<super::admission::Pending>,
}

impl Enrollment {
    /// Walks the user through enrollment, or explains why it cannot happen here.
    pub async fn run(
        &self,
        services: &Services,
        io: &mut ChannelIo,
        invocation: &Invocation,
    ) -> Result<()> {
        if self.done.load(Ordering::SeqCst) {
            return Ok(());
        }
        let user = &self.identity.actor.user;
        if !io.pty {
            let terminal = invocation.prefix.replacen("ssh ", "ssh -t ", 1);
            return Err(Error::locked(format!(
                "your user {user} has no authenticator yet, so no command runs until it enrolls. \
                 Enroll from a terminal: {terminal} (you need the one-time enrollment code you \
                 were given; an owner or admin issues a new one with `user enroll-code {user}`)"
            )));
        }
        let timeout = Duration::from_secs(services.config.auth.enrollment_timeout_secs);
        match tokio::time::timeout(timeout, self.dialog(services, io)).await {
            Ok(result) => result,
            Err(_) => Err(Error::locked(
                "enrollment timed out; log in again to start over",
            )),
        }
    }

    async fn dialog(&self, services: &Services, io: &mut ChannelIo) -> Result<()> {
        let user = &self.identity.actor.user;
        match services.enroll_requirement(&self.identity).await? {
            EnrollRequirement::NoLiveCode => {
                return Err(Error::locked(format!(
                    "your user {user} has no authenticator and no live enrollment code; ask an \
                     owner or admin to run `user enroll-code {user}` (on the host: \
                     `vipanel admin user enroll-code {user}`)"
                )));
            }
            EnrollRequirement::NeedsCode => {
                io.say(&format!(
                    "Welcome, {user}. Before your first login you set up an authenticator app.\n\
                     Type the one-time enrollment code you were given with your account.\n"
                ))
                .await;
                self.enroll_code(services, io).await?;
            }
            EnrollRequirement::NoCodeNeeded => {
                io.say(&format!(
                    "Welcome, {user}. Logins to this panel need a code from an authenticator app (TOTP)\n\
                     after your key. Set it up now.\n"
                ))
                .await;
            }
        }
        let pending = services.start_enrollment(&self.identity).await?;
        io.say(&format!(
            "\nScan this QR code with your authenticator app:\n\n{}\n\
             or enter the secret by hand: {}\n\
             or open: {}\n\n",
            pending.qr, pending.secret_base32, pending.uri
        ))
        .await;
        for _ in 0..TRIES {
            let Some(typed) = io.read_line("Verification code: ", 32).await else {
                return Err(Error::locked("enrollment cancelled; nothing was stored"));
            };
            match services
                .finish_enrollment(&self.identity, &self.login, &pending, &typed)
                .await?
            {
                Some(codes) => {
                    self.done.store(true, Ordering::SeqCst);
                    self.pending.authenticated();
                    io.say(&recovery_text(&codes)).await;
                    return Ok(());
                }
                None => {
                    io.say("That code does not match. Check the clock of your phone and type the current code.\n")
                        .await;
                }
            }
        }
        Err(Error::locked(
            "enrollment not finished: too many wrong codes; log in again to start over",
        ))
    }

    async fn enroll_code(&self, services: &Services, io: &mut ChannelIo) -> Result<()> {
        for _ in 0..TRIES {
            let Some(typed) = io.read_line("Enrollment code: ", 64).await else {
                return Err(Error::locked("enrollment cancelled"));
            };
            match services
                .check_enroll_code(&self.identity, &self.login, &typed)
                .await?
            {
                CodeCheck::Accepted => return Ok(()),
                CodeCheck::Refused => {
                    io.say("That enrollment code is wrong or has expired.\n")
                        .await;
                }
                CodeCheck::LockedOut(until) => {
                    return Err(crate::service::locked_out_error(
                        &self.identity.actor.user,
                        until,
                    ));
                }
            }
        }
        Err(Error::locked(format!(
            "too many wrong enrollment codes; ask an owner or admin for a new one (`user enroll-code {}`)",
            self.identity.actor.user
        )))
    }
}

fn recovery_text(codes: &[String]) -> String {
    let mut text = String::from(
        "\nYour authenticator is set up. These recovery codes each work once instead of a code,\n\
         if you lose your phone. Store them somewhere safe now: they are not shown again.\n\n",
    );
    for pair in codes.chunks(2) {
        text.push_str("  ");
        text.push_str(&pair.join("    "));
        text.push('\n');
    }
    text.push('\n');
    text
}
