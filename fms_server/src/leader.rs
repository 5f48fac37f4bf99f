//! A replica's dispatch lease, driven: takes or renews the lease in the store every
//! `renew_ms`, feeds the answers to [`DispatchLease`], and tells whoever wired it (the
//! server passes them on to the coordinator as messages) when this replica starts or stops
//! leading. The coordinator asks [`Leadership::fence`] before every write and every
//! command, so a replica whose lease ran out stops at once, even while this loop is stuck
//! waiting for an unreachable database.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::fleet::lease::{DispatchLease, LeaseParams, Transition};
use crate::store::{Fence, Store};

/// This replica's hold on the dispatch lease, shared by the lease loop and the coordinator.
#[derive(Debug)]
pub struct Leadership {
    holder: String,
    state: Mutex<DispatchLease>,
    /// Origin of the monotonic milliseconds fed to the state machine.
    base: Instant,
}

impl Leadership {
    pub fn new(holder: String, params: LeaseParams) -> Self {
        Self {
            holder,
            state: Mutex::new(DispatchLease::new(params)),
            base: Instant::now(),
        }
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn state(&self) -> MutexGuard<'_, DispatchLease> {
        // Each update is one assignment: a panic elsewhere cannot leave it half-done.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fence to write under while the lease is valid on this replica's clock.
    pub fn fence(&self) -> Option<Fence> {
        let now = self.now_ms();
        self.state().token(now).map(|token| Fence {
            holder: self.holder.clone(),
            token,
        })
    }

    pub fn params(&self) -> LeaseParams {
        self.state().params()
    }

    /// Gives the lease up locally (before releasing it in the store at shutdown).
    pub fn release(&self) -> Vec<Transition> {
        self.state().release()
    }
}

/// Takes or renews the lease every `renew_ms`, telling `transition` when this replica starts
/// or stops leading, until `transition` returns false (its receiver has stopped).
pub async fn run(
    leadership: Arc<Leadership>,
    store: Arc<dyn Store>,
    transition: impl Fn(Transition) -> bool,
) {
    let params = leadership.params();
    let mut tick = tokio::time::interval(Duration::from_millis(params.renew_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut unreachable = false;
    loop {
        tick.tick().await;
        let sent = leadership.now_ms();
        // A renewal that takes longer than the renew period is as good as failed.
        let answer = tokio::time::timeout(
            Duration::from_millis(params.renew_ms),
            store.acquire_lease(&leadership.holder, params.ttl_ms),
        )
        .await;
        let now = leadership.now_ms();
        let transitions = {
            let mut state = leadership.state();
            match answer {
                Ok(Ok(Some(token))) => {
                    if unreachable {
                        tracing::info!("the database answers the lease loop again");
                        unreachable = false;
                    }
                    state.on_granted(token, sent, now)
                }
                Ok(Ok(None)) => {
                    unreachable = false;
                    state.on_refused()
                }
                Ok(Err(e)) => {
                    if !unreachable {
                        tracing::warn!("cannot renew the dispatch lease: {e}");
                        unreachable = true;
                    }
                    state.on_error(now)
                }
                Err(_) => {
                    if !unreachable {
                        tracing::warn!(
                            "the dispatch lease renewal timed out after {} ms",
                            params.renew_ms
                        );
                        unreachable = true;
                    }
                    state.on_error(now)
                }
            }
        };
        for t in transitions {
            if !transition(t) {
                return;
            }
        }
    }
}
