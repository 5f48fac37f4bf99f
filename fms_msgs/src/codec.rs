//! The one place that names the serialization format: `encode` / `decode` (JSON today).

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A free-form JSON value (task parameters, metadata).
pub type JsonValue = serde_json::Value;
/// A free-form JSON object.
pub type JsonMap = serde_json::Map<String, JsonValue>;

/// A payload that is not a valid message of the expected type.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode payload: {0}")]
pub struct DecodeError(#[from] serde_json::Error);

/// Serializes a message.
///
/// Our message types have string map keys only and no fallible `Serialize` impls,
/// so serialization cannot fail for them.
pub fn encode<T: Serialize + ?Sized>(msg: &T) -> Vec<u8> {
    serde_json::to_vec(msg).expect("fms message types always serialize")
}

/// Serializes a message onto the end of `buf` (to build larger texts without copies).
pub fn encode_into<T: Serialize + ?Sized>(buf: &mut Vec<u8>, msg: &T) {
    serde_json::to_writer(buf, msg).expect("fms message types always serialize")
}

/// Serializes a message as text (WebSocket frames, logs).
pub fn encode_text<T: Serialize + ?Sized>(msg: &T) -> String {
    serde_json::to_string(msg).expect("fms message types always serialize")
}

/// Parses a message of type `T`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    Ok(serde_json::from_slice(bytes)?)
}

/// A message as a [`JsonValue`], for APIs that take one (e.g. r2r's untyped action client).
///
/// Like [`encode`], this cannot fail for types whose maps have string keys.
pub fn to_value<T: Serialize + ?Sized>(msg: &T) -> JsonValue {
    serde_json::to_value(msg).expect("fms message types always serialize")
}

/// A message of type `T` from a [`JsonValue`] (e.g. feedback from r2r's untyped action client).
pub fn from_value<T: DeserializeOwned>(value: JsonValue) -> Result<T, DecodeError> {
    Ok(serde_json::from_value(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Pose;

    #[test]
    fn json_values_round_trip() {
        let pose = Pose::new(1.5, -2.0, 0.25);
        let value = to_value(&pose);
        assert_eq!(value["x"], JsonValue::from(1.5));
        assert_eq!(from_value::<Pose>(value).unwrap(), pose);
        assert!(from_value::<Pose>(JsonValue::from("nope")).is_err());
    }
}

#[cfg(test)]
mod float_tests {
    use super::*;

    /// Found by the `command_msgs` fuzz target: a long decimal must parse to the nearest
    /// f64, so that decode → encode → decode is exact.
    #[test]
    fn numbers_round_trip_exactly() {
        let cmd: crate::TeleopCommand =
            decode(br#"{"linear":0.218446773709551615,"angular":5}"#).unwrap();
        let again: crate::TeleopCommand = decode(&encode(&cmd)).unwrap();
        assert_eq!(cmd.linear.to_bits(), again.linear.to_bits());
    }
}
