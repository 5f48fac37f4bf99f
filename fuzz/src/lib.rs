//! Checks shared by the fuzz targets in `fuzz_targets/`.

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The CDR codec of the ros2dds backend and its messages: fms_agent's source files, or with
/// the `agent` feature fms_agent itself (which adds `RosBridge` and the translation functions).
#[cfg(not(feature = "agent"))]
pub mod ros_msgs;
#[cfg(feature = "agent")]
pub use fms_agent::robot::ros_msgs;

fn short_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

/// Decodes `data` as a `T` with `fms_msgs::decode`, as the server and the agents do with a
/// Zenoh payload. When it decodes, the message must survive `encode` → `decode` unchanged and
/// encode to the same bytes again (the codec has one form per value).
pub fn json_round_trip<T>(data: &[u8]) -> Option<T>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let msg: T = fms_msgs::decode(data).ok()?;
    let bytes = fms_msgs::encode(&msg);
    let again: T = fms_msgs::decode(&bytes).unwrap_or_else(|e| {
        panic!(
            "{} {msg:?} encodes as {:?}, which does not decode: {e}",
            short_name::<T>(),
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(
        again,
        msg,
        "{} changes through encode/decode (encoded: {})",
        short_name::<T>(),
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(
        fms_msgs::encode(&again),
        bytes,
        "{} encodes differently after a round trip",
        short_name::<T>()
    );
    Some(msg)
}

/// Decodes `data` as a `T` that the code only reads (no `Serialize`): it must not panic.
pub fn json_decode<T: DeserializeOwned>(data: &[u8]) -> Option<T> {
    fms_msgs::decode(data).ok()
}
