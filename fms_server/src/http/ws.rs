//! `/ws`: live `state_update`, `task_update`, `system_event` and `heartbeat` messages, with
//! `subscribe` / `unsubscribe` by robot id. A new client first gets every robot's state.

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use fms_msgs::codec::encode_text;
use fms_msgs::{decode, unix_ms, RobotId};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

use super::{AppState, ErrorCode};
use crate::hub::{Frame, LiveMessage};

const HEARTBEAT: Duration = Duration::from_secs(1);

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

pub async fn upgrade(ws: WebSocketUpgrade, State(st): State<AppState>) -> Response {
    ws.max_message_size(64 * 1024)
        .on_upgrade(move |socket| client(socket, st))
}

async fn client(socket: WebSocket, st: AppState) {
    // Subscribe before the snapshot so nothing between the two is missed.
    let mut rx = st.shared.hub.subscribe();
    let (mut sink, mut stream) = socket.split();
    let snapshot: Vec<String> = {
        let reg = st.shared.registry();
        reg.robots()
            .filter_map(|e| {
                e.state.as_ref().map(|state| {
                    encode_text(&LiveMessage::StateUpdate {
                        robot_id: &e.id,
                        presence: e.presence,
                        state,
                    })
                })
            })
            .collect()
    };
    for text in snapshot {
        if sink.send(Message::Text(text.into())).await.is_err() {
            return;
        }
    }
    let mut filter = Filter::All {
        except: HashSet::new(),
    };
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            frame = rx.recv() => match frame {
                Ok(Frame { robot, text }) => {
                    if filter.wants(robot.as_ref()) && sink.send(Message::Text(text)).await.is_err() {
                        break;
                    }
                }
                Err(RecvError::Lagged(n)) => tracing::debug!("websocket client lagged; skipped {n} frames"),
                Err(RecvError::Closed) => break,
            },
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

    #[test]
    fn client_messages_are_validated() {
        assert!(
            decode::<ClientMessage>(br#"{"type":"subscribe","robot_ids":["fms/**"]}"#).is_err()
        );
        assert!(decode::<ClientMessage>(br#"{"type":"dance"}"#).is_err());
        assert!(decode::<ClientMessage>(br#"{"type":"subscribe"}"#).is_ok());
    }
}
