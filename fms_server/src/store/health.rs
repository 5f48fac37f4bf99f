//! Write health: whether the store's last write reached the database and committed, kept
//! where writes happen, so readiness and metrics can tell "reads work" from "writes work".

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::StoreError;

/// How often, at most, a store whose writes fail tries a probe write (see
/// [`Store::probe_writes`](super::Store::probe_writes)).
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// The setting a write probe overwrites (with the time of the probe).
pub(crate) const PROBE_KEY: &str = "store.write_probe";

/// Whether the store's writes work, as its last commit or probe found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteHealth {
    /// Set while writes fail: since the first failure after the last success.
    pub failing: Option<WriteFailure>,
    /// Commits and probes that failed in the database since the store was opened.
    pub failures_total: u64,
}

impl WriteHealth {
    pub fn writable(&self) -> bool {
        self.failing.is_none()
    }
}

/// Writes have been failing since `since_ms`; `error` is the latest failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFailure {
    pub since_ms: u64,
    pub error: String,
}

/// Records the outcome of every write a store attempts.
#[derive(Debug, Default)]
pub(crate) struct WriteTracker {
    state: Mutex<TrackerState>,
}

#[derive(Debug, Default)]
struct TrackerState {
    health: WriteHealth,
    /// When the last write (commit or probe) was tried while writes fail.
    last_try: Option<Instant>,
}

impl WriteTracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, TrackerState> {
        // The state is plain data, valid after any panic.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a write's outcome. Only failures of the database count (`Backend`); a batch
    /// refused for what it holds (a duplicate key, a lost lease) says nothing about the
    /// database's health and leaves it as it was. Callers record successes only of writes
    /// that wrote something.
    pub(crate) fn record<T>(&self, result: &Result<T, StoreError>) {
        let mut st = self.lock();
        match result {
            Ok(_) => {
                st.health.failing = None;
                st.last_try = None;
            }
            Err(StoreError::Backend(error)) => {
                st.health.failures_total += 1;
                let since_ms = st
                    .health
                    .failing
                    .as_ref()
                    .map_or_else(unix_ms, |f| f.since_ms);
                st.health.failing = Some(WriteFailure {
                    since_ms,
                    error: error.clone(),
                });
                st.last_try = Some(Instant::now());
            }
            Err(_) => {}
        }
    }

    pub(crate) fn health(&self) -> WriteHealth {
        self.lock().health.clone()
    }

    /// Whether a probe write is due: writes fail and none was tried for [`PROBE_INTERVAL`].
    /// Claims the slot, so concurrent callers do not probe together.
    pub(crate) fn claim_probe(&self) -> bool {
        let mut st = self.lock();
        let due = st.health.failing.is_some()
            && st.last_try.is_none_or(|t| t.elapsed() >= PROBE_INTERVAL);
        if due {
            st.last_try = Some(Instant::now());
        }
        due
    }
}

pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_set_and_successes_clear_health() {
        let t = WriteTracker::default();
        assert!(t.health().writable());
        assert!(!t.claim_probe(), "no probe while writes work");

        t.record(&Err::<(), _>(StoreError::Backend("disk full".into())));
        let h = t.health();
        let since = h.failing.as_ref().unwrap().since_ms;
        assert_eq!(h.failures_total, 1);
        assert!(!t.claim_probe(), "a write was just tried");

        std::thread::sleep(Duration::from_millis(5));
        t.record(&Err::<(), _>(StoreError::Backend("still full".into())));
        let h = t.health();
        let failing = h.failing.unwrap();
        assert_eq!(
            (failing.since_ms, failing.error.as_str()),
            (since, "still full")
        );
        assert_eq!(h.failures_total, 2);

        // Refusals for the batch's content leave health alone.
        t.record(&Err::<(), _>(StoreError::DuplicateIdempotencyKey(
            "k".into(),
        )));
        t.record(&Err::<(), _>(StoreError::Fenced(3)));
        assert!(!t.health().writable());

        t.record(&Ok(()));
        assert_eq!(t.health().failing, None);
        assert_eq!(t.health().failures_total, 2);
        t.record(&Err::<(), _>(StoreError::Fenced(3)));
        assert!(t.health().writable());
    }

    #[test]
    fn probes_are_claimed_once_per_interval() {
        let t = WriteTracker::default();
        t.record(&Err::<(), _>(StoreError::Backend("disk full".into())));
        t.lock().last_try = Some(Instant::now() - PROBE_INTERVAL);
        assert!(t.claim_probe());
        assert!(!t.claim_probe(), "claimed by the first caller");
        t.record(&Ok(()));
        assert!(!t.claim_probe());
    }
}
