//! `/ws`: live `state_update`, `task_update`, `system_event` and `heartbeat` messages, with
//! `subscribe` / `unsubscribe` by robot id. A new client first gets every robot's state.
//! `/ws?batch_ms=100` sends `{"type":"batch","messages":[…]}` at most every 100 ms instead,
//! keeping only each robot's latest state: what a dashboard of a large fleet wants.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use fms_msgs::codec::encode_text;
use fms_msgs::{decode, unix_ms, RobotId};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

use super::{ApiError, ApiQuery, AppState, ErrorCode};
use crate::hub::{Frame, LiveMessage};

const HEARTBEAT: Duration = Duration::from_secs(1);
/// Accepted `batch_ms` values.
const BATCH_MS: std::ops::RangeInclusive<u64> = 10..=5000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsParams {
    /// Send batches at most this often (ms) instead of one message per frame.
    batch_ms: Option<u64>,
    /// Credentials for browsers, which cannot set headers on a WebSocket (read by the guard).
    #[allow(dead_code)]
    access_token: Option<String>,
}

/// Frames waiting for the next batch: each robot's state is kept once, at the place its
/// first state took; everything else is kept in order.
#[derive(Debug, Default)]
struct Batch {
    items: Vec<Utf8Bytes>,
    state_at: HashMap<RobotId, usize>,
}

impl Batch {
    fn push(&mut self, frame: Frame) {
        match (frame.is_state, frame.robot) {
            (true, Some(robot)) => match self.state_at.get(&robot) {
                Some(&i) => self.items[i] = frame.text,
                None => {
                    self.state_at.insert(robot, self.items.len());
                    self.items.push(frame.text);
                }
            },
            _ => self.items.push(frame.text),
        }
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The batch message, emptying the batch.
    fn take(&mut self) -> String {
        let len: usize = self.items.iter().map(|t| t.len() + 1).sum();
        let mut out = String::with_capacity(len + 40);
        out.push_str(r#"{"type":"batch","messages":["#);
        for (i, item) in self.items.drain(..).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(item.as_str());
        }
        out.push_str("]}");
        self.state_at.clear();
        out
    }
}

/// What a client may send.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ClientMessage {
    /// Only these robots from now on (added to earlier subscriptions); an empty or absent
    /// list means every robot.
    Subscribe {
        #[serde(default)]
        robot_ids: Vec<RobotId>,
    },
    /// Stop receiving these robots.
    Unsubscribe { robot_ids: Vec<RobotId> },
}

/// Which robots a client receives.
#[derive(Debug, Clone, PartialEq)]
enum Filter {
    All { except: HashSet<RobotId> },
    Only(HashSet<RobotId>),
}

impl Filter {
    fn wants(&self, robot: Option<&RobotId>) -> bool {
        match (self, robot) {
            (_, None) => true,
            (Filter::All { except }, Some(r)) => !except.contains(r),
            (Filter::Only(set), Some(r)) => set.contains(r),
        }
    }

    fn apply(&mut self, msg: ClientMessage) {
        match msg {
            ClientMessage::Subscribe { robot_ids } if robot_ids.is_empty() => {
                *self = Filter::All {
                    except: HashSet::new(),
                };
            }
            ClientMessage::Subscribe { robot_ids } => match self {
                Filter::All { except } => robot_ids.iter().for_each(|r| {
                    except.remove(r);
                }),
                Filter::Only(set) => set.extend(robot_ids),
            },
            ClientMessage::Unsubscribe { robot_ids } => match self {
                Filter::All { except } => except.extend(robot_ids),
                Filter::Only(set) => robot_ids.iter().for_each(|r| {
                    set.remove(r);
                }),
            },
        }
    }
}

/// Subscribing to a list while receiving everything narrows to that list.
fn on_client_message(filter: &mut Filter, msg: ClientMessage) {
    if let (Filter::All { except }, ClientMessage::Subscribe { robot_ids }) = (&*filter, &msg) {
        if except.is_empty() && !robot_ids.is_empty() {
            *filter = Filter::Only(HashSet::new());
        }
    }
    filter.apply(msg);
}

#[derive(Serialize)]
struct ErrorFrame<'a> {
    r#type: &'static str,
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: ErrorCode,
    message: &'a str,
}

pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(st): State<AppState>,
    ApiQuery(params): ApiQuery<WsParams>,
) -> Result<Response, ApiError> {
    let batch = match params.batch_ms {
        Some(ms) if BATCH_MS.contains(&ms) => Some(Duration::from_millis(ms)),
        Some(ms) => {
            return Err(ApiError::validation(format!(
                "batch_ms {ms} is outside {}-{}",
                BATCH_MS.start(),
                BATCH_MS.end()
            )))
        }
        None => None,
    };
    Ok(ws
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| client(socket, st, batch)))
}

/// Every robot's current state, as `state_update` frames.
fn snapshot(st: &AppState) -> Vec<Frame> {
    let reg = st.shared.registry();
    reg.robots()
        .filter_map(|e| {
            e.state.as_ref().map(|state| Frame {
                robot: Some(e.id.clone()),
                text: encode_text(&LiveMessage::StateUpdate {
                    robot_id: &e.id,
                    presence: e.presence,
                    state,
                })
                .into(),
                is_state: true,
            })
        })
        .collect()
}

