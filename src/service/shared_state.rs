//! The link to Redis (`redis_url`), through which several nodes share state: per-source
//! penalties ([`super::shared_penalties`]) and the doorbells' events ([`super::doorbell`]).
//! Owns this process's one command connection, and the subscriptions' own connections.
//!
//! Redis is a help, never a dependency: every call is bounded by [`CALL_TIMEOUT`] and answers
//! `None` when Redis is not connected, fails or is slow, so the caller falls back on what this
//! node knows. The connection is made by a background task ([`SharedState::start`]), remade with
//! a growing pause (up to [`MAX_BACKOFF`]) after a failure; a call never waits for a connect.
//! Losing Redis is logged once as a warning, getting it back once as an info line.
//!
//! Nothing here knows what is stored: callers build their commands (keys under
//! `redis_key_prefix`). May not import `ssh`, `session` or `command`.

use redis::aio::MultiplexedConnection;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;

/// The longest any one call may take; then it counts as a failure and the caller falls back.
/// Redis on a private network answers in well under a millisecond: a call this slow means
/// trouble, and it must not hold up the accept of a connection.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(50);
/// The longest a connect (TCP, AUTH, SELECT) may take; it runs in the background.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The first pause before connecting again after a failure; it doubles up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// A cheap handle on the process's Redis link; clones share it.
#[derive(Clone)]
pub struct SharedState {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    /// Where the URL came from, password masked, for the log.
    shown_url: String,
    prefix: String,
    /// The current connection and its generation (so an old failure cannot drop a new one).
    conn: Mutex<Option<(u64, MultiplexedConnection)>>,
    /// Tells the connecting task that the connection failed.
    failed: Notify,
    /// Whether Redis counted as unreachable (and that was logged) since it last answered.
    down: AtomicBool,
    started: OnceLock<()>,
}

impl SharedState {
    /// A link to `url` (checked by the configuration: `redis://…`); no I/O until [`start`].
    ///
    /// [`start`]: SharedState::start
    pub fn new(url: &str, shown_url: &str, prefix: &str) -> redis::RedisResult<SharedState> {
        Ok(SharedState {
            inner: Arc::new(Inner {
                client: redis::Client::open(url)?,
                shown_url: shown_url.to_owned(),
                prefix: prefix.to_owned(),
                conn: Mutex::new(None),
                failed: Notify::new(),
                down: AtomicBool::new(false),
                started: OnceLock::new(),
            }),
        })
    }

    /// The prefix of every key (`redis_key_prefix`).
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// Starts the background task that connects and reconnects (once; needs the tokio runtime).
    pub fn start(&self) {
        if self.inner.started.set(()).is_err() {
            return;
        }
        let inner = self.inner.clone();
        tokio::spawn(async move { inner.keep_connected().await });
    }

    /// Calls `deliver` with each message published on `channel`, from a task with its own
    /// connection (a subscribed connection takes no other command). The connection is remade
    /// with backoff after a failure, and `deliver("")` is called at each (re)subscription:
    /// messages published meanwhile were missed.
    pub fn subscribe(&self, channel: String, deliver: impl Fn(&str) + Send + Sync + 'static) {
        let inner = self.inner.clone();
        tokio::spawn(async move {
            use futures_util::StreamExt;
            let mut backoff = MIN_BACKOFF;
            loop {
                let subscribed = async {
                    let mut pubsub = inner.client.get_async_pubsub().await?;
                    pubsub.subscribe(&channel).await?;
                    Ok::<_, redis::RedisError>(pubsub)
                };
                match tokio::time::timeout(CONNECT_TIMEOUT, subscribed).await {
                    Ok(Ok(pubsub)) => {
                        backoff = MIN_BACKOFF;
                        deliver("");
                        let mut messages = pubsub.into_on_message();
                        while let Some(message) = messages.next().await {
                            if let Ok(text) = message.get_payload::<String>() {
                                deliver(&text);
                            }
                        }
                        tracing::debug!(%channel, "Redis subscription ended; subscribing again");
                    }
                    Ok(Err(err)) => tracing::debug!(%channel, error = %err, "cannot subscribe"),
                    Err(_) => tracing::debug!(%channel, "subscribing timed out"),
                }
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
            }
        });
    }

    /// The current connection's number (1 for the first, one more at each reconnect), or
    /// `None` while not connected.
    pub fn epoch(&self) -> Option<u64> {
        self.inner
            .lock()
            .as_ref()
            .map(|(generation, _)| *generation)
    }

    /// Whether a connection is up right now (it may still fail on the next call).
    pub fn is_connected(&self) -> bool {
        self.inner.lock().is_some()
    }

    /// Runs `call` on the connection within [`CALL_TIMEOUT`]. `None` when not connected, on an
    /// error or on timeout (the failure is logged once and the connection remade).
    pub async fn call<T, F, Fut>(&self, what: &'static str, call: F) -> Option<T>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let (generation, conn) = self.inner.lock().clone()?;
        let error = match tokio::time::timeout(CALL_TIMEOUT, call(conn)).await {
            Ok(Ok(value)) => return Some(value),
            Ok(Err(err)) => err.to_string(),
            Err(_) => format!("no answer within {} ms", CALL_TIMEOUT.as_millis()),
        };
        self.inner.failed(generation, what, &error);
        None
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(u64, MultiplexedConnection)>> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Logs the first failure since Redis last answered as a warning, later ones at debug.
    fn unreachable(&self, error: &str) {
        if !self.down.swap(true, Ordering::SeqCst) {
            tracing::warn!(redis = %self.shown_url, %error, "Redis unreachable: shared state (penalties, events) falls back to this node's own until it is back");
        } else {
            tracing::debug!(redis = %self.shown_url, %error, "Redis still unreachable");
        }
    }

    fn failed(&self, generation: u64, what: &str, error: &str) {
        let mut conn = self.lock();
        if conn.as_ref().is_some_and(|(g, _)| *g == generation) {
            *conn = None;
            drop(conn);
            self.unreachable(&format!("{what}: {error}"));
            self.failed.notify_one();
        }
    }

    async fn keep_connected(self: Arc<Self>) {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT));
        let mut backoff = MIN_BACKOFF;
        let mut generation = 0u64;
        loop {
            let connected =
                tokio::time::timeout(CONNECT_TIMEOUT.saturating_mul(2), self.connect(&config))
                    .await
                    .unwrap_or_else(|_| Err("connect timed out".into()));
            match connected {
                Ok(conn) => {
                    generation += 1;
                    *self.lock() = Some((generation, conn));
                    backoff = MIN_BACKOFF;
                    if self.down.swap(false, Ordering::SeqCst) {
                        tracing::info!(redis = %self.shown_url, "Redis reachable again: state is shared across nodes again");
                    } else {
                        tracing::info!(redis = %self.shown_url, "Redis connected: state is shared across nodes");
                    }
                    self.failed.notified().await;
                }
                Err(error) => {
                    self.unreachable(&error);
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn connect(
        &self,
        config: &redis::AsyncConnectionConfig,
    ) -> Result<MultiplexedConnection, String> {
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(config)
            .await
            .map_err(|e| e.to_string())?;
        // Proves the server answers (a loading or misconfigured Redis fails here, not later).
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(conn)
    }
}
