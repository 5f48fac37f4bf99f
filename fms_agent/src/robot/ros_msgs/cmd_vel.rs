//! `cmd_vel`: [`CmdVelGate`], the e-stop zero-velocity hold and the teleop dead-man
//! (at most [`TELEOP_DEADMAN_MS`] per command).

use fms_msgs::{TeleopCommand, Velocity};

use crate::executor::TELEOP_DEADMAN_MS;

/// Decides what to publish on `cmd_vel`, and when.
///
/// - E-stop engaged: zero, at once and then every period, until released.
/// - Teleop: the commanded velocity, at once and then every period, until its deadline,
///   which is at most [`TELEOP_DEADMAN_MS`] after the command arrived; then one zero.
/// - Otherwise nothing, so that Nav2's controller owns `cmd_vel`.
#[derive(Debug, Clone)]
pub struct CmdVelGate {
    period_ms: u64,
    estop: bool,
    teleop: Option<(Velocity, u64)>,
    last_sent_ms: Option<u64>,
    /// Publish at the next tick whatever the period (state changed).
    due: bool,
    /// One zero to publish (teleop ended or was cleared).
    stop: bool,
}

impl CmdVelGate {
    pub fn new(period_ms: u64) -> Self {
        Self {
            period_ms: period_ms.max(1),
            estop: false,
            teleop: None,
            last_sent_ms: None,
            due: false,
            stop: false,
        }
    }

    pub fn set_estop(&mut self, engaged: bool) {
        if engaged {
            self.teleop = None;
            self.due = true;
        }
        self.estop = engaged;
    }

    /// Drive at `cmd` until `until_ms` (capped at `now_ms` + the dead-man timeout). Ignored
    /// while the e-stop is engaged or for a non-finite command.
    pub fn teleop(&mut self, cmd: TeleopCommand, until_ms: u64, now_ms: u64) {
        if self.estop || !(cmd.linear.is_finite() && cmd.angular.is_finite()) {
            return;
        }
        let until = until_ms.min(now_ms + TELEOP_DEADMAN_MS);
        let v = Velocity {
            linear: cmd.linear,
            angular: cmd.angular,
        };
        self.teleop = Some((v, until));
        self.due = true;
    }

    /// Ends teleop (navigation takes over): one zero follows.
    pub fn clear_teleop(&mut self) {
        if self.teleop.take().is_some() {
            self.stop = true;
        }
    }

    pub fn is_teleop(&self) -> bool {
        self.teleop.is_some()
    }

    /// What to publish now, if anything. Call it often (at least every period).
    pub fn tick(&mut self, now_ms: u64) -> Option<Velocity> {
        let period_over = self
            .last_sent_ms
            .is_none_or(|t| now_ms.saturating_sub(t) >= self.period_ms);
        let out = if self.estop {
            (self.due || period_over).then(Velocity::default)
        } else if let Some((v, until)) = self.teleop {
            if now_ms >= until {
                self.teleop = None;
                Some(Velocity::default())
            } else {
                (self.due || period_over).then_some(v)
            }
        } else if self.stop {
            Some(Velocity::default())
        } else {
            None
        };
        self.due = false;
        if out.is_some() {
            self.stop = false;
            self.last_sent_ms = Some(now_ms);
        }
        out
    }
}
