//! Validated identifiers (`RobotId`, `TaskId`) that are safe to place inside a Zenoh key expression.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// Longest id we accept, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// Why an id was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("id is empty")]
    Empty,
    #[error("id is {0} bytes long; the limit is {MAX_ID_LEN}")]
    TooLong(usize),
    #[error("id contains {0:?}, which is not allowed (no '/', '*', '$', '?', '#', whitespace or control characters)")]
    ForbiddenChar(char),
}

/// Checks one id. Anything that could widen or split a key expression is refused:
/// `/` adds a chunk, `*`/`**` are wildcards, `$*` is a sub-chunk wildcard, `?` and `#`
/// start selector parameters and fragments, and whitespace/control characters are never
/// what an operator meant.
fn validate(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong(s.len()));
    }
    if let Some(c) = s
        .chars()
        .find(|c| matches!(c, '/' | '*' | '$' | '?' | '#') || c.is_whitespace() || c.is_control())
    {
        return Err(IdError::ForbiddenChar(c));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps `s`.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                validate(&s)?;
                Ok(Self(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .min_length(Some(1))
                    .max_length(Some(MAX_ID_LEN))
                    .pattern(Some(r"^[^/*$?#\s]+$"))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// A robot's id, e.g. `tb3_1`. Appears as one chunk of `fms/robot/{id}/...`.
    RobotId
);
id_type!(
    /// A task's id. The server mints UUIDs; clients may not choose ids with key-expression syntax.
    TaskId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_ids() {
        for ok in [
            "tb3_1",
            "robot-dev-001",
            "AMR.7",
            "a",
            &"x".repeat(64),
            "ünïcode",
        ] {
            assert!(RobotId::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_ids_that_widen_keys() {
        assert_eq!(RobotId::new(""), Err(IdError::Empty));
        assert_eq!(RobotId::new("x".repeat(65)), Err(IdError::TooLong(65)));
        for (bad, c) in [
            ("a/b", '/'),
            ("*", '*'),
            ("**", '*'),
            ("r$*", '$'),
            ("r?x=1", '?'),
            ("r#f", '#'),
            ("r 1", ' '),
            ("r\t", '\t'),
            ("r\n", '\n'),
            ("r\u{0}", '\u{0}'),
        ] {
            assert_eq!(RobotId::new(bad), Err(IdError::ForbiddenChar(c)), "{bad:?}");
        }
    }

    #[test]
    fn deserialize_validates() {
        let ok: RobotId = serde_json::from_str("\"tb3_1\"").unwrap();
        assert_eq!(ok.as_str(), "tb3_1");
        assert!(serde_json::from_str::<RobotId>("\"fms/**\"").is_err());
        assert!(serde_json::from_str::<TaskId>("\"\"").is_err());
    }
}
