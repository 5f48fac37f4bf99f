//! Per-client request limits by endpoint class, and failed-authentication budgets per client
//! address and per API key id, in fixed one-minute windows. Plain code: the caller passes
//! `now`; the HTTP guard turns a decision into `X-RateLimit-*` headers, 429 and `Retry-After`.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
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

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
}

/// Fixed windows by key: a counter that starts afresh `window` after its first use.
#[derive(Debug)]
struct Windows<K> {
    window: Duration,
    map: HashMap<K, Window>,
}

/// Keys tracked before stale windows are swept.
const SWEEP_AT: usize = 50_000;

impl<K: Eq + Hash> Windows<K> {
    fn new(window: Duration) -> Self {
        Self {
            window,
            map: HashMap::new(),
        }
    }

    /// The current window of `key` (a fresh one if its last has ended).
    fn current(&mut self, key: K, now: Instant) -> &mut Window {
        if self.map.len() >= SWEEP_AT {
            let window = self.window;
            self.map
                .retain(|_, w| now.saturating_duration_since(w.start) < window);
        }
        let window = self.window;
        let w = self.map.entry(key).or_insert(Window {
            start: now,
            count: 0,
        });
        if now.saturating_duration_since(w.start) >= window {
            w.start = now;
            w.count = 0;
        }
        w
    }

    /// How `w` stands against `limit`.
    fn decision(&self, w: Window, limit: u32, allowed: bool, now: Instant) -> Decision {
        let left = self
            .window
            .saturating_sub(now.saturating_duration_since(w.start));
        Decision {
            allowed,
            limit,
            remaining: limit.saturating_sub(w.count),
            reset_s: (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1),
        }
    }
}

/// Fixed windows per (class, client).
#[derive(Debug)]
pub struct RateLimiter {
    limits: Limits,
    windows: Mutex<Windows<(Class, String)>>,
}

impl RateLimiter {
    pub fn new(limits: Limits) -> Self {
        Self::with_window(limits, Duration::from_secs(60))
    }

    pub fn with_window(limits: Limits, window: Duration) -> Self {
        Self {
            limits,
            windows: Mutex::new(Windows::new(window)),
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
        let w = windows.current((class, client.to_owned()), now);
        let allowed = w.count < limit;
        if allowed {
            w.count += 1;
        }
        let w = *w;
        Some(windows.decision(w, limit, allowed, now))
    }
}

/// Failed authentications allowed per minute (`[auth]`); 0 means unlimited.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailureLimits {
    /// Per client address (an IPv6 client's /64).
    pub per_address: u32,
    /// Per API key id, counted from every address.
    pub per_key: u32,
}

impl Default for FailureLimits {
    fn default() -> Self {
        Self {
            per_address: 60,
            per_key: 20,
        }
    }
}

/// Why an authentication attempt was refused before anything was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// This address has used up its failures for the window.
    Address(Decision),
    /// This key id has used up its failures, and this address has failed in the window too.
    Key(Decision),
}

impl Throttled {
    pub fn decision(&self) -> Decision {
        match self {
            Throttled::Address(d) | Throttled::Key(d) => *d,
        }
    }
}

/// Failed-authentication budgets, per client address and per API key id, in fixed windows.
///
/// Key verifications (a store read and argon2) are spent *before* they run (so that many at
/// once cannot overshoot) and refunded when the key proves right. While a key id is over its
/// budget, only addresses without a failure of their own in the window may try it: an
/// attacker who knows the id (ids are not secret) slows its verifications to one per address
/// and window, but does not lock its owner out.
#[derive(Debug)]
pub struct FailureLimiter {
    limits: FailureLimits,
    addresses: Mutex<Windows<Option<IpAddr>>>,
    keys: Mutex<Windows<String>>,
}

