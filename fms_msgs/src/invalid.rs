//! Why a decoded message was refused: the checks a decoder cannot make (finite numbers,
//! ranges, lengths, known words).

use crate::robot_to_server::MAX_EVENT_TEXT;

/// A message that decodes but does not make sense.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidMessage {
    #[error("pose has a non-finite coordinate")]
    NonFinitePose,
    #[error("velocity is not finite")]
    NonFiniteVelocity,
    #[error("battery.percentage {0} is outside 0-100")]
    BatteryPercentage(f64),
    #[error("task.progress {0} is outside 0-1")]
    TaskProgress(f64),
    #[error("teleop_operator is too long")]
    OperatorTooLong,
    #[error("epoch, seq and stamp_ms must be below 2^63")]
    CounterTooLarge,
    #[error("event text must be at most {MAX_EVENT_TEXT} bytes without control characters")]
    EventText,
    #[error("progress {0} is outside 0-1")]
    EventProgress(f64),
    #[error("legacy pose has a non-finite value")]
    LegacyNonFinitePose,
    #[error("legacy battery percentage {0} is outside 0-100")]
    LegacyBatteryPercentage(f64),
    #[error("unknown legacy status {0:?}")]
    UnknownLegacyStatus(String),
}
