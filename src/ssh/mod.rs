//! The SSH daemon: our own accept loop (penalties, pre-authentication caps and deadline,
//! connection cap, `nodelay`) feeding `russh::server::run_stream`, the algorithms offered, the
//! host key, and graceful shutdown.
//!
//! This is a thin front end: it authenticates, binds an `Actor`, and hands command lines to the
//! command layer. It holds no business logic.

mod admission;
mod algorithms;
mod enroll;
mod exec;
mod handler;
pub mod host_key;
pub mod link;
mod penalties;
#[allow(unsafe_code)]
mod pty;
mod quick_ack;
pub mod session_account;
mod shell;
pub mod subscriptions;
mod tracker;

pub use tracker::CommandTracker;

use crate::service::Services;
use anyhow::{Context, Result};
use handler::{Connection, Shared};
use russh::MethodKind;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Refused keys audited per minute at most, daemon-wide (the rest are counted in the next row).
const REFUSAL_AUDIT_PER_MINUTE: u32 = 600;

/// Builds the russh configuration from ours.
fn russh_config(services: &Services, host_key: russh::keys::PrivateKey) -> russh::server::Config {
    let limits = &services.config.limits;
    russh::server::Config {
        server_id: russh::SshId::Standard(
            format!("SSH-2.0-vipanel_{}", env!("CARGO_PKG_VERSION")).into(),
        ),
        methods: russh::MethodSet::from(&[MethodKind::PublicKey][..]),
        auth_rejection_time: Duration::from_millis(limits.auth_rejection_ms),
        // OpenSSH clients probe with "none" first: answering it at once costs nothing.
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![host_key],
        max_auth_attempts: usize::try_from(limits.max_auth_attempts).unwrap_or(6),
        inactivity_timeout: Some(Duration::from_secs(limits.inactivity_timeout_secs)),
        // Keepalive answers count as traffic for russh, so they would defeat the inactivity
        // timeout: off unless configured.
        keepalive_interval: (limits.keepalive_interval_secs > 0)
            .then(|| Duration::from_secs(limits.keepalive_interval_secs)),
        nodelay: true,
        preferred: algorithms::preferred(),
        ..Default::default()
    }
}

/// Serves SSH on `listener` until `shutdown` resolves, then waits (bounded by
/// `limits.shutdown_grace_secs`) for running commands to finish.
pub async fn serve(
    services: Services,
    listener: TcpListener,
    host_key: russh::keys::PrivateKey,
    session_account: Option<session_account::Account>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let config = Arc::new(russh_config(&services, host_key));
    let grace = Duration::from_secs(services.config.limits.shutdown_grace_secs);
    let slots = Arc::new(Semaphore::new(
        usize::try_from(services.config.limits.max_connections).unwrap_or(256),
    ));
    let pre_auth_deadline = Duration::from_secs(services.config.limits.pre_auth_timeout_secs);
    let enrollment_deadline = Duration::from_secs(services.config.auth.enrollment_timeout_secs);
    let shared = Shared {
        admission: admission::Admission::new(&services.config.limits, &services.config.penalties),
        services,
        tracker: CommandTracker::default(),
        refusal_audit: Arc::new(std::sync::Mutex::new(penalties::LogBudget::new(
            REFUSAL_AUDIT_PER_MINUTE,
            Duration::from_secs(60),
        ))),
        sessions: Arc::new(shell::Sessions::new(session_account)),
    };
    // New penalties go to the audit trail, written in the background (as rate-limited as
    // their log lines, so a flood from many sources cannot flood the database either).
    if let Some(state) = &shared.services.shared {
        state.start();
        shared.services.start_doorbell_relay();
        shared.admission.share_penalties_through(
            crate::service::shared_penalties::SharedPenalties::new(state.clone()),
        );
    }
    let (notices, mut noticed) = tokio::sync::mpsc::unbounded_channel();
    shared.admission.announce_penalties_to(notices);
    let recorder = shared.services.clone();
    tokio::spawn(async move {
        while let Some(n) = noticed.recv().await {
            recorder
                .penalty_imposed(&n.source.to_string(), n.offence, n.penalty.as_secs())
                .await;
        }
    });
    // Refusals (caps, early drop) are logged a few per minute at most: a flood must not
    // flood the log too. Penalised sources are not logged per connection at all.
    let mut refusal_log = penalties::LogBudget::new(10, Duration::from_secs(60));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // A penalised source is closed here, before the banner: it costs one accept and close.
        let pending = match shared.admission.admit(
            peer.ip(),
            rand::random::<f64>(),
            std::time::Instant::now(),
        ) {
            Ok(pending) => pending,
            Err(admission::Refusal::Penalised) => {
                tracing::trace!(%peer, "source penalised; closing new connection");
                drop(stream);
                continue;
            }
            Err(why) => {
                if let Some(suppressed) = refusal_log.take(std::time::Instant::now()) {
                    let pending = shared.admission.pending();
                    tracing::info!(%peer, ?why, pending, log_lines_suppressed = suppressed, "too many unauthenticated connections; closing new one");
                }
                drop(stream);
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            if let Some(suppressed) = refusal_log.take(std::time::Instant::now()) {
                tracing::warn!(%peer, log_lines_suppressed = suppressed, "connection limit reached; closing new connection");
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().ok();
        let handler = Connection::new(shared.clone(), Some(peer), local, pending.clone());
        let config = config.clone();
        tokio::spawn(async move {
            // Penalised by another node (Redis): closed before the banner, like a local one.
            if pending.penalised_elsewhere().await {
                tracing::trace!(%peer, "source penalised (shared); closing new connection");
                drop(permit);
                return;
            }
            let session = async move {
                match russh::server::run_stream(
                    config,
                    quick_ack::QuickAckStream::new(stream),
                    handler,
                )
                .await
                {
                    Ok(session) => {
                        if let Err(err) = session.await {
                            tracing::debug!(%peer, error = %err, "connection ended with an error");
                        }
                    }
                    Err(err) => tracing::debug!(%peer, error = %err, "handshake failed"),
                }
            };
            tokio::pin!(session);
            let deadline_exceeded = tokio::select! {
                () = &mut session => false,
                () = tokio::time::sleep(pre_auth_deadline) => {
                    if pending.is_authenticated() {
                        session.await;
                        false
                    } else if pending.is_enrolling() {
                        // Enrolling takes a person longer: scan, type a code.
                        let rest = enrollment_deadline.saturating_sub(pre_auth_deadline);
                        tokio::select! {
                            () = &mut session => false,
                            () = tokio::time::sleep(rest) => {
                                if pending.is_authenticated() {
                                    session.await;
                                    false
                                } else {
                                    tracing::info!(%peer, "enrollment not finished before its deadline; closing");
                                    true
                                }
                            }
                        }
                    } else {
                        tracing::info!(%peer, "not authenticated before the deadline; closing");
                        true
                    }
                }
            };
            // Judged before a session cut short by the deadline is dropped (which closes its
            // socket), so the source is already penalised when the client sees the close.
            pending.ended(deadline_exceeded);
            drop(permit);
        });
    }
    drop(listener);
    // Interactive sessions are told and hung up; their tasks count as running until reaped.
    shared.sessions.close_all();
    let running = shared.tracker.running();
    if running > 0 {
        tracing::info!(running, "stopped accepting; waiting for running commands");
    }
    if tokio::time::timeout(grace, shared.tracker.idle())
        .await
        .is_err()
    {
        tracing::warn!(
            running = shared.tracker.running(),
            "commands still running after the shutdown grace period; exiting anyway"
        );
    }
    Ok(())
}

/// Binds the listening socket.
pub async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}
