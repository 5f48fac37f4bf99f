//! ROS 2 names: resolution (namespace, `~`, `--ros-args -r` remaps) as rcl does it, and the
//! Zenoh key a name gets behind zenoh-plugin-ros2dds. Pure functions, so the DDS backend finds
//! the very topics the r2r backend would.

/// Why a name or namespace is not a valid ROS 2 name.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid ROS name {name:?}: {reason}")]
pub struct NameError {
    pub name: String,
    pub reason: &'static str,
}

fn err(name: &str, reason: &'static str) -> NameError {
    NameError {
        name: name.to_owned(),
        reason,
    }
}

/// Checks the `/`-separated tokens of an absolute name (after its leading `/`): each is
/// non-empty, of `[A-Za-z0-9_]`, and does not start with a digit. This also keeps names
/// free of the characters that widen a Zenoh key expression (`* $ ? #`).
fn check_tokens(full: &str, original: &str) -> Result<(), NameError> {
    let rest = full.strip_prefix('/').unwrap_or(full);
    if rest.is_empty() {
        return Ok(());
    }
    for token in rest.split('/') {
        if token.is_empty() {
            return Err(err(original, "empty token (`//` or a trailing `/`)"));
        }
        if !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(err(
                original,
                "only letters, digits, `_` and `/` are allowed",
            ));
        }
        if token.as_bytes()[0].is_ascii_digit() {
            return Err(err(original, "a token must not start with a digit"));
        }
    }
    Ok(())
}

/// A namespace in its absolute form: `""`, `"/"` → `"/"`; `"tb3_1"`, `"/tb3_1/"` → `"/tb3_1"`.
pub fn namespace(ns: &str) -> Result<String, NameError> {
    let trimmed = ns.trim_end_matches('/');
    let full = if trimmed.is_empty() {
        "/".to_owned()
    } else if trimmed.starts_with('/') {
        trimmed.to_owned()
    } else {
        format!("/{trimmed}")
    };
    check_tokens(&full, ns)?;
    Ok(full)
}

/// The fully qualified form of `name` for a node `node` in namespace `ns`: absolute names are
/// kept, `~` is the node's private namespace, anything else is relative to `ns`.
pub fn resolve(name: &str, ns: &str, node: &str) -> Result<String, NameError> {
    let ns = namespace(ns)?;
    let join = |base: &str, rel: &str| {
        if base == "/" {
            format!("/{rel}")
        } else {
            format!("{base}/{rel}")
        }
    };
    let full = if name.is_empty() {
        return Err(err(name, "empty name"));
    } else if name.starts_with('/') {
        name.to_owned()
    } else if name == "~" {
        join(&ns, node)
    } else if let Some(rel) = name.strip_prefix("~/") {
        join(&join(&ns, node), rel)
    } else {
        join(&ns, name)
    };
    if full.len() > 1 && full.ends_with('/') {
        return Err(err(name, "a name must not end with `/`"));
    }
    check_tokens(&full, name)?;
    Ok(full)
}

/// `name` resolved, then remapped by the first matching `--ros-args -r from:=to` rule. A rule
/// `node:from:=to` applies only to the node named `node`.
pub fn resolve_remapped(
    name: &str,
    ns: &str,
    node: &str,
    remaps: &[(String, String)],
) -> Result<String, NameError> {
    let full = resolve(name, ns, node)?;
    for (from, to) in remaps {
        let from = match from.split_once(':') {
            Some((only, from)) if only == node => from,
            Some(_) => continue,
            None => from.as_str(),
        };
        if resolve(from, ns, node).is_ok_and(|f| f == full) {
            return resolve(to, ns, node);
        }
    }
    Ok(full)
}

/// The Zenoh key zenoh-plugin-ros2dds routes the fully qualified ROS name `full` on, when
/// the plugin runs with `namespace = bridge_ns` (`"/"` unless the bridge was started with
/// `-n`): the name without its leading `/`, under the bridge namespace.
pub fn zenoh_key(full: &str, bridge_ns: &str) -> String {
    let name = full.trim_start_matches('/');
    let ns = bridge_ns.trim_matches('/');
    if ns.is_empty() {
        name.to_owned()
    } else {
        format!("{ns}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_as_rcl_does() {
        assert_eq!(resolve("odom", "", "fms_agent").unwrap(), "/odom");
        assert_eq!(resolve("odom", "/", "fms_agent").unwrap(), "/odom");
        assert_eq!(resolve("odom", "/tb3_1", "n").unwrap(), "/tb3_1/odom");
        assert_eq!(resolve("odom", "tb3_1/", "n").unwrap(), "/tb3_1/odom");
        assert_eq!(resolve("/odom", "/tb3_1", "n").unwrap(), "/odom");
        assert_eq!(resolve("~", "/tb3_1", "n").unwrap(), "/tb3_1/n");
        assert_eq!(resolve("~/cmd", "/a/b", "n").unwrap(), "/a/b/n/cmd");
        assert_eq!(
            resolve("navigate_to_pose", "/fleet/tb3_1", "n").unwrap(),
            "/fleet/tb3_1/navigate_to_pose"
        );
    }

    #[test]
    fn bad_names_are_refused() {
        for (name, ns) in [
            ("", "/"),
            ("odom/", "/"),
            ("a//b", "/"),
            ("odo*m", "/"),
            ("odom", "/tb*"),
            ("$odom", "/"),
            ("od#om", "/"),
            ("od?om", "/"),
            ("1odom", "/"),
            ("odom", "/1tb"),
            ("{node}/x", "/"),
            ("od om", "/"),
        ] {
            assert!(resolve(name, ns, "n").is_err(), "{name:?} in {ns:?}");
        }
    }

    #[test]
    fn remaps_apply_to_the_resolved_name() {
        let remaps = vec![
            ("odom".to_owned(), "/odometry/filtered".to_owned()),
            ("other_node:cmd_vel".to_owned(), "/nope".to_owned()),
            ("fms_agent:cmd_vel".to_owned(), "cmd_vel_safe".to_owned()),
            (
                "/tb3_1/battery_state".to_owned(),
                "/power/battery".to_owned(),
            ),
        ];
        let r = |name: &str| resolve_remapped(name, "/tb3_1", "fms_agent", &remaps).unwrap();
        assert_eq!(r("odom"), "/odometry/filtered");
        assert_eq!(r("cmd_vel"), "/tb3_1/cmd_vel_safe");
        assert_eq!(r("battery_state"), "/power/battery");
        assert_eq!(r("amcl_pose"), "/tb3_1/amcl_pose");
    }

    #[test]
    fn keys_follow_the_plugin() {
        assert_eq!(zenoh_key("/odom", "/"), "odom");
        assert_eq!(zenoh_key("/tb3_1/odom", "/"), "tb3_1/odom");
        assert_eq!(zenoh_key("/odom", "/bot1"), "bot1/odom");
        assert_eq!(
            zenoh_key("/navigate_to_pose", "bot1/"),
            "bot1/navigate_to_pose"
        );
    }
}
