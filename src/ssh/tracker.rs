//! Counting commands in flight, so shutdown can wait for them (bounded) before exiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;

/// Shared count of running commands.
#[derive(Clone, Default)]
pub struct CommandTracker {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    running: AtomicUsize,
    idle: Notify,
}

/// Held while a command runs; dropping it marks the command finished.
pub struct Running(CommandTracker);

impl CommandTracker {
    pub fn start(&self) -> Running {
        self.inner.running.fetch_add(1, Ordering::SeqCst);
        Running(self.clone())
    }

    pub fn running(&self) -> usize {
        self.inner.running.load(Ordering::SeqCst)
    }

    /// Waits until no command runs.
    pub async fn idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            if self.running() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.inner.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.inner.idle.notify_waiters();
        }
    }
}
