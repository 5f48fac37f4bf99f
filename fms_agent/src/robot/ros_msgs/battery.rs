//! Battery: the unit of `BatteryState.percentage` ([`BatteryScale`]), the charge, voltage and
//! charging read from a `BatteryState`, and [`BatteryTracker`], the battery as last reported.

use serde::Deserialize;

use super::messages::BatteryState;

/// What unit a robot's `BatteryState.percentage` is in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BatteryScale {
    /// 0-1, as `sensor_msgs/BatteryState` defines it; values above 1 are read as 1 (full).
    #[default]
    Fraction,
    /// 0-100, for drivers that publish percent against the definition.
    Percent,
}

impl std::str::FromStr for BatteryScale {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fraction" => Ok(Self::Fraction),
            "percent" => Ok(Self::Percent),
            other => Err(format!("expected fraction or percent, got {other:?}")),
        }
    }
}

/// Battery charge in percent (0-100) from a `BatteryState`, or `None` when the message does
/// not say: `percentage` when it is a number ≥ 0 (scaled by `scale`, clamped to 100), else
/// `charge / capacity` when both are known.
pub fn battery_percentage(msg: &BatteryState, scale: BatteryScale) -> Option<f64> {
    let p = msg.percentage as f64;
    if p.is_finite() && p >= 0.0 {
        let percent = match scale {
            BatteryScale::Fraction => p.min(1.0) * 100.0,
            BatteryScale::Percent => p.min(100.0),
        };
        return Some(percent);
    }
    let (charge, capacity) = (msg.charge as f64, msg.capacity as f64);
    (charge.is_finite() && capacity.is_finite() && charge >= 0.0 && capacity > 0.0)
        .then(|| (charge / capacity).min(1.0) * 100.0)
}

/// Pack voltage, when the message gives a positive number.
pub fn battery_voltage(msg: &BatteryState) -> Option<f64> {
    let v = msg.voltage as f64;
    (v.is_finite() && v > 0.0).then_some(v)
}

/// Whether the robot is charging: `power_supply_status` is CHARGING. FULL (on a charger but
/// not charging) counts as not charging, so a full robot stays available for tasks.
pub fn battery_charging(msg: &BatteryState) -> bool {
    msg.power_supply_status == BatteryState::POWER_SUPPLY_STATUS_CHARGING
}

/// The battery as last reported.
///
/// An unknown percentage (NaN and no charge/capacity) keeps the last known value. Until a
/// first known value arrives, or when the robot publishes no battery state at all (most
/// simulators), `unknown_percentage` is reported (100 by default, so that a robot without a
/// battery topic still gets tasks; see docs/ros2.md).
#[derive(Debug, Clone)]
pub struct BatteryTracker {
    scale: BatteryScale,
    unknown_percentage: f64,
    percentage: Option<f64>,
    voltage: Option<f64>,
    charging: bool,
}

impl BatteryTracker {
    pub fn new(scale: BatteryScale, unknown_percentage: f64) -> Self {
        Self {
            scale,
            unknown_percentage,
            percentage: None,
            voltage: None,
            charging: false,
        }
    }

    pub fn on_battery(&mut self, msg: &BatteryState) {
        if let Some(p) = battery_percentage(msg, self.scale) {
            self.percentage = Some(p);
        }
        self.voltage = battery_voltage(msg);
        self.charging = battery_charging(msg);
    }

    /// Whether a percentage has been received.
    pub fn is_known(&self) -> bool {
        self.percentage.is_some()
    }

    pub fn percentage(&self) -> f64 {
        self.percentage.unwrap_or(self.unknown_percentage)
    }

    pub fn voltage(&self) -> Option<f64> {
        self.voltage
    }

    pub fn charging(&self) -> bool {
        self.charging
    }
}
