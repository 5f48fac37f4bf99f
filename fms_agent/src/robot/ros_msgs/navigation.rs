//! Nav2 navigation: `NavigateToPose` goals from fleet poses, r2r's untyped JSON for goals,
//! feedback and results, outcomes from goal status codes, and [`WaypointProgress`].

use fms_msgs::codec::{self, DecodeError, JsonValue};
use fms_msgs::common::DEFAULT_FRAME;
use fms_msgs::Pose;

use super::geometry::ros_from_pose;
use super::messages::{
    goal_status, Header, NavigateToPoseFeedback, NavigateToPoseGoal, NavigateToPoseResult,
    PoseStamped, Time,
};
use crate::robot::NavOutcome;

/// The `NavigateToPose` goal for a fleet pose.
///
/// The fleet's `map` frame (and an empty frame) becomes `map_frame`; any other frame is
/// passed through. The stamp is zero, which Nav2 and tf read as "the latest transform": it
/// is right with and without simulated time, where a wall-clock stamp would not be.
pub fn navigate_to_pose_goal(pose: &Pose, map_frame: &str) -> NavigateToPoseGoal {
    let frame_id = if pose.frame.is_empty() || pose.frame == DEFAULT_FRAME {
        map_frame
    } else {
        pose.frame.as_str()
    };
    NavigateToPoseGoal {
        pose: PoseStamped {
            header: Header {
                stamp: Time::default(),
                frame_id: frame_id.to_owned(),
            },
            pose: ros_from_pose(pose),
        },
        behavior_tree: String::new(),
    }
}

/// A goal as the JSON r2r's untyped action client takes.
pub fn goal_to_json(goal: &NavigateToPoseGoal) -> JsonValue {
    codec::to_value(goal)
}

/// Feedback from r2r's untyped action client.
pub fn feedback_from_json(value: JsonValue) -> Result<NavigateToPoseFeedback, DecodeError> {
    codec::from_value(value)
}

/// A result from r2r's untyped action client; anything unreadable reads as an empty result.
pub fn result_from_json(value: JsonValue) -> NavigateToPoseResult {
    codec::from_value(value).unwrap_or_default()
}

/// How a goal that ended with `status` went, or `None` for a status that is not terminal
/// (unknown, accepted, executing, canceling).
pub fn outcome_from_status(status: i8, result: &NavigateToPoseResult) -> Option<NavOutcome> {
    match status {
        goal_status::SUCCEEDED => Some(NavOutcome::Succeeded),
        goal_status::CANCELED => Some(NavOutcome::Canceled),
        goal_status::ABORTED => {
            let mut reason = "Nav2 aborted the goal".to_owned();
            if !result.error_msg.is_empty() {
                reason = format!("{reason}: {}", result.error_msg);
            }
            if result.error_code != 0 {
                reason = format!("{reason} (error code {})", result.error_code);
            }
            Some(NavOutcome::Failed(reason))
        }
        goal_status::UNKNOWN
        | goal_status::ACCEPTED
        | goal_status::EXECUTING
        | goal_status::CANCELING => None,
        other => Some(NavOutcome::Failed(format!(
            "navigation ended with unknown goal status {other}"
        ))),
    }
}

/// Progress (0-1) of a navigation through waypoints, each sent as one `NavigateToPose` goal.
///
/// Each leg weighs its straight-line length (from the start pose to the first waypoint, then
/// between waypoints). Within a leg, progress is `1 - distance_remaining / initial`, where
/// `initial` is the largest `distance_remaining` Nav2 reported for the leg (Nav2 reports 0
/// until it has a plan; those are skipped). The overall value never goes down and stays in 0-1.
#[derive(Debug, Clone, PartialEq)]
pub struct WaypointProgress {
    weights: Vec<f64>,
    leg: usize,
    leg_initial: Option<f64>,
    leg_fraction: f64,
    progress: f64,
}

/// A leg shorter than this (metres) weighs this much, so that no leg weighs nothing.
const MIN_LEG_WEIGHT: f64 = 0.05;

impl WaypointProgress {
    pub fn new(start: Option<&Pose>, poses: &[Pose]) -> Self {
        let mut weights: Vec<f64> = Vec::with_capacity(poses.len());
        for (i, p) in poses.iter().enumerate() {
            let from = if i == 0 { start } else { poses.get(i - 1) };
            weights.push(from.map_or(f64::NAN, |f| f.distance_to(p).max(MIN_LEG_WEIGHT)));
        }
        // Without a start pose, the first leg weighs as much as an average other leg.
        let known: Vec<f64> = weights.iter().copied().filter(|w| w.is_finite()).collect();
        let fill = if known.is_empty() {
            1.0
        } else {
            known.iter().sum::<f64>() / known.len() as f64
        };
        for w in &mut weights {
            if !w.is_finite() {
                *w = fill;
            }
        }
        Self {
            weights,
            leg: 0,
            leg_initial: None,
            leg_fraction: 0.0,
            progress: 0.0,
        }
    }

    /// Index of the waypoint being driven to.
    pub fn leg(&self) -> usize {
        self.leg
    }

    pub fn legs(&self) -> usize {
        self.weights.len()
    }

    pub fn progress(&self) -> f64 {
        self.progress
    }

    /// Nav2 feedback for the current leg; returns the overall progress.
    pub fn on_distance_remaining(&mut self, distance: f64) -> f64 {
        if !(distance.is_finite() && distance >= 0.0) {
            return self.progress;
        }
        let initial = match self.leg_initial {
            Some(i) if i >= distance => i,
            _ if distance > 0.0 => {
                self.leg_initial = Some(distance);
                distance
            }
            // No plan yet (0 before any positive value).
            _ => return self.progress,
        };
        let fraction = (1.0 - distance / initial).clamp(0.0, 1.0);
        self.leg_fraction = self.leg_fraction.max(fraction);
        self.update()
    }

    /// The current leg reached its waypoint. Returns whether another leg follows.
    pub fn leg_done(&mut self) -> bool {
        self.leg_fraction = 1.0;
        self.update();
        if self.leg + 1 < self.weights.len() {
            self.leg += 1;
            self.leg_initial = None;
            self.leg_fraction = 0.0;
            true
        } else {
            false
        }
    }

    fn update(&mut self) -> f64 {
        let total: f64 = self.weights.iter().sum();
        if total > 0.0 {
            let done: f64 = self.weights[..self.leg].iter().sum::<f64>()
                + self.weights.get(self.leg).copied().unwrap_or(0.0) * self.leg_fraction;
            self.progress = self.progress.max((done / total).clamp(0.0, 1.0));
        }
        self.progress
    }
}
