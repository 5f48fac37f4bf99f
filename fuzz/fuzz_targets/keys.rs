//! Zenoh key expressions (`keys::parse_robot_key`, run on the key of every sample the server
//! receives) and robot ids (`RobotId::new`, also behind every id that is deserialized).
#![no_main]

use fms_msgs::keys::{parse_robot_key, robot_key, RobotTopic};
use fms_msgs::{RobotId, TaskId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // An id in a JSON payload is validated like one given to `new`.
    if let Ok(id) = fms_msgs::decode::<RobotId>(data) {
        assert_eq!(RobotId::new(id.as_str()).as_ref(), Ok(&id));
    }
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    // A key that parses is exactly the key built from its parts.
    if let Ok((id, topic)) = parse_robot_key(s) {
        assert_eq!(robot_key(&id, topic), s);
    }
    let id = RobotId::new(s);
    assert_eq!(
        fms_msgs::decode::<RobotId>(&fms_msgs::encode(s)).ok(),
        id.clone().ok()
    );
    assert_eq!(TaskId::new(s).is_ok(), id.is_ok());
    if let Ok(id) = id {
        // A valid id is one chunk without wildcards, so its keys name that robot only.
        assert!(!s.contains(['/', '*', '$', '?', '#']), "{s:?}");
        for topic in RobotTopic::ALL {
            let key = robot_key(&id, topic);
            assert_eq!(parse_robot_key(&key), Ok((id.clone(), topic)), "{key:?}");
        }
    }
});
