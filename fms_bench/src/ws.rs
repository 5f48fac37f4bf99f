//! Dashboard-like WebSocket clients of `/ws`: count frames and bytes, and (for the parsing
//! clients) find every `state_update` to measure end-to-end latency and sequence gaps.
//!
//! Parsing is a scan for the fields the server writes in a fixed order (`robot_id`, then
//! the state's `seq` and `stamp_ms`), not a full JSON parse: a hundred dashboards of a
//! 1,000-robot fleet are a million states a second, which a full parse in this process
//! would spend a core on, taking it from the server being measured.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use memchr::memmem::Finder;
use tokio_tungstenite::tungstenite::Message;

use crate::fleet::robot_index;
use crate::stats::SentTimes;

const STATE_UPDATE: &[u8] = br#"{"type":"state_update","robot_id":""#;
const TASK_UPDATE: &[u8] = br#"{"type":"task_update","task":{"id":""#;

/// One `state_update` found in a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct StateSeen<'a> {
    pub robot_id: &'a str,
    pub seq: u64,
    pub stamp_ms: u64,
}

fn number_after(text: &[u8], from: usize, field: &[u8]) -> Option<(u64, usize)> {
    let at = from + memchr::memmem::find(&text[from..], field)? + field.len();
    let digits = text[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    let s = std::str::from_utf8(&text[at..at + digits]).ok()?;
    Some((s.parse().ok()?, at + digits))
}

/// Calls `f` for every `state_update` in `text` (one message or a batch).
pub fn scan_states<'a>(text: &'a str, mut f: impl FnMut(StateSeen<'a>)) {
    let bytes = text.as_bytes();
    let finder = Finder::new(STATE_UPDATE);
    let mut pos = 0;
    while let Some(i) = finder.find(&bytes[pos..]) {
        let id_start = pos + i + STATE_UPDATE.len();
        let Some(id_len) = memchr::memchr(b'"', &bytes[id_start..]) else {
            return;
        };
        let robot_id = &text[id_start..id_start + id_len];
        let Some((seq, after)) = number_after(bytes, id_start + id_len, br#""seq":"#) else {
            return;
        };
        let Some((stamp_ms, after)) = number_after(bytes, after, br#""stamp_ms":"#) else {
            return;
        };
        f(StateSeen {
            robot_id,
            seq,
            stamp_ms,
        });
        pos = after;
    }
}

/// Calls `f(task_id, status)` for every `task_update` in `text`.
pub fn scan_tasks<'a>(text: &'a str, mut f: impl FnMut(&'a str, &'a str)) {
    let bytes = text.as_bytes();
    let finder = Finder::new(TASK_UPDATE);
    let mut pos = 0;
    while let Some(i) = finder.find(&bytes[pos..]) {
        let id_start = pos + i + TASK_UPDATE.len();
        let Some(id_len) = memchr::memchr(b'"', &bytes[id_start..]) else {
            return;
        };
        let after_id = id_start + id_len;
        const STATUS: &[u8] = br#""status":""#;
        let Some(s) = memchr::memmem::find(&bytes[after_id..], STATUS) else {
            return;
        };
        let st_start = after_id + s + STATUS.len();
        let Some(st_len) = memchr::memchr(b'"', &bytes[st_start..]) else {
            return;
        };
        f(
            &text[id_start..after_id],
            &text[st_start..st_start + st_len],
        );
        pos = st_start + st_len;
    }
}

/// What one client saw during the measurement window.
#[derive(Debug, Default)]
pub struct ClientStats {
    pub frames: u64,
    pub bytes: u64,
    pub states: u64,
    /// States that never arrived (seq gaps per robot); in batch mode these are coalesced.
    pub gaps: u64,
    /// States that arrived after a newer one of the same robot.
    pub reordered: u64,
    /// End-to-end latencies, microseconds.
    pub latency_us: Vec<u32>,
    /// Latencies taken from `stamp_ms` (ms resolution) because the send time was gone.
    pub coarse: u64,
    /// First time each task was seen ACTIVE.
    pub task_active: HashMap<String, Instant>,
    pub error: Option<String>,
}

pub struct ClientParams {
    pub url: String,
    /// Scan frames for states (latency, gaps); otherwise only count frames and bytes.
    pub parse: bool,
    /// Subscribe to these robots only (empty: all).
    pub watch: Vec<String>,
    pub robots: usize,
}

