//! `/ws`: live `state_update`, `task_update`, `system_event` and `heartbeat` messages, with
//! `subscribe` / `unsubscribe` by robot id. A new client first gets every robot's state.
//! `/ws?batch_ms=100` sends `{"type":"batch","messages":[…]}` at most every 100 ms instead,
//! keeping only each robot's latest state: what a dashboard of a large fleet wants.

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use fms_msgs::codec::encode_text;
use fms_msgs::{decode, unix_ms, RobotId};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, mpsc};

use super::{ApiError, ApiQuery, AppState, ErrorCode};
use crate::hub::{Batch, Frame, LiveMessage};

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
    /// Every robot, none excepted.
    fn is_all(&self) -> bool {
        matches!(self, Filter::All { except } if except.is_empty())
    }

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

/// Every wanted robot's current state, as `state_update` frames.
fn snapshot(st: &AppState, filter: &Filter) -> Vec<Frame> {
    let reg = st.shared.registry();
    reg.robots()
        .filter(|e| filter.wants(Some(&e.id)))
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

/// Most frames written before one flush in per-message mode.
const MAX_COALESCE: usize = 256;

type Sink = SplitSink<WebSocket, Message>;

/// Where a client's live messages come from.
enum Feed {
    /// One frame per message (`/ws`), filtered here.
    Each(broadcast::Receiver<Frame>),
    /// Batches built for this client alone (a `batch_ms` client with a filter).
    Own {
        rx: broadcast::Receiver<Frame>,
        batch: Batch,
    },
    /// Batches shared by every unfiltered client of the same interval, serialized once.
    Shared(broadcast::Receiver<Utf8Bytes>),
}

enum Next {
    Frame(Frame),
    Batch(Utf8Bytes),
    Lagged(u64),
    Closed,
}

impl Feed {
    /// A batching client shares the batcher while it wants every robot.
    fn batching(st: &AppState, every: Duration, filter: &Filter) -> Feed {
        if filter.is_all() {
            Feed::Shared(st.shared.hub.shared_batches(every))
        } else {
            Feed::Own {
                rx: st.shared.hub.subscribe(),
                batch: Batch::default(),
            }
        }
    }

    async fn next(&mut self) -> Next {
        let rx = match self {
            Feed::Each(rx) | Feed::Own { rx, .. } => rx,
            Feed::Shared(rx) => {
                return match rx.recv().await {
                    Ok(text) => Next::Batch(text),
                    Err(RecvError::Lagged(n)) => Next::Lagged(n),
                    Err(RecvError::Closed) => Next::Closed,
                }
            }
        };
        match rx.recv().await {
            Ok(frame) => Next::Frame(frame),
            Err(RecvError::Lagged(n)) => Next::Lagged(n),
            Err(RecvError::Closed) => Next::Closed,
        }
    }
}

/// Sends `first` and the frames already queued behind it (up to [`MAX_COALESCE`]) with one
/// flush: a burst costs one write, not one per message. Nothing waits for more frames.
async fn send_queued(
    sink: &mut Sink,
    rx: &mut broadcast::Receiver<Frame>,
    first: Frame,
    filter: &Filter,
) -> Result<(), axum::Error> {
    let mut pending = 0;
    let mut next = Some(first);
    while let Some(frame) = next.take() {
        if filter.wants(frame.robot.as_ref()) {
            sink.feed(Message::Text(frame.text)).await?;
            pending += 1;
        }
        if pending >= MAX_COALESCE {
            break;
        }
        next = loop {
            match rx.try_recv() {
                Ok(f) => break Some(f),
                Err(TryRecvError::Lagged(n)) => {
                    tracing::debug!("websocket client lagged; skipped {n} frames");
                }
                Err(TryRecvError::Empty | TryRecvError::Closed) => break None,
            }
        };
    }
    if pending > 0 {
        sink.flush().await?;
    }
    Ok(())
}

/// Sends frames as one batch message (nothing if there are none).
async fn send_batch(sink: &mut Sink, frames: Vec<Frame>) -> Result<(), axum::Error> {
    let mut batch = Batch::default();
    frames.into_iter().for_each(|f| batch.push(f));
    if batch.is_empty() {
        return Ok(());
    }
    sink.send(Message::Text(batch.take().into())).await
}

/// What the client sent.
enum Incoming {
    Message(ClientMessage),
    Invalid(String),
}

/// Reads the client's messages in a task of their own, so that sending live messages never
/// polls the socket's read side (which costs a buffer reset per poll).
async fn read_client(mut stream: SplitStream<WebSocket>, tx: mpsc::Sender<Incoming>) {
    while let Some(Ok(msg)) = stream.next().await {
        let incoming = match msg {
            Message::Text(text) => match decode::<ClientMessage>(text.as_bytes()) {
                Ok(m) => Incoming::Message(m),
                Err(e) => Incoming::Invalid(e.to_string()),
            },
            Message::Close(_) => break,
            _ => continue,
        };
        if tx.send(incoming).await.is_err() {
            break;
        }
    }
}

async fn client(socket: WebSocket, st: AppState, batch_every: Option<Duration>) {
    let _counted = st.shared.hub.client();
    let mut filter = Filter::All {
        except: HashSet::new(),
    };
    // Subscribe before the snapshot so nothing between the two is missed.
    let mut feed = match batch_every {
        Some(every) => Feed::batching(&st, every, &filter),
        None => Feed::Each(st.shared.hub.subscribe()),
    };
    let (mut sink, stream) = socket.split();
    let (in_tx, mut incoming) = mpsc::channel(16);
    let reader = tokio::spawn(read_client(stream, in_tx));
    let snap = snapshot(&st, &filter);
    let sent = if batch_every.is_some() {
        send_batch(&mut sink, snap).await
    } else {
        let mut ok = Ok(());
        for frame in snap {
            ok = sink.feed(Message::Text(frame.text)).await;
            if ok.is_err() {
                break;
            }
        }
        match ok {
            Ok(()) => sink.flush().await,
            e => e,
        }
    };
    if sent.is_ok() {
        serve(
            &st,
            &mut sink,
            &mut feed,
            &mut filter,
            &mut incoming,
            batch_every,
        )
        .await;
    }
    reader.abort();
}

/// The client's loop: live messages out, subscriptions in, heartbeats.
async fn serve(
    st: &AppState,
    sink: &mut Sink,
    feed: &mut Feed,
    filter: &mut Filter,
    incoming: &mut mpsc::Receiver<Incoming>,
    batch_every: Option<Duration>,
) {
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    // A client batching on its own flushes at each tick.
    let mut flush = tokio::time::interval(batch_every.unwrap_or(Duration::from_secs(3600)));
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            next = feed.next() => match next {
                Next::Frame(frame) => match feed {
                    Feed::Each(rx) => {
                        if send_queued(sink, rx, frame, filter).await.is_err() {
                            return;
                        }
                    }
                    Feed::Own { batch, .. } => {
                        if filter.wants(frame.robot.as_ref()) {
                            batch.push(frame);
                        }
                    }
                    Feed::Shared(_) => {}
                },
                Next::Batch(text) => {
                    if sink.send(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
                Next::Lagged(n) => {
                    tracing::debug!("websocket client lagged; skipped {n} frames");
                    // Batching: states may have been among them: resend every robot's latest.
                    match feed {
                        Feed::Each(_) => {}
                        Feed::Own { batch, .. } => {
                            snapshot(st, filter).into_iter().for_each(|f| batch.push(f));
                        }
                        Feed::Shared(_) => {
                            if send_batch(sink, snapshot(st, filter)).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                Next::Closed => return,
            },
            _ = flush.tick(), if matches!(feed, Feed::Own { .. }) => {
                if let Feed::Own { batch, .. } = feed {
                    if !batch.is_empty() && sink.send(Message::Text(batch.take().into())).await.is_err() {
                        return;
                    }
                }
            }
            msg = incoming.recv() => match msg {
                Some(Incoming::Message(msg)) => {
                    on_client_message(filter, msg);
                    let Some(every) = batch_every else { continue };
                    if matches!(feed, Feed::Shared(_)) != filter.is_all() {
                        // Switch between the shared batches and our own; resync from a
                        // snapshot so nothing falls in between.
                        *feed = Feed::batching(st, every, filter);
                        let snap = snapshot(st, filter);
                        match feed {
                            Feed::Own { batch, .. } => snap.into_iter().for_each(|f| batch.push(f)),
                            _ => {
                                if send_batch(sink, snap).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                }
                Some(Incoming::Invalid(e)) => {
                    let reply = encode_text(&ErrorFrame {
                        r#type: "error",
                        error: ErrorBody { code: ErrorCode::ValidationError, message: &e },
                    });
                    if sink.send(Message::Text(reply.into())).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
            _ = heartbeat.tick() => {
                let text = encode_text(&LiveMessage::Heartbeat { stamp_ms: unix_ms() });
                if sink.send(Message::Text(text.into())).await.is_err() {
                    return;
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