/// The address an attempt is counted against: an IPv4 address (an IPv4-mapped IPv6 one as
/// IPv4), or an IPv6 address's /64, which one client usually holds entirely. `None`: unknown.
pub fn client_of(ip: Option<IpAddr>) -> Option<IpAddr> {
    Some(match ip? {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                seg[4..].fill(0);
                IpAddr::from(seg)
            }
        },
        v4 => v4,
    })
}

impl FailureLimiter {
    pub fn new(limits: FailureLimits) -> Self {
        Self::with_window(limits, Duration::from_secs(60))
    }

    pub fn with_window(limits: FailureLimits, window: Duration) -> Self {
        Self {
            limits,
            addresses: Mutex::new(Windows::new(window)),
            keys: Mutex::new(Windows::new(window)),
        }
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a failure found without any work (no credential, a malformed one, a bad token,
    /// a key that just failed) against `client`. The decision is not allowed when `client`
    /// was already over its budget; `None` when addresses are unlimited.
    pub fn fail(&self, client: Option<IpAddr>, now: Instant) -> Option<Decision> {
        let limit = self.limits.per_address;
        let mut addresses = Self::lock(&self.addresses);
        let w = addresses.current(client_of(client), now);
        let allowed = limit == 0 || w.count < limit;
        if allowed {
            w.count = w.count.saturating_add(1);
        }
        let w = *w;
        (limit > 0).then(|| addresses.decision(w, limit, allowed, now))
    }

    /// Before a key with id `key_id` is verified for `client`: spends one failure of each,
    /// and returns the address's budget after it (`None` when unlimited), or why not.
    pub fn admit(
        &self,
        client: Option<IpAddr>,
        key_id: &str,
        now: Instant,
    ) -> Result<Option<Decision>, Throttled> {
        let limits = self.limits;
        let mut addresses = Self::lock(&self.addresses);
        let mut keys = Self::lock(&self.keys);
        let client = client_of(client);
        let a = *addresses.current(client, now);
        if limits.per_address > 0 && a.count >= limits.per_address {
            let d = addresses.decision(a, limits.per_address, false, now);
            return Err(Throttled::Address(d));
        }
        let k = keys.current(key_id.to_owned(), now);
        if limits.per_key > 0 && k.count >= limits.per_key && a.count > 0 {
            let k = *k;
            return Err(Throttled::Key(keys.decision(k, limits.per_key, false, now)));
        }
        k.count = k.count.saturating_add(1);
        let a = addresses.current(client, now);
        a.count = a.count.saturating_add(1);
        let a = *a;
        Ok((limits.per_address > 0).then(|| addresses.decision(a, limits.per_address, true, now)))
    }

    /// Gives back what [`FailureLimiter::admit`] spent: the key was right, or it could not
    /// be checked (the server was busy, the store failed).
    pub fn refund(&self, client: Option<IpAddr>, key_id: &str, now: Instant) {
        let mut addresses = Self::lock(&self.addresses);
        let a = addresses.current(client_of(client), now);
        a.count = a.count.saturating_sub(1);
        let mut keys = Self::lock(&self.keys);
        let k = keys.current(key_id.to_owned(), now);
        k.count = k.count.saturating_sub(1);
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

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn cheap_failures_spend_the_address_budget_until_429() {
        let fl = FailureLimiter::new(FailureLimits {
            per_address: 3,
            per_key: 0,
        });
        let t0 = Instant::now();
        let d: Vec<Decision> = (0..4)
            .map(|_| fl.fail(ip("10.0.0.1"), t0).unwrap())
            .collect();
        assert_eq!(
            d.iter()
                .map(|d| (d.allowed, d.remaining))
                .collect::<Vec<_>>(),
            vec![(true, 2), (true, 1), (true, 0), (false, 0)]
        );
        assert_eq!((d[3].limit, d[3].reset_s), (3, 60));
        // Over the budget, keys are not even tried from there; elsewhere they are.
        let refused = fl.admit(ip("10.0.0.1"), "k", t0).unwrap_err();
        assert!(matches!(refused, Throttled::Address(d) if !d.allowed && d.reset_s == 60));
        assert!(fl.admit(ip("10.0.0.2"), "k", t0).is_ok());
        // An IPv6 client is its /64; an IPv4-mapped address is the IPv4 one.
        for _ in 0..3 {
            fl.fail(ip("2001:db8:1:2::1"), t0);
        }
        assert!(!fl.fail(ip("2001:db8:1:2:ffff::9"), t0).unwrap().allowed);
        assert!(fl.fail(ip("2001:db8:1:3::1"), t0).unwrap().allowed);
        assert!(!fl.fail(ip("::ffff:10.0.0.1"), t0).unwrap().allowed);
        // The window ends.
        let next = t0 + Duration::from_secs(60);
        assert_eq!(fl.fail(ip("10.0.0.1"), next).unwrap().remaining, 2);
        // Unlimited: no decision, never refused.
        let open = FailureLimiter::new(FailureLimits {
            per_address: 0,
            per_key: 0,
        });
        assert!((0..1000).all(|_| open.fail(ip("10.0.0.1"), t0).is_none()));
        assert!(open.admit(ip("10.0.0.1"), "k", t0).unwrap().is_none());
    }

    #[test]
    fn verifications_are_spent_up_front_and_refunded_when_right() {
        let fl = FailureLimiter::new(FailureLimits {
            per_address: 2,
            per_key: 100,
        });
        let t0 = Instant::now();
        let a = ip("192.0.2.7");
        // Two verifications in flight use the budget up: a third waits for the window.
        assert_eq!(fl.admit(a, "k1", t0).unwrap().unwrap().remaining, 1);
        assert_eq!(fl.admit(a, "k1", t0).unwrap().unwrap().remaining, 0);
        assert!(matches!(fl.admit(a, "k2", t0), Err(Throttled::Address(_))));
        // One was the right key: its unit comes back.
        fl.refund(a, "k1", t0);
        assert!(fl.admit(a, "k2", t0).is_ok());
        assert!(fl.admit(a, "k2", t0 + Duration::from_secs(59)).is_err());
        assert!(fl.admit(a, "k2", t0 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn a_key_id_over_its_budget_is_tried_only_from_addresses_that_have_not_failed() {
        let fl = FailureLimiter::new(FailureLimits {
            per_address: 1000,
            per_key: 3,
        });
        let t0 = Instant::now();
        let attacker = ip("203.0.113.9");
        for _ in 0..3 {
            assert!(fl.admit(attacker, "target", t0).is_ok());
        }
        // The attacker (who has failed) is refused on that id, with the id's budget...
        let refused = fl.admit(attacker, "target", t0).unwrap_err();
        assert_eq!(
            refused,
            Throttled::Key(Decision {
                allowed: false,
                limit: 3,
                remaining: 0,
                reset_s: 60
            })
        );
        assert_eq!(refused.decision().limit, 3);
        // ...but not on other ids.
        assert!(fl.admit(attacker, "other", t0).is_ok());
        // The owner, from an address without failures, still gets the key checked; right,
        // the address stays clean and may check it again.
        let owner = ip("198.51.100.1");
        assert!(fl.admit(owner, "target", t0).is_ok());
        fl.refund(owner, "target", t0);
        assert!(fl.admit(owner, "target", t0).is_ok());
        // A wrong one (no refund) makes that address dirty too: one try per address.
        assert!(matches!(
            fl.admit(owner, "target", t0),
            Err(Throttled::Key(_))
        ));
        // A cheap failure counts as a failure of the address as well.
        let third = ip("198.51.100.2");
        fl.fail(third, t0);
        assert!(fl.admit(third, "target", t0).is_err());
        // Next window: a fresh budget for the id.
        assert!(fl
            .admit(attacker, "target", t0 + Duration::from_secs(60))
            .is_ok());
    }
}
