//! Geometry: quaternion/yaw and pose/twist conversions between the ROS mirrors and fms values,
//! and [`PoseTracker`], which picks the pose to report from odometry and localization.

use std::collections::VecDeque;

use fms_msgs::common::DEFAULT_FRAME;
use fms_msgs::{Pose, Velocity};

use super::messages::{
    Odometry, Point, PoseWithCovarianceStamped, Quaternion, RosPose, Time, Twist, Vector3,
};
use crate::robot::sim::wrap_angle;

/// Yaw (rotation about z, radians in -π..π) of a quaternion. Not-normalized quaternions give
/// the same yaw as their normalized form.
pub fn yaw_from_quaternion(q: &Quaternion) -> f64 {
    let siny = 2.0 * (q.w * q.z + q.x * q.y);
    let cosy = q.w * q.w + q.x * q.x - q.y * q.y - q.z * q.z;
    siny.atan2(cosy)
}

/// The quaternion of a pure rotation by `yaw` about z.
pub fn quaternion_from_yaw(yaw: f64) -> Quaternion {
    let half = yaw / 2.0;
    Quaternion {
        x: 0.0,
        y: 0.0,
        z: half.sin(),
        w: half.cos(),
    }
}

/// A planar pose in `frame` from a ROS pose (height, roll and pitch dropped).
pub fn pose_from_ros(p: &RosPose, frame: &str) -> Pose {
    Pose {
        x: p.position.x,
        y: p.position.y,
        yaw: yaw_from_quaternion(&p.orientation),
        frame: frame.to_owned(),
    }
}

/// A ROS pose from a planar one.
pub fn ros_from_pose(p: &Pose) -> RosPose {
    RosPose {
        position: Point {
            x: p.x,
            y: p.y,
            z: 0.0,
        },
        orientation: quaternion_from_yaw(p.yaw),
    }
}

/// Body velocity from a twist: forward speed and turn rate.
pub fn velocity_from_twist(t: &Twist) -> Velocity {
    Velocity {
        linear: t.linear.x,
        angular: t.angular.z,
    }
}

/// A twist for a body velocity.
pub fn twist_from_velocity(v: Velocity) -> Twist {
    Twist {
        linear: Vector3 {
            x: v.linear,
            ..Vector3::default()
        },
        angular: Vector3 {
            z: v.angular,
            ..Vector3::default()
        },
    }
}

/// `a ⊕ b`: pose `b` (relative to `a`) expressed in `a`'s frame.
fn compose(a: &Pose, b: &Pose) -> Pose {
    let (s, c) = a.yaw.sin_cos();
    Pose {
        x: a.x + c * b.x - s * b.y,
        y: a.y + s * b.x + c * b.y,
        yaw: wrap_angle(a.yaw + b.yaw),
        frame: a.frame.clone(),
    }
}

/// `a⁻¹`, so that `a ⊕ a⁻¹` is the identity.
fn invert(a: &Pose) -> Pose {
    let (s, c) = a.yaw.sin_cos();
    Pose {
        x: -c * a.x - s * a.y,
        y: s * a.x - c * a.y,
        yaw: wrap_angle(-a.yaw),
        frame: a.frame.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Pose selection: odometry and localization.
// ---------------------------------------------------------------------------------------------

/// Odometry poses kept to match AMCL stamps (several seconds at odometry rates).
const ODOM_HISTORY: usize = 256;

/// Chooses the pose to report from odometry and localization (AMCL).
///
/// - Without localization (`use_localization = false`) the odometry pose is reported, in the
///   odometry frame (`header.frame_id`, "odom" if empty).
/// - With localization, AMCL gives the map pose. AMCL publishes only after the robot moved
///   some distance, so between its messages the pose is carried forward with odometry:
///   `map ← odom` is taken from the AMCL pose and the odometry pose nearest its stamp, and
///   applied to the latest odometry. The result is in the fleet's `map` frame.
/// - With localization but before the first AMCL pose, the odometry pose is reported, tagged
///   with its odometry frame so that no one mistakes it for a map pose.
#[derive(Debug, Clone)]
pub struct PoseTracker {
    use_localization: bool,
    /// Odometry poses with their stamps (seconds), oldest first.
    odom: VecDeque<(f64, Pose)>,
    /// The last AMCL pose, in the fleet's map frame.
    amcl: Option<Pose>,
    map_from_odom: Option<Pose>,
}

impl PoseTracker {
    pub fn new(use_localization: bool) -> Self {
        Self {
            use_localization,
            odom: VecDeque::new(),
            amcl: None,
            map_from_odom: None,
        }
    }

    /// A `nav_msgs/Odometry`. Non-finite poses are ignored.
    pub fn on_odom(&mut self, msg: &Odometry) {
        let frame = if msg.header.frame_id.is_empty() {
            "odom"
        } else {
            msg.header.frame_id.trim_start_matches('/')
        };
        let pose = pose_from_ros(&msg.pose.pose, frame);
        if !pose.is_finite() {
            return;
        }
        if self.odom.len() == ODOM_HISTORY {
            self.odom.pop_front();
        }
        self.odom.push_back((msg.header.stamp.as_secs_f64(), pose));
        if self.map_from_odom.is_none() {
            // A localization pose that arrived before any odometry anchors it now.
            if let (Some(amcl), Some((_, odom))) = (&self.amcl, self.odom.back()) {
                self.map_from_odom = Some(compose(amcl, &invert(odom)));
            }
        }
    }

    /// A `geometry_msgs/PoseWithCovarianceStamped` from localization. Non-finite poses are
    /// ignored, as are all when localization is off.
    pub fn on_amcl(&mut self, msg: &PoseWithCovarianceStamped) {
        if !self.use_localization {
            return;
        }
        let pose = pose_from_ros(&msg.pose.pose, DEFAULT_FRAME);
        if !pose.is_finite() {
            return;
        }
        self.map_from_odom = self
            .odom_near(&msg.header.stamp)
            .map(|odom| compose(&pose, &invert(odom)));
        self.amcl = Some(pose);
    }

    /// The odometry pose whose stamp is nearest `stamp`; the latest one for a zero stamp.
    fn odom_near(&self, stamp: &Time) -> Option<&Pose> {
        if stamp.is_zero() {
            return self.odom.back().map(|(_, p)| p);
        }
        let t = stamp.as_secs_f64();
        self.odom
            .iter()
            .min_by(|a, b| (a.0 - t).abs().total_cmp(&(b.0 - t).abs()))
            .map(|(_, p)| p)
    }

    /// The pose to report, if any source has spoken yet.
    pub fn pose(&self) -> Option<Pose> {
        let odom = self.odom.back().map(|(_, p)| p);
        if self.use_localization {
            match (&self.map_from_odom, odom, &self.amcl) {
                (Some(correction), Some(odom), _) => {
                    let mut p = compose(correction, odom);
                    p.frame = DEFAULT_FRAME.to_owned();
                    return Some(p);
                }
                (_, _, Some(amcl)) => return Some(amcl.clone()),
                _ => {}
            }
        }
        odom.cloned()
    }
}
