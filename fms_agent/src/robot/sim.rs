//! A simulated robot as plain code: unicycle kinematics, battery drain and charging,
//! goal tolerance and injected navigation failures. No I/O, no clock, no tokio.

use std::f64::consts::PI;

use fms_msgs::{Pose, TeleopCommand, Velocity};

use super::{NavOutcome, RobotError, RobotInterface, Snapshot};

/// How a simulated robot moves, drains and fails.
#[derive(Debug, Clone, PartialEq)]
pub struct SimParams {
    /// m/s.
    pub max_speed: f64,
    /// rad/s.
    pub max_turn_rate: f64,
    /// A goal counts as reached within this many metres.
    pub goal_tolerance: f64,
    /// Chance (0-1) that a navigation goal fails part-way.
    pub failure_probability: f64,
    /// Battery percent used per metre travelled.
    pub drain_per_metre: f64,
    /// Battery percent used per second, moving or not.
    pub drain_per_second: f64,
    /// When idle below this percentage the robot charges in place (a docked robot).
    pub charge_below: f64,
    /// Percent per second while charging; charging stops at 100 or when a goal arrives.
    pub charge_rate: f64,
    /// Nominal pack voltage at 100 % (reported voltage scales 80-100 % of it).
    pub nominal_voltage: f64,
    /// Seed for failure injection; the same seed gives the same failures.
    pub seed: u64,
}

impl Default for SimParams {
    fn default() -> Self {
        Self {
            max_speed: 1.0,
            max_turn_rate: 1.5,
            goal_tolerance: 0.1,
            failure_probability: 0.0,
            drain_per_metre: 0.05,
            drain_per_second: 0.005,
            charge_below: 15.0,
            charge_rate: 1.0,
            nominal_voltage: 24.0,
            seed: 1,
        }
    }
}

/// Longest step integrated at once; longer polls are split so fast robots don't overshoot.
const MAX_STEP_S: f64 = 0.05;

#[derive(Debug, Clone)]
struct Navigation {
    poses: Vec<Pose>,
    next: usize,
    total_length: f64,
    /// Progress (0-1) at which this goal fails, if it is to fail.
    fail_at: Option<f64>,
    progress: f64,
}

/// The simulated robot.
#[derive(Debug, Clone)]
pub struct SimRobot {
    params: SimParams,
    pose: Pose,
    velocity: Velocity,
    battery: f64,
    charging: bool,
    estop: bool,
    nav: Option<Navigation>,
    outcome: Option<NavOutcome>,
    teleop: Option<(TeleopCommand, u64)>,
    last_ms: Option<u64>,
    rng: u64,
}

impl SimRobot {
    pub fn new(params: SimParams, start: Pose) -> Self {
        let rng = params.seed.max(1);
        Self {
            params,
            pose: start,
            velocity: Velocity::default(),
            battery: 100.0,
            charging: false,
            estop: false,
            nav: None,
            outcome: None,
            teleop: None,
            last_ms: None,
            rng,
        }
    }

    pub fn with_battery(mut self, percentage: f64) -> Self {
        self.battery = percentage.clamp(0.0, 100.0);
        self
    }

    pub fn pose(&self) -> &Pose {
        &self.pose
    }

    pub fn battery(&self) -> f64 {
        self.battery
    }

    /// xorshift64*: uniform in [0, 1).
    fn random(&mut self) -> f64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn finish(&mut self, outcome: NavOutcome) {
        self.nav = None;
        self.velocity = Velocity::default();
        self.outcome = Some(outcome);
    }