/// Connects and reads until `stop`; counts only while `measuring`.
pub async fn client(
    p: ClientParams,
    sent: Arc<SentTimes>,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    connected: tokio::sync::mpsc::Sender<()>,
) -> ClientStats {
    let mut stats = ClientStats::default();
    let (mut ws, _) = match tokio_tungstenite::connect_async(p.url.as_str()).await {
        Ok(c) => c,
        Err(e) => {
            stats.error = Some(format!("connect {}: {e}", p.url));
            let _ = connected.send(()).await;
            return stats;
        }
    };
    if !p.watch.is_empty() {
        let msg = serde_json::json!({"type": "subscribe", "robot_ids": p.watch}).to_string();
        if let Err(e) = ws.send(Message::Text(msg.into())).await {
            stats.error = Some(format!("subscribe: {e}"));
        }
    }
    let _ = connected.send(()).await;
    let mut last_seq = vec![0u64; p.robots];
    let mut check_stop = tokio::time::interval(Duration::from_millis(100));
    loop {
        let msg = tokio::select! {
            m = ws.next() => m,
            _ = check_stop.tick() => {
                if stop.load(Ordering::Relaxed) { break; }
                continue;
            }
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(_))) | None => break,
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                stats.error = Some(e.to_string());
                break;
            }
        };
        let on = measuring.load(Ordering::Relaxed);
        if on {
            stats.frames += 1;
            stats.bytes += text.len() as u64;
        }
        if !p.parse {
            continue;
        }
        let now_us = sent.now_us();
        let now_ms = fms_msgs::unix_ms();
        scan_states(text.as_str(), |s| {
            let Some(i) = robot_index(s.robot_id).filter(|&i| i < p.robots) else {
                return;
            };
            let last = last_seq[i];
            if s.seq > last {
                last_seq[i] = s.seq;
            }
            if !on {
                return;
            }
            stats.states += 1;
            if last > 0 && s.seq > last + 1 {
                stats.gaps += s.seq - last - 1;
            } else if last > 0 && s.seq <= last {
                stats.reordered += 1;
            }
            let us = match sent.age_us(i, s.seq, now_us) {
                Some(us) => us,
                None => {
                    stats.coarse += 1;
                    now_ms.saturating_sub(s.stamp_ms) * 1000
                }
            };
            stats.latency_us.push(us.min(u64::from(u32::MAX)) as u32);
        });
        if on && text.as_str().contains("task_update") {
            let at = Instant::now();
            scan_tasks(text.as_str(), |id, status| {
                if status == "ACTIVE" {
                    stats.task_active.entry(id.to_owned()).or_insert(at);
                }
            });
        }
    }
    let _ = ws.close(None).await;
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_single_and_batched_states() {
        let one = r#"{"type":"state_update","robot_id":"bench-00007","presence":"ONLINE","state":{"protocol":1,"seq":42,"stamp_ms":1700000000123,"pose":{"x":1.0,"y":2.0,"yaw":0.0,"frame":"map"}}}"#;
        let mut seen = Vec::new();
        scan_states(one, |s| seen.push(s));
        assert_eq!(
            seen,
            vec![StateSeen {
                robot_id: "bench-00007",
                seq: 42,
                stamp_ms: 1700000000123
            }]
        );
        let batch = format!(
            r#"{{"type":"batch","messages":[{one},{{"type":"heartbeat","stamp_ms":5}},{}]}}"#,
            one.replace("00007", "00008").replace("42", "43")
        );
        let mut seen = Vec::new();
        scan_states(&batch, |s| seen.push((s.robot_id, s.seq)));
        assert_eq!(seen, vec![("bench-00007", 42), ("bench-00008", 43)]);
    }

    #[test]
    fn scans_task_updates() {
        let t = r#"{"type":"task_update","task":{"id":"abc","robot_id":null,"goal":{"poses":[]},"status":"ACTIVE","progress":0.0}}"#;
        let mut seen = Vec::new();
        scan_tasks(t, |id, st| seen.push((id, st)));
        assert_eq!(seen, vec![("abc", "ACTIVE")]);
    }
}

#[cfg(test)]
mod server_format {
    use fms_msgs::codec::encode_text;
    use fms_msgs::{Battery, Pose, RobotMode, RobotState, Velocity};
    use fms_server::fleet::registry::Presence;
    use fms_server::hub::LiveMessage;

    /// The scanner reads what the server really writes.
    #[test]
    fn scans_the_servers_state_update() {
        let id = crate::fleet::robot_id(3);
        let state = RobotState {
            protocol: 1,
            seq: 9,
            stamp_ms: 1234,
            pose: Pose::new(1.0, 2.0, 0.5),
            velocity: Velocity::default(),
            battery: Battery {
                percentage: 50.0,
                voltage: None,
                charging: false,
            },
            mode: RobotMode::Idle,
            task: None,
            teleop_operator: None,
        };
        let text = encode_text(&LiveMessage::StateUpdate {
            robot_id: &id,
            presence: Presence::Online,
            state: &state,
        });
        let mut seen = Vec::new();
        super::scan_states(&text, |s| {
            seen.push((s.robot_id.to_owned(), s.seq, s.stamp_ms))
        });
        assert_eq!(seen, vec![("bench-00003".to_owned(), 9, 1234)], "{text}");
    }
}
