//! Per-client request limits by endpoint class, in fixed one-minute windows. Plain code: the
//! caller passes `now`; the HTTP guard turns a decision into `X-RateLimit-*` headers or 429.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// Which budget a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// GET endpoints and the WebSocket.
    Reads,
    /// Creating and canceling tasks, per-robot commands.
    Tasks,
    /// Fleet e-stop and release, keys.
    Fleet,
}

/// Requests per minute and client, per class; 0 means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default = "default_reads")]
    pub reads_per_min: u32,
    #[serde(default = "default_tasks")]
    pub tasks_per_min: u32,
    #[serde(default = "default_fleet")]
    pub fleet_per_min: u32,
}

fn default_reads() -> u32 {
    1200
}
fn default_tasks() -> u32 {
    120
}
fn default_fleet() -> u32 {
    30
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            reads_per_min: default_reads(),
            tasks_per_min: default_tasks(),
            fleet_per_min: default_fleet(),
        }
    }
}

impl Limits {
    pub fn of(&self, class: Class) -> u32 {
        match class {
            Class::Reads => self.reads_per_min,
            Class::Tasks => self.tasks_per_min,
            Class::Fleet => self.fleet_per_min,
        }
    }
}

/// The outcome of one request's check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window resets.
    pub reset_s: u64,
}

#[derive(Debug)]
struct Window {
    start: Instant,
    count: u32,
}

/// Fixed windows per (class, client).
#[derive(Debug)]
pub struct RateLimiter {
    limits: Limits,
    window: Duration,
    windows: Mutex<HashMap<(Class, String), Window>>,
}

/// Clients tracked before stale windows are swept.
const SWEEP_AT: usize = 50_000;

impl RateLimiter {
    pub fn new(limits: Limits) -> Self {
        Self::with_window(limits, Duration::from_secs(60))
    }

    pub fn with_window(limits: Limits, window: Duration) -> Self {
        Self {
            limits,
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request of `client` in `class` at `now`; `None` when the class is unlimited.
    pub fn check(&self, class: Class, client: &str, now: Instant) -> Option<Decision> {
        let limit = self.limits.of(class);
        if limit == 0 {
            return None;
        }
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() >= SWEEP_AT {
            let window = self.window;
            windows.retain(|_, w| now.duration_since(w.start) < window);
        }
        let w = windows.entry((class, client.to_owned())).or_insert(Window {
            start: now,
            count: 0,
        });
        if now.duration_since(w.start) >= self.window {
            w.start = now;
            w.count = 0;
        }
        let allowed = w.count < limit;
        if allowed {
            w.count += 1;
        }
        let left = self.window.saturating_sub(now.duration_since(w.start));
        Some(Decision {
            allowed,
            limit,
            remaining: limit - w.count,
            reset_s: left.as_secs() + u64::from(left.subsec_nanos() > 0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_and_class_has_its_own_budget() {
        let rl = RateLimiter::new(Limits {
            reads_per_min: 3,
            tasks_per_min: 1,
            fleet_per_min: 0,
        });
        let t0 = Instant::now();
        let d: Vec<Decision> = (0..4)
            .map(|_| rl.check(Class::Reads, "a", t0).unwrap())
            .collect();
        assert_eq!(
            d.iter()
                .map(|d| (d.allowed, d.remaining))
                .collect::<Vec<_>>(),
            vec![(true, 2), (true, 1), (true, 0), (false, 0)]
        );
        assert_eq!(d[0].limit, 3);
        assert_eq!(d[3].reset_s, 60);
        // Another client, another class: fresh budgets; fleet is unlimited here.
        assert!(rl.check(Class::Reads, "b", t0).unwrap().allowed);
        assert!(rl.check(Class::Tasks, "a", t0).unwrap().allowed);
        assert!(!rl.check(Class::Tasks, "a", t0).unwrap().allowed);
        assert_eq!(rl.check(Class::Fleet, "a", t0), None);
        // The window resets.
        let later = t0 + Duration::from_secs(59);
        assert_eq!(rl.check(Class::Reads, "a", later).unwrap().reset_s, 1);
        let next = t0 + Duration::from_secs(60);
        let d = rl.check(Class::Reads, "a", next).unwrap();
        assert!(d.allowed && d.remaining == 2);
    }
}
