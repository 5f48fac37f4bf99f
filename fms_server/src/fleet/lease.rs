//! The dispatch lease as one replica sees it: whether it leads, under which fencing token,
//! and until when it may act on its own clock. Pure: the adapter (`crate::leader`) asks
//! the store to take or renew the lease and feeds the answers in, with a monotonic `now`.
//!
//! Safety rests on one rule: a replica counts its lease from the moment it *sent* the
//! renewal, minus a margin, so it stops acting before the database can hand the lease to
//! anyone else (the database counts from when it *received* the renewal).

/// Lease timing, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseParams {
    /// How long a taken or renewed lease lasts in the database.
    pub ttl_ms: u64,
    /// How often the holder renews (and followers try to take it).
    pub renew_ms: u64,
}

impl Default for LeaseParams {
    fn default() -> Self {
        Self {
            ttl_ms: 3000,
            renew_ms: 1000,
        }
    }
}

/// Lease timings that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseParamsError {
    #[error("lease_ttl_ms {0} is below 500")]
    TtlTooShort(u64),
    #[error("lease_renew_ms {renew_ms} must be above 0 and at most half of lease_ttl_ms {ttl_ms}")]
    Renew { renew_ms: u64, ttl_ms: u64 },
}

impl LeaseParams {
    /// Checks that renewals fit well inside the lease.
    pub fn validate(&self) -> Result<(), LeaseParamsError> {
        if self.ttl_ms < 500 {
            return Err(LeaseParamsError::TtlTooShort(self.ttl_ms));
        }
        if self.renew_ms == 0 || self.renew_ms * 2 > self.ttl_ms {
            return Err(LeaseParamsError::Renew {
                renew_ms: self.renew_ms,
                ttl_ms: self.ttl_ms,
            });
        }
        Ok(())
    }

    /// The part of the lease the holder gives up to clock drift and scheduling delays.
    fn margin(&self) -> u64 {
        (self.ttl_ms / 10).max(100)
    }
}

/// A change of role the coordinator must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// This replica now leads under `token` (a new term: reload everything from the store).
    Elected { token: u64 },
    /// This replica no longer leads (term `token` ended).
    SteppedDown { token: u64, why: StepDownReason },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepDownReason {
    /// The lease ran out on our clock without a successful renewal.
    Expired,
    /// The database says another replica holds it.
    TakenOver,
    /// We gave it up (shutdown).
    Released,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    token: u64,
    /// Monotonic ms after which we must not act.
    valid_until: u64,
}

/// One replica's view of the dispatch lease.
#[derive(Debug, Clone)]
pub struct DispatchLease {
    params: LeaseParams,
    held: Option<Held>,
}

impl DispatchLease {
    pub fn new(params: LeaseParams) -> Self {
        Self { params, held: None }
    }

    pub fn params(&self) -> LeaseParams {
        self.params
    }

    /// The fencing token, if this replica may act as leader at `now`.
    pub fn token(&self, now: u64) -> Option<u64> {
        self.held.filter(|h| now < h.valid_until).map(|h| h.token)
    }

    /// The store granted (took or renewed) the lease with `token`, for a request sent at
    /// `sent_at`.
    pub fn on_granted(&mut self, token: u64, sent_at: u64, now: u64) -> Vec<Transition> {
        let valid_until = (sent_at + self.params.ttl_ms).saturating_sub(self.params.margin());
        let mut out = Vec::new();
        match self.held {
            // Still ours and still valid on our clock: the same term goes on.
            Some(h) if h.token == token && now < h.valid_until => {}
            Some(h) => {
                out.push(Transition::SteppedDown {
                    token: h.token,
                    why: StepDownReason::Expired,
                });
                out.push(Transition::Elected { token });
            }
            None => out.push(Transition::Elected { token }),
        }
        if now >= valid_until {
            // The answer came too late to act on: take nothing from it.
            if let Some(Transition::Elected { .. }) = out.last() {
                out.pop();
            }
            self.held = None;
            return out;
        }
        self.held = Some(Held { token, valid_until });
        out
    }

    /// The store answered that another replica holds the lease.
    pub fn on_refused(&mut self) -> Vec<Transition> {
        self.end(StepDownReason::TakenOver)
    }

