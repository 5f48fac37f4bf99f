//! Validated identifiers (`RobotId`, `TaskId`) that are safe to place inside a Zenoh key expression.

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
pub(crate) fn validate(s: &str) -> Result<(), IdError> {
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

/// Reads an id's text without an intermediate `String` when the input can lend it.
struct IdVisitor;

impl<'de> serde::de::Visitor<'de> for IdVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an id string")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Shared, immutable text: cloning is a reference-count increment, not an allocation
        /// (ids are cloned on every state message and for every live client).
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates and wraps `s`.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                validate(&s)?;
                Ok(Self(Arc::from(s)))
            }

            /// Validates and copies a borrowed id (one allocation).
            pub fn from_ref(s: &str) -> Result<Self, IdError> {
                validate(s)?;
                Ok(Self(Arc::from(s)))
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
                Self::from_ref(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        // Looking an id up by `&str` in a map keyed by ids: the hash and equality are the
        // text's, as `Borrow` requires.
        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(IdVisitor)
                    .and_then(|s| Self::from_ref(&s).map_err(serde::de::Error::custom))
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
    fn clones_share_and_lookups_borrow() {
        let a = RobotId::new("tb3_1").unwrap();
        let b = a.clone();
        assert!(std::ptr::eq(a.as_str(), b.as_str()));
        let map: std::collections::HashMap<RobotId, u32> = [(a, 7)].into();
        assert_eq!(map.get("tb3_1"), Some(&7));
        assert_eq!(RobotId::from_ref("a/b"), Err(IdError::ForbiddenChar('/')));
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"tb3_1\"");
        // Escaped input arrives as an owned string: still accepted.
        let esc: RobotId = serde_json::from_str("\"tb3\\u005f1\"").unwrap();
        assert_eq!(esc, b);
        let v: RobotId = serde_json::from_value(serde_json::json!("tb3_1")).unwrap();
        assert_eq!(v, b);
    }

    #[test]
    fn deserialize_validates() {
        let ok: RobotId = serde_json::from_str("\"tb3_1\"").unwrap();
        assert_eq!(ok.as_str(), "tb3_1");
        assert!(serde_json::from_str::<RobotId>("\"fms/**\"").is_err());
        assert!(serde_json::from_str::<TaskId>("\"\"").is_err());
    }
}
