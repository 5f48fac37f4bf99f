//! Keeps `docs/protocol.md` honest: every ```` ```json fms:Type ```` example decodes as `Type`,
//! re-encodes to the same JSON, passes validation, and the doc covers every message type,
//! every event kind, every key and the current protocol version.

use fms_msgs::codec::JsonValue;
use fms_msgs::keys::{robot_key, RobotTopic, SYSTEM_EVENT};
use fms_msgs::legacy::{
    LegacyBattery, LegacyCancelCommand, LegacyPose, LegacyStatus, LegacyTaskCommand,
};
use fms_msgs::{
    decode, encode, CancelCommand, EstopCommand, EventKind, RobotEvent, RobotId, RobotState,
    SystemEvent, TaskCommand, TaskId, TeleopCommand, PROTOCOL_VERSION,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

const DOC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md"));

/// Every type an example may name, i.e. every message on the wire.
const TYPES: [&str; 12] = [
    "RobotState",
    "RobotEvent",
    "TaskCommand",
    "CancelCommand",
    "EstopCommand",
    "TeleopCommand",
    "SystemEvent",
    "LegacyPose",
    "LegacyBattery",
    "LegacyStatus",
    "LegacyTaskCommand",
    "LegacyCancelCommand",
];

const INFO_PREFIX: &str = "json fms:";

/// One ```` ```json fms:Type ```` block.
struct Example {
    /// 1-based line of the opening fence.
    line: usize,
    ty: String,
    body: String,
}

/// Extracts the tagged examples of `doc`. Panics on an unterminated fence, on an info string
/// that mentions `fms:` in any other form, and on a type name not in `TYPES`.
fn examples(doc: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut open: Option<(usize, String, String)> = None;
    for (i, line) in doc.lines().enumerate() {
        let line_no = i + 1;
        match &mut open {
            None => {
                if let Some(info) = line.strip_prefix("```") {
                    open = Some((line_no, info.trim().to_owned(), String::new()));
                }
            }
            Some((start, info, body)) => {
                if line.trim() == "```" {
                    if info.contains("fms:") {
                        let ty = info.strip_prefix(INFO_PREFIX).unwrap_or_else(|| {
                            panic!(
                                "line {start}: info string {info:?} must be exactly `{INFO_PREFIX}Type`"
                            )
                        });
                        assert!(
                            TYPES.contains(&ty),
                            "line {start}: unknown message type {ty:?} (known: {TYPES:?})"
                        );
                        out.push(Example {
                            line: *start,
                            ty: ty.to_owned(),
                            body: std::mem::take(body),
                        });
                    }
                    open = None;
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    if let Some((start, info, _)) = open {
        panic!("line {start}: code block {info:?} is never closed");
    }
    out
}

fn json(ex: &Example) -> JsonValue {
    decode(ex.body.as_bytes())
        .unwrap_or_else(|e| panic!("line {}: example is not valid JSON: {e}", ex.line))
}

/// Decodes the example as `T` (for Deserialize-only types).
fn decode_as<T: DeserializeOwned>(ex: &Example) -> T {
    decode(ex.body.as_bytes())
        .unwrap_or_else(|e| panic!("line {}: not a valid {}: {e}", ex.line, ex.ty))
}

/// Decodes the example as `T`, re-encodes it and checks the code sends exactly the example.
fn round_trip<T: Serialize + DeserializeOwned>(ex: &Example) -> T {
    let msg: T = decode_as(ex);
    let sent: JsonValue = decode(&encode(&msg)).expect("encode produces JSON");
    assert_eq!(
        sent,
        json(ex),
        "line {}: the code encodes this {} differently from the example",
        ex.line,
        ex.ty
    );
    msg
}

fn check(ex: &Example) {
    let line = ex.line;
    match ex.ty.as_str() {
        "RobotState" => {
            let s: RobotState = round_trip(ex);
            if let Err(e) = s.validate() {
                panic!("line {line}: RobotState fails validation: {e}");
            }
        }
        "RobotEvent" => {
            round_trip::<RobotEvent>(ex);
        }
        "TaskCommand" => {
            round_trip::<TaskCommand>(ex);
        }
        "CancelCommand" => {
            round_trip::<CancelCommand>(ex);
        }
        "EstopCommand" => {
            round_trip::<EstopCommand>(ex);
        }
        "TeleopCommand" => {
            round_trip::<TeleopCommand>(ex);
        }
        "SystemEvent" => {
            round_trip::<SystemEvent>(ex);
        }
        "LegacyPose" => {
            let p: LegacyPose = decode_as(ex);
            if let Err(e) = p.to_pose() {
                panic!("line {line}: LegacyPose does not convert: {e}");
            }
        }
        "LegacyBattery" => {
            let b: LegacyBattery = decode_as(ex);
            if let Err(e) = b.validate() {
                panic!("line {line}: LegacyBattery fails validation: {e}");
            }
        }
        "LegacyStatus" => {
            let s: LegacyStatus = decode_as(ex);
            if let Err(e) = s.to_mode() {
                panic!("line {line}: LegacyStatus does not convert: {e}");
            }
        }
        "LegacyTaskCommand" => {
            round_trip::<LegacyTaskCommand>(ex);
        }
        "LegacyCancelCommand" => {
            round_trip::<LegacyCancelCommand>(ex);
        }
        other => panic!("line {line}: unknown message type {other:?}"),
    }
}

/// One value of every `EventKind` variant.
fn every_event_kind() -> Vec<EventKind> {
    let t = TaskId::new("t").unwrap();
    let all = vec![
        EventKind::TaskAccepted { task_id: t.clone() },
        EventKind::TaskRejected {
            task_id: t.clone(),
            reason: String::new(),
        },
        EventKind::TaskStarted { task_id: t.clone() },
        EventKind::TaskProgress {
            task_id: t.clone(),
            progress: 0.5,
        },
        EventKind::TaskCompleted { task_id: t.clone() },
        EventKind::TaskFailed {
            task_id: t.clone(),
            reason: String::new(),
        },
        EventKind::TaskCanceled { task_id: t },
        EventKind::Error {
            code: String::new(),
            message: String::new(),
        },
        EventKind::EstopEngaged { reason: None },
        EventKind::EstopReleased,
    ];
    // A new variant breaks this match: add it to the list above and document it.
    for k in &all {
        match k {
            EventKind::TaskAccepted { .. }
            | EventKind::TaskRejected { .. }
            | EventKind::TaskStarted { .. }
            | EventKind::TaskProgress { .. }
            | EventKind::TaskCompleted { .. }
            | EventKind::TaskFailed { .. }
            | EventKind::TaskCanceled { .. }
            | EventKind::Error { .. }
            | EventKind::EstopEngaged { .. }
            | EventKind::EstopReleased => {}
        }
    }
    all
}

/// The `"type"` tag an event kind is sent with.
fn tag(value: &JsonValue) -> Option<&str> {
    value.get("type").and_then(JsonValue::as_str)
}

#[test]
fn every_example_matches_the_code() {
    let all = examples(DOC);
    assert!(!all.is_empty(), "docs/protocol.md has no tagged examples");
    for ex in &all {
        check(ex);
    }
}

#[test]
fn every_message_type_has_an_example() {
    let all = examples(DOC);
    for ty in TYPES {
        assert!(
            all.iter().any(|ex| ex.ty == ty),
            "docs/protocol.md has no `{INFO_PREFIX}{ty}` example"
        );
    }
}

#[test]
fn every_event_kind_has_an_example() {
    let documented: Vec<String> = examples(DOC)
        .iter()
        .filter(|ex| ex.ty == "RobotEvent")
        .filter_map(|ex| tag(&json(ex)["event"]).map(str::to_owned))
        .collect();
    for kind in every_event_kind() {
        let value: JsonValue = decode(&encode(&kind)).unwrap();
        let t = tag(&value).expect("EventKind is tagged by \"type\"");
        assert!(
            documented.iter().any(|d| d == t),
            "no RobotEvent example with \"type\": {t:?}"
        );
    }
}

#[test]
fn task_command_examples_show_both_goal_shapes() {
    let goals: Vec<JsonValue> = examples(DOC)
        .iter()
        .filter(|ex| ex.ty == "TaskCommand")
        .map(|ex| json(ex)["goal"].clone())
        .collect();
    for shape in ["pose", "waypoints"] {
        assert!(
            goals.iter().any(|g| g.get(shape).is_some()),
            "no TaskCommand example with a {shape:?} goal"
        );
    }
}

#[test]
fn doc_states_the_protocol_version() {
    let line = format!("Protocol version: {PROTOCOL_VERSION}");
    assert!(
        DOC.lines().any(|l| l.trim() == line),
        "docs/protocol.md lacks the line {line:?}"
    );
}

#[test]
fn doc_lists_every_key() {
    // `{id}` is itself a valid id, so it serves as the placeholder the doc uses.
    let id = RobotId::new("{id}").expect("{id} is a valid robot id");
    for topic in RobotTopic::ALL {
        let key = robot_key(&id, topic);
        assert!(DOC.contains(&key), "docs/protocol.md never mentions {key}");
    }
    assert!(
        DOC.contains(SYSTEM_EVENT),
        "docs/protocol.md never mentions {SYSTEM_EVENT}"
    );
}

#[test]
#[should_panic(expected = "unknown message type")]
fn unknown_type_names_fail() {
    examples("```json fms:RobotStatus\n{}\n```\n");
}

#[test]
#[should_panic(expected = "must be exactly")]
fn malformed_info_strings_fail() {
    examples("```json  fms:RobotState\n{}\n```\n");
}