    fn step(&mut self, dt: f64, now_ms: u64) {
        let p = self.params.clone();
        let (mut v, mut w) = (0.0, 0.0);

        if self.estop {
            // Held at zero.
        } else if let Some(nav) = &mut self.nav {
            // Skip every waypoint already within tolerance.
            while nav.next < nav.poses.len()
                && self.pose.distance_to(&nav.poses[nav.next]) <= p.goal_tolerance
            {
                nav.next += 1;
            }
            let remaining =
                remaining_length(&self.pose, &nav.poses[nav.next.min(nav.poses.len())..]);
            if nav.total_length > 0.0 {
                nav.progress = nav
                    .progress
                    .max((1.0 - remaining / nav.total_length).clamp(0.0, 1.0));
            }
            if nav.next >= nav.poses.len() {
                self.finish(NavOutcome::Succeeded);
            } else if nav.fail_at.is_some_and(|f| nav.progress >= f) {
                self.finish(NavOutcome::Failed(
                    "navigation failed (injected fault)".into(),
                ));
            } else if self.battery <= 0.0 {
                self.finish(NavOutcome::Failed("battery depleted".into()));
            } else {
                let target = &nav.poses[nav.next];
                let (dx, dy) = (target.x - self.pose.x, target.y - self.pose.y);
                let dist = dx.hypot(dy);
                let err = wrap_angle(dy.atan2(dx) - self.pose.yaw);
                w = (2.0 * err).clamp(-p.max_turn_rate, p.max_turn_rate);
                // Turn on the spot when facing away; slow down on approach.
                v = (p.max_speed * err.cos().max(0.0))
                    .min(dist / dt.max(1e-3))
                    .min(2.0 * dist + 0.05);
                v = v.min(p.max_speed);
            }
        } else if let Some((cmd, until)) = self.teleop.clone() {
            if now_ms <= until && self.battery > 0.0 {
                v = cmd.linear.clamp(-p.max_speed, p.max_speed);
                w = cmd.angular.clamp(-p.max_turn_rate, p.max_turn_rate);
            } else {
                self.teleop = None;
            }
        }

        self.pose.yaw = wrap_angle(self.pose.yaw + w * dt);
        self.pose.x += v * self.pose.yaw.cos() * dt;
        self.pose.y += v * self.pose.yaw.sin() * dt;
        self.velocity = Velocity {
            linear: v,
            angular: w,
        };

        let moving = v != 0.0 || w != 0.0;
        if !moving && self.nav.is_none() && self.battery < p.charge_below {
            self.charging = true;
        }
        if self.charging {
            self.battery = (self.battery + p.charge_rate * dt).min(100.0);
            if self.battery >= 100.0 {
                self.charging = false;
            }
        } else {
            self.battery =
                (self.battery - p.drain_per_metre * v.abs() * dt - p.drain_per_second * dt)
                    .max(0.0);
        }
    }
}

pub(crate) fn wrap_angle(a: f64) -> f64 {
    let mut a = (a + PI) % (2.0 * PI);
    if a < 0.0 {
        a += 2.0 * PI;
    }
    a - PI
}

/// Length of the path from `from` through `poses`.
fn remaining_length(from: &Pose, poses: &[Pose]) -> f64 {
    let mut len = 0.0;
    let mut at = from;
    for p in poses {
        len += at.distance_to(p);
        at = p;
    }
    len
}

impl RobotInterface for SimRobot {
    fn navigate(&mut self, poses: &[Pose], now_ms: u64) -> Result<(), RobotError> {
        if self.estop {
            return Err(RobotError::GoalRejected("emergency stop engaged".into()));
        }
        if poses.is_empty() || poses.iter().any(|p| !p.is_finite()) {
            return Err(RobotError::GoalRejected(
                "goal has no poses or a non-finite pose".into(),
            ));
        }
        self.poll(now_ms);
        if self.nav.is_some() {
            self.outcome = Some(NavOutcome::Canceled);
        }
        let fail_at =
            (self.random() < self.params.failure_probability).then(|| 0.2 + 0.6 * self.random());
        self.charging = false;
        self.teleop = None;
        self.nav = Some(Navigation {
            poses: poses.to_vec(),
            next: 0,
            total_length: remaining_length(&self.pose, poses),
            fail_at,
            progress: 0.0,
        });
        Ok(())
    }

    fn cancel(&mut self, now_ms: u64) {
        self.poll(now_ms);
        if self.nav.is_some() {
            self.finish(NavOutcome::Canceled);
        }
    }

    fn set_estop(&mut self, engaged: bool, now_ms: u64) {
        self.poll(now_ms);
        self.estop = engaged;
        if engaged {
            self.teleop = None;
            self.velocity = Velocity::default();
            if self.nav.is_some() {
                self.finish(NavOutcome::Canceled);
            }
        }
    }

    fn teleop(&mut self, cmd: TeleopCommand, until_ms: u64, now_ms: u64) {
        self.poll(now_ms);
        if !self.estop && cmd.linear.is_finite() && cmd.angular.is_finite() {
            self.charging = false;
            self.teleop = Some((cmd, until_ms));
        }
    }