    /// The store could not be asked (unreachable, timed out): keep leading until the
    /// lease runs out on our clock.
    pub fn on_error(&mut self, now: u64) -> Vec<Transition> {
        self.check(now)
    }

    /// Steps down once the lease has run out at `now`.
    pub fn check(&mut self, now: u64) -> Vec<Transition> {
        match self.held {
            Some(h) if now >= h.valid_until => self.end(StepDownReason::Expired),
            _ => Vec::new(),
        }
    }

    /// We give the lease up.
    pub fn release(&mut self) -> Vec<Transition> {
        self.end(StepDownReason::Released)
    }

    fn end(&mut self, why: StepDownReason) -> Vec<Transition> {
        match self.held.take() {
            Some(h) => vec![Transition::SteppedDown {
                token: h.token,
                why,
            }],
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> DispatchLease {
        DispatchLease::new(LeaseParams {
            ttl_ms: 3000,
            renew_ms: 1000,
        })
    }

    #[test]
    fn params_are_checked() {
        assert!(LeaseParams::default().validate().is_ok());
        let bad = |ttl_ms, renew_ms| LeaseParams { ttl_ms, renew_ms }.validate().is_err();
        assert!(bad(100, 10));
        assert!(bad(3000, 0));
        assert!(bad(3000, 1600));
    }

    #[test]
    fn a_grant_elects_and_renewals_keep_the_term() {
        let mut s = state();
        assert_eq!(s.token(0), None);
        assert_eq!(
            s.on_granted(7, 0, 10),
            vec![Transition::Elected { token: 7 }]
        );
        assert_eq!(s.token(10), Some(7));
        assert_eq!(s.on_granted(7, 1000, 1010), vec![]);
        // Valid until the renewal's send time + ttl - margin.
        assert_eq!(s.token(3699), Some(7));
        assert_eq!(s.token(3700), None);
    }

    #[test]
    fn the_lease_counts_from_when_the_request_was_sent() {
        let mut s = state();
        // A slow answer (sent at 0, answered at 2000) leaves less time.
        s.on_granted(1, 0, 2000);
        assert_eq!(s.token(2699), Some(1));
        assert_eq!(s.token(2700), None);
    }

    #[test]
    fn an_answer_too_late_to_use_elects_nobody() {
        let mut s = state();
        assert_eq!(s.on_granted(1, 0, 2700), vec![]);
        assert_eq!(s.token(2700), None);
    }

    #[test]
    fn errors_keep_the_lease_until_it_runs_out() {
        let mut s = state();
        s.on_granted(3, 0, 0);
        assert_eq!(s.on_error(1000), vec![]);
        assert_eq!(s.on_error(2000), vec![]);
        assert_eq!(s.token(2000), Some(3));
        assert_eq!(
            s.on_error(2700),
            vec![Transition::SteppedDown {
                token: 3,
                why: StepDownReason::Expired
            }]
        );
        assert_eq!(s.token(2700), None);
        // Nothing more to report.
        assert_eq!(s.check(5000), vec![]);
    }

    #[test]
    fn a_refusal_steps_down_at_once() {
        let mut s = state();
        s.on_granted(3, 0, 0);
        assert_eq!(
            s.on_refused(),
            vec![Transition::SteppedDown {
                token: 3,
                why: StepDownReason::TakenOver
            }]
        );
        assert_eq!(s.token(1), None);
        assert_eq!(s.on_refused(), vec![]);
    }

    #[test]
    fn a_new_token_is_a_new_term() {
        let mut s = state();
        s.on_granted(3, 0, 0);
        // Our lease lapsed and we took it again: a new term, the old one ended.
        assert_eq!(
            s.on_granted(4, 5000, 5000),
            vec![
                Transition::SteppedDown {
                    token: 3,
                    why: StepDownReason::Expired
                },
                Transition::Elected { token: 4 }
            ]
        );
        assert_eq!(s.token(5000), Some(4));
    }

    #[test]
    fn release_ends_the_term() {
        let mut s = state();
        s.on_granted(9, 0, 0);
        assert_eq!(
            s.release(),
            vec![Transition::SteppedDown {
                token: 9,
                why: StepDownReason::Released
            }]
        );
        assert_eq!(s.token(0), None);
    }
}
