//! fms wire protocol: ids, Zenoh key expressions, message types and the codec.
//!
//! `docs/protocol.md` documents every message; a test decodes its examples.

pub mod codec;
pub mod common;
pub mod ids;
pub mod invalid;
pub mod keys;
pub mod legacy;
pub mod robot_to_server;
pub mod server_to_robot;
pub mod system;

pub use codec::{decode, encode, DecodeError};
pub use common::{Battery, Pose, Priority, RobotMode, Velocity};
pub use ids::{IdError, RobotId, TaskId};
pub use invalid::InvalidMessage;
pub use robot_to_server::{EventKind, RobotEvent, RobotState, TaskProgress};
pub use server_to_robot::{
    CancelCommand, EstopCommand, Goal, TaskCommand, TeleopCommand, MAX_OPERATOR_LEN,
    TELEOP_LEASE_MS,
};
pub use system::{SystemEvent, SystemEventKind};

/// Version of the protocol in `docs/protocol.md`. Bump on incompatible changes.
pub const PROTOCOL_VERSION: u32 = 1;

/// Wall-clock Unix time in milliseconds. Adapters call this; domain logic takes `now` as input.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
