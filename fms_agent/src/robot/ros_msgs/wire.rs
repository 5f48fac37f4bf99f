//! CDR, the bytes ROS 2 messages travel as over DDS: a 4-byte encapsulation header and the
//! body (XCDR1, little or big endian), read into and written from the mirrors in `messages.rs`.
//!
//! This is what rmw_cyclonedds and rmw_fastrtps put on the wire and what zenoh-plugin-ros2dds
//! routes unchanged between DDS and Zenoh. The codec is `cdr-encoding` (rustdds' serde CDR,
//! which reads from a slice and checks every length against what is left); this module adds
//! the encapsulation header and the checks that make bad input an error.

use byteorder::{BigEndian, LittleEndian};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::messages::{GetResultResponse, NavigateToPoseResult};

/// Longest payload accepted; larger ones (or sequence lengths that claim more) are errors.
pub const MAX_MESSAGE_BYTES: u64 = 1 << 20;

/// Encapsulation ids (first two bytes, big endian) of plain XCDR1.
const CDR_BE: [u8; 2] = [0x00, 0x00];
const CDR_LE: [u8; 2] = [0x00, 0x01];

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WireError {
    #[error("CDR payload of {0} bytes is shorter than its 4-byte header")]
    Short(usize),
    #[error("CDR payload of {0} bytes is over the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("unsupported CDR encapsulation {0:02x}{1:02x} (only plain CDR, 0000 or 0001)")]
    Encapsulation(u8, u8),
    #[error("malformed {type_name} ({len} bytes): {reason}")]
    Malformed {
        type_name: &'static str,
        len: usize,
        reason: String,
    },
    #[error("cannot encode {type_name}: {reason}")]
    Encode {
        type_name: &'static str,
        reason: String,
    },
}

fn short_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

/// `msg` as little-endian CDR with its encapsulation header, as ROS 2 publishes it.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, WireError> {
    let mut out = vec![CDR_LE[0], CDR_LE[1], 0, 0];
    cdr_encoding::to_writer::<_, LittleEndian, _>(&mut out, msg).map_err(|e| {
        WireError::Encode {
            type_name: short_name::<T>(),
            reason: e.to_string(),
        }
    })?;
    if out.len() as u64 > MAX_MESSAGE_BYTES {
        return Err(WireError::TooLarge(out.len()));
    }
    Ok(out)
}

/// Reads a `T` from CDR (either byte order). Bytes after the message (DDS pads samples to
/// four bytes) are ignored.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    check_header(bytes)?;
    let body = &bytes[4..];
    let decoded = if bytes[1] == CDR_LE[1] {
        cdr_encoding::from_bytes::<T, LittleEndian>(body)
    } else {
        cdr_encoding::from_bytes::<T, BigEndian>(body)
    };
    decoded
        .map(|(msg, _consumed)| msg)
        .map_err(|e| WireError::Malformed {
            type_name: short_name::<T>(),
            len: bytes.len(),
            reason: e.to_string(),
        })
}

fn check_header(bytes: &[u8]) -> Result<(), WireError> {
    if bytes.len() < 4 {
        return Err(WireError::Short(bytes.len()));
    }
    if bytes.len() as u64 > MAX_MESSAGE_BYTES {
        return Err(WireError::TooLarge(bytes.len()));
    }
    let id = [bytes[0], bytes[1]];
    if id != CDR_BE && id != CDR_LE {
        return Err(WireError::Encapsulation(id[0], id[1]));
    }
    Ok(())
}

/// A `NavigateToPose` get_result response from any distribution: Jazzy's result has
/// `error_code` and `error_msg`, Iron's only `error_code`, Humble's is `std_msgs/Empty`. The
/// status is what matters; the result reads as empty when it is not Jazzy's.
pub fn decode_get_result(bytes: &[u8]) -> Result<GetResultResponse, WireError> {
    if let Ok(r) = decode::<GetResultResponse>(bytes) {
        return Ok(r);
    }
    if let Ok((status, error_code)) = decode::<(i8, u16)>(bytes) {
        return Ok(GetResultResponse {
            status,
            result: NavigateToPoseResult {
                error_code,
                error_msg: String::new(),
            },
        });
    }
    let (status,) = decode::<(i8,)>(bytes).map_err(|e| match e {
        WireError::Malformed { len, reason, .. } => WireError::Malformed {
            type_name: "GetResultResponse",
            len,
            reason,
        },
        other => other,
    })?;
    Ok(GetResultResponse {
        status,
        result: NavigateToPoseResult::default(),
    })
}

#[cfg(test)]
mod tests;
