//! Rate limits for log lines about things outsiders can repeat at will (unknown robot ids,
//! refused events): at most one line per key and interval, in bounded memory. Plain code:
//! the caller passes `now`.

use std::collections::HashMap;

/// The interval of the gates the server uses: one line per key and minute.
pub const LOG_EVERY_MS: u64 = 60_000;
/// Keys remembered at most; past it, keys whose interval is over are forgotten, and if all
/// are recent the gate stays shut for new keys until they age out.
const MAX_KEYS: usize = 4_096;

/// Says whether a line about `key` may be logged now.
#[derive(Debug)]
pub struct LogGate {
    every_ms: u64,
    last: HashMap<String, u64>,
    /// Lines held back since the last one allowed (all keys).
    held: u64,
}

impl LogGate {
    pub fn new(every_ms: u64) -> Self {
        Self {
            every_ms,
            last: HashMap::new(),
            held: 0,
        }
    }

    /// True at most once per key and interval.
    pub fn allow(&mut self, key: &str, now: u64) -> bool {
        if let Some(at) = self.last.get_mut(key) {
            if now.saturating_sub(*at) < self.every_ms {
                self.held += 1;
                return false;
            }
            *at = now;
            return true;
        }
        if self.last.len() >= MAX_KEYS {
            let every = self.every_ms;
            self.last.retain(|_, at| now.saturating_sub(*at) < every);
            if self.last.len() >= MAX_KEYS {
                self.held += 1;
                return false;
            }
        }
        self.last.insert(key.to_owned(), now);
        true
    }

    /// Lines held back so far.
    pub fn held(&self) -> u64 {
        self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_key_and_interval() {
        let mut g = LogGate::new(60_000);
        assert!(g.allow("r1", 0));
        assert!(!g.allow("r1", 59_999));
        assert!(g.allow("r2", 1));
        assert!(g.allow("r1", 60_000));
        assert_eq!(g.held(), 1);
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_keys() {
        let mut g = LogGate::new(60_000);
        let allowed = (0..20_000)
            .filter(|i| g.allow(&format!("r{i}"), 1_000))
            .count();
        assert_eq!(allowed, MAX_KEYS);
        assert!(g.last.len() <= MAX_KEYS);
        // Once the interval is over, old keys make room for new ones.
        assert!(g.allow("fresh", 61_000));
        assert!(g.last.len() <= MAX_KEYS);
    }
}