async fn client(socket: WebSocket, st: AppState, batch_every: Option<Duration>) {
    // Subscribe before the snapshot so nothing between the two is missed.
    let mut rx = st.shared.hub.subscribe();
    let (mut sink, mut stream) = socket.split();
    let mut batch = Batch::default();
    for frame in snapshot(&st) {
        if batch_every.is_some() {
            batch.push(frame);
        } else if sink.send(Message::Text(frame.text)).await.is_err() {
            return;
        }
    }
    let mut filter = Filter::All {
        except: HashSet::new(),
    };
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    // In batch mode, a batch leaves at each tick (the first at once, with the snapshot).
    let mut flush = tokio::time::interval(batch_every.unwrap_or(Duration::from_secs(3600)));
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            frame = rx.recv() => match frame {
                Ok(frame) => {
                    if !filter.wants(frame.robot.as_ref()) {
                        continue;
                    }
                    if batch_every.is_some() {
                        batch.push(frame);
                    } else if sink.send(Message::Text(frame.text)).await.is_err() {
                        break;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::debug!("websocket client lagged; skipped {n} frames");
                    if batch_every.is_some() {
                        // States may have been among them: resend every robot's latest.
                        snapshot(&st).into_iter().filter(|f| filter.wants(f.robot.as_ref())).for_each(|f| batch.push(f));
                    }
                }
                Err(RecvError::Closed) => break,
            },
            _ = flush.tick(), if batch_every.is_some() => {
                if !batch.is_empty() && sink.send(Message::Text(batch.take().into())).await.is_err() {
                    break;
                }
            }
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => match decode::<ClientMessage>(text.as_bytes()) {
                    Ok(msg) => on_client_message(&mut filter, msg),
                    Err(e) => {
                        let reply = encode_text(&ErrorFrame {
                            r#type: "error",
                            error: ErrorBody { code: ErrorCode::ValidationError, message: &e.to_string() },
                        });
                        if sink.send(Message::Text(reply.into())).await.is_err() {
                            break;
                        }
                    }
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = heartbeat.tick() => {
                let text = encode_text(&LiveMessage::Heartbeat { stamp_ms: unix_ms() });
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<RobotId> {
        v.iter().map(|s| RobotId::new(*s).unwrap()).collect()
    }

    #[test]
    fn subscribe_narrows_and_unsubscribe_removes() {
        let (a, b) = (RobotId::new("a").unwrap(), RobotId::new("b").unwrap());
        let mut f = Filter::All {
            except: HashSet::new(),
        };
        assert!(f.wants(Some(&a)) && f.wants(Some(&b)) && f.wants(None));
        on_client_message(
            &mut f,
            ClientMessage::Subscribe {
                robot_ids: ids(&["a"]),
            },
        );
        assert!(f.wants(Some(&a)) && !f.wants(Some(&b)) && f.wants(None));
        on_client_message(
            &mut f,
            ClientMessage::Subscribe {
                robot_ids: ids(&["b"]),
            },
        );
        assert!(f.wants(Some(&b)));
        on_client_message(
            &mut f,
            ClientMessage::Unsubscribe {
                robot_ids: ids(&["a"]),
            },
        );
        assert!(!f.wants(Some(&a)) && f.wants(Some(&b)));
        on_client_message(&mut f, ClientMessage::Subscribe { robot_ids: vec![] });
        assert!(f.wants(Some(&a)));
        on_client_message(
            &mut f,
            ClientMessage::Unsubscribe {
                robot_ids: ids(&["b"]),
            },
        );
        assert!(f.wants(Some(&a)) && !f.wants(Some(&b)));
    }

    fn frame(robot: Option<&str>, text: &str, is_state: bool) -> Frame {
        Frame {
            robot: robot.map(|r| RobotId::new(r).unwrap()),
            text: text.to_owned().into(),
            is_state,
        }
    }

    #[test]
    fn batches_keep_the_latest_state_per_robot_and_every_other_message() {
        let mut b = Batch::default();
        assert!(b.is_empty());
        b.push(frame(Some("a"), r#"{"s":"a1"}"#, true));
        b.push(frame(Some("b"), r#"{"s":"b1"}"#, true));
        b.push(frame(Some("a"), r#"{"t":"task"}"#, false));
        b.push(frame(Some("a"), r#"{"s":"a2"}"#, true));
        b.push(frame(None, r#"{"e":1}"#, false));
        let text = b.take();
        assert_eq!(
            text,
            r#"{"type":"batch","messages":[{"s":"a2"},{"s":"b1"},{"t":"task"},{"e":1}]}"#
        );
        let parsed: fms_msgs::codec::JsonValue = decode(text.as_bytes()).unwrap();
        assert_eq!(parsed["messages"].as_array().unwrap().len(), 4);
        assert!(b.is_empty());
        b.push(frame(Some("a"), r#"{"s":"a3"}"#, true));
        assert_eq!(b.take(), r#"{"type":"batch","messages":[{"s":"a3"}]}"#);
    }

    #[test]
    fn client_messages_are_validated() {
        assert!(
            decode::<ClientMessage>(br#"{"type":"subscribe","robot_ids":["fms/**"]}"#).is_err()
        );
        assert!(decode::<ClientMessage>(br#"{"type":"dance"}"#).is_err());
        assert!(decode::<ClientMessage>(br#"{"type":"subscribe"}"#).is_ok());
    }
}