    fn dock(&mut self, now_ms: u64) {
        self.poll(now_ms);
        if self.nav.is_none() && self.battery < 100.0 {
            self.charging = true;
        }
    }

    fn poll(&mut self, now_ms: u64) -> Snapshot {
        let last = *self.last_ms.get_or_insert(now_ms);
        let mut remaining = now_ms.saturating_sub(last) as f64 / 1000.0;
        let mut t = last;
        while remaining > 0.0 {
            let dt = remaining.min(MAX_STEP_S);
            t += (dt * 1000.0) as u64;
            self.step(dt, t);
            remaining -= dt;
        }
        self.last_ms = Some(now_ms.max(last));
        Snapshot {
            pose: self.pose.clone(),
            velocity: self.velocity,
            battery_percentage: self.battery,
            battery_voltage: Some(self.params.nominal_voltage * (0.8 + 0.2 * self.battery / 100.0)),
            charging: self.charging,
            nav_progress: self.nav.as_ref().map(|n| n.progress),
            nav_outcome: self.outcome.take(),
            fault: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_until_outcome(robot: &mut SimRobot, mut now: u64, limit_ms: u64) -> (NavOutcome, u64) {
        let end = now + limit_ms;
        while now < end {
            now += 100;
            if let Some(o) = robot.poll(now).nav_outcome {
                return (o, now);
            }
        }
        panic!(
            "no outcome within {limit_ms} ms; robot at {:?}",
            robot.pose()
        );
    }

    #[test]
    fn reaches_a_goal_within_tolerance_and_plausible_time() {
        let mut r = SimRobot::new(SimParams::default(), Pose::new(0.0, 0.0, 0.0));
        r.navigate(&[Pose::new(5.0, 0.0, 0.0)], 0).unwrap();
        let (o, t) = run_until_outcome(&mut r, 0, 30_000);
        assert_eq!(o, NavOutcome::Succeeded);
        assert!(r.pose().distance_to(&Pose::new(5.0, 0.0, 0.0)) <= 0.1 + 1e-9);
        // 5 m at 1 m/s can't take less than 5 s; slowing down on approach costs a little.
        assert!((5_000..9_000).contains(&t), "took {t} ms");
    }

    #[test]
    fn turns_toward_a_goal_behind_it() {
        let mut r = SimRobot::new(SimParams::default(), Pose::new(0.0, 0.0, 0.0));
        r.navigate(&[Pose::new(-3.0, 0.0, 0.0)], 0).unwrap();
        let s = r.poll(500);
        assert!(
            s.velocity.linear.abs() < 0.2,
            "should turn in place first: {:?}",
            s.velocity
        );
        assert!(s.velocity.angular.abs() > 1.0);
        assert_eq!(
            run_until_outcome(&mut r, 500, 30_000).0,
            NavOutcome::Succeeded
        );
    }

    #[test]
    fn follows_waypoints_in_order_with_monotone_progress() {
        let mut r = SimRobot::new(SimParams::default(), Pose::new(0.0, 0.0, 0.0));
        let wps = [
            Pose::new(2.0, 0.0, 0.0),
            Pose::new(2.0, 2.0, 0.0),
            Pose::new(0.0, 2.0, 0.0),
        ];
        r.navigate(&wps, 0).unwrap();
        let mut last = 0.0;
        let mut now = 0;
        let mut near_second = false;
        loop {
            now += 100;
            let s = r.poll(now);
            if s.pose.distance_to(&wps[1]) < 0.3 {
                near_second = true;
            }
            if let Some(o) = s.nav_outcome {
                assert_eq!(o, NavOutcome::Succeeded);
                break;
            }
            let p = s.nav_progress.unwrap();
            assert!(p >= last, "progress went back: {p} < {last}");
            last = p;
            assert!(now < 60_000);
        }
        assert!(near_second, "never passed the middle waypoint");
    }

    #[test]
    fn speed_and_turn_rate_are_bounded() {
        let params = SimParams {
            max_speed: 0.5,
            max_turn_rate: 0.8,
            ..SimParams::default()
        };
        let mut r = SimRobot::new(params, Pose::new(0.0, 0.0, 0.0));
        r.navigate(&[Pose::new(10.0, 10.0, 0.0)], 0).unwrap();
        for t in 1..100 {
            let s = r.poll(t * 100);
            assert!(s.velocity.linear.abs() <= 0.5 + 1e-9);
            assert!(s.velocity.angular.abs() <= 0.8 + 1e-9);
        }
    }

    #[test]
    fn battery_drains_with_distance_and_time() {
        let mut idle = SimRobot::new(SimParams::default(), Pose::new(0.0, 0.0, 0.0));
        let mut moving = idle.clone();
        idle.poll(0);
        let idle_after = idle.poll(10_000).battery_percentage;
        moving.navigate(&[Pose::new(8.0, 0.0, 0.0)], 0).unwrap();
        let moving_after = moving.poll(10_000).battery_percentage;
        assert!(idle_after < 100.0);
        assert!(
            moving_after < idle_after - 0.2,
            "idle {idle_after}, moving {moving_after}"
        );
    }

    #[test]
    fn docking_charges_to_full_then_stops() {
        let mut r =
            SimRobot::new(SimParams::default(), Pose::new(0.0, 0.0, 0.0)).with_battery(50.0);
        r.poll(0);
        r.dock(0);
        assert!(r.poll(10_000).charging);
        // Full after 50 s at 1 %/s; then it drains slowly again, idle.
        let s = r.poll(60_000);
        assert!(!s.charging && s.battery_percentage > 99.9, "{s:?}");
    }

    #[test]
    fn idle_robot_with_low_battery_charges() {
        let mut r =
            SimRobot::new(SimParams::default(), Pose::new(0.0, 0.0, 0.0)).with_battery(10.0);
        r.poll(0);
        let s = r.poll(5_000);
        assert!(s.charging);
        assert!(s.battery_percentage > 10.0);
    }

    #[test]
    fn estop_stops_at_once_and_refuses_goals_until_released() {
        let mut r = SimRobot::new(SimParams::default(), Pose::new(0.0, 0.0, 0.0));
        r.navigate(&[Pose::new(10.0, 0.0, 0.0)], 0).unwrap();
        r.poll(2_000);
        r.set_estop(true, 2_000);
        let s = r.poll(2_100);
        assert_eq!(s.nav_outcome, Some(NavOutcome::Canceled));
        assert_eq!(s.velocity, Velocity::default());
        let held = r.poll(5_000).pose;
        assert_eq!(held, s.pose, "moved while e-stopped");
        assert!(r.navigate(&[Pose::new(1.0, 1.0, 0.0)], 5_000).is_err());
        r.teleop(TeleopCommand::drive(1.0, 0.0, None), 6_000, 5_000);
        assert_eq!(r.poll(5_500).pose, held, "teleop moved an e-stopped robot");
        r.set_estop(false, 5_500);
        assert!(r.navigate(&[Pose::new(1.0, 1.0, 0.0)], 5_500).is_ok());
    }

    #[test]
    fn teleop_stops_at_the_deadman_deadline() {
        let mut r = SimRobot::new(SimParams::default(), Pose::new(0.0, 0.0, 0.0));
        r.poll(0);
        r.teleop(TeleopCommand::drive(0.5, 0.0, None), 500, 0);
        assert!(r.poll(300).velocity.linear > 0.4);
        let x = r.poll(600).pose.x;
        assert!((0.2..0.3).contains(&x), "x = {x}");
        assert_eq!(r.poll(2_000).pose.x, x);
    }

    #[test]
    fn failure_injection_follows_probability_and_seed() {
        let count_failures = |p: f64, seed: u64| {
            let params = SimParams {
                failure_probability: p,
                seed,
                ..SimParams::default()
            };
            let mut r = SimRobot::new(params, Pose::new(0.0, 0.0, 0.0));
            let mut failures = 0;
            let mut now = 0;
            for i in 0..40 {
                let x = if i % 2 == 0 { 2.0 } else { 0.0 };
                r.navigate(&[Pose::new(x, 0.0, 0.0)], now).unwrap();
                let (o, t) = run_until_outcome(&mut r, now, 60_000);
                now = t;
                if matches!(o, NavOutcome::Failed(_)) {
                    failures += 1;
                }
            }
            failures
        };
        assert_eq!(count_failures(0.0, 7), 0);
        assert_eq!(count_failures(1.0, 7), 40);
        let half = count_failures(0.5, 7);
        assert!((8..=32).contains(&half), "{half} of 40 failed at p=0.5");
        assert_eq!(half, count_failures(0.5, 7), "same seed, same failures");
    }
}
