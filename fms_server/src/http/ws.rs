//! `/ws`: live `state_update`, `task_update`, `system_event` and `heartbeat` messages, with
//! `subscribe` / `unsubscribe` by robot id. A new client first gets every robot's state.
//! `/ws?batch_ms=100` sends `{"type":"batch","messages":[…]}` at most every 100 ms instead,
//! keeping only each robot's latest state: what a dashboard of a large fleet wants.
//! A client's messages wait in a queue bounded in bytes: one that falls further behind, or
//! whose socket takes nothing for 15 s, is closed with 1008 (a slow consumer); at shutdown
//! every client is closed with 1001.

use std::collections::{HashSet, VecDeque};
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ws::{close_code, CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use fms_msgs::codec::encode_text;
use fms_msgs::{decode, unix_ms, RobotId};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{Sink as _, SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, mpsc, watch};

use super::{ApiError, ApiQuery, AppState, ErrorCode};
use crate::hub::{Frame, FrameBatch, LiveMessage};

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

/// Most frames taken from the feed at once (then written with one flush).
const MAX_COALESCE: usize = 256;
/// Bytes of live messages one client may have waiting beyond what its socket has taken
/// (`FMS_WS_QUEUE_BYTES` overrides it): a client further behind is dropped as a slow
/// consumer, with close code 1008.
pub const DEFAULT_QUEUE_BYTES: usize = 4 * 1024 * 1024;
/// A client whose socket takes nothing for this long while messages wait is dropped too.
const SEND_STALL: Duration = Duration::from_secs(15);
/// How long a close frame may take to be written before the connection is dropped anyway.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

type Sink = SplitSink<WebSocket, Message>;

/// Where a client's live messages come from.
enum Feed {
    /// One frame per message (`/ws`), filtered here.
    Each(broadcast::Receiver<Frame>),
    /// Batches built for this client alone (a `batch_ms` client with a filter).
    Own {
        rx: broadcast::Receiver<Frame>,
        batch: FrameBatch,
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
                batch: FrameBatch::default(),
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

/// Why a client's loop ended.
#[derive(Debug, Clone, PartialEq)]
enum End {
    /// The client left, or its socket failed.
    Gone,
    /// The client does not keep up (why): closed with 1008.
    Slow(String),
    /// The server is shutting down: closed with 1001.
    Shutdown,
}

/// A client's messages waiting for its socket, bounded in bytes. The loop only queues
/// here; writing goes on beside it, so a socket that takes nothing never blocks the loop
/// and the bound is checked at every message.
#[derive(Debug)]
struct Outbox {
    queue: VecDeque<Utf8Bytes>,
    bytes: usize,
    limit: usize,
    /// Messages handed to the socket since its last flush.
    unflushed: bool,
    /// Since when the socket has taken nothing (`None`: it takes what it is given).
    blocked_since: Option<Instant>,
}

impl Outbox {
    fn new(limit: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            bytes: 0,
            limit,
            unflushed: false,
            blocked_since: None,
        }
    }

    /// Queues a message; past the bound the client is a slow consumer. A message alone in
    /// the queue is always taken, however large (a batch of a large fleet).
    fn push(&mut self, text: Utf8Bytes) -> Result<(), End> {
        if !self.queue.is_empty() && self.bytes + text.len() > self.limit {
            return Err(End::Slow(format!(
                "slow consumer: more than {} bytes waiting",
                self.limit
            )));
        }
        self.push_unbounded(text);
        Ok(())
    }

    /// Queues a message whatever the bound (the first snapshot, which the fleet bounds).
    fn push_unbounded(&mut self, text: Utf8Bytes) {
        self.bytes += text.len();
        self.queue.push_back(text);
    }

    /// Queues frames as one batch message (nothing if there are none).
    fn push_batch(&mut self, frames: Vec<Frame>) -> Result<(), End> {
        let mut batch = FrameBatch::default();
        frames.into_iter().for_each(|f| batch.push(f));
        match batch.is_empty() {
            true => Ok(()),
            false => self.push(batch.take().into()),
        }
    }

    fn has_work(&self) -> bool {
        !self.queue.is_empty() || self.unflushed
    }

    /// A slow consumer when the socket has taken nothing for [`SEND_STALL`].
    fn check_stall(&self, now: Instant) -> Result<(), End> {
        match self.blocked_since {
            Some(t) if now.saturating_duration_since(t) >= SEND_STALL => Err(End::Slow(format!(
                "slow consumer: nothing read for {} s",
                SEND_STALL.as_secs()
            ))),
            _ => Ok(()),
        }
    }

    fn clear(&mut self) {
        self.queue.clear();
        self.bytes = 0;
    }

    /// Hands the queued messages to the socket and flushes them: ready once all are written.
    fn poll_write(
        &mut self,
        sink: &mut Sink,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), axum::Error>> {
        let mut sink = Pin::new(sink);
        while !self.queue.is_empty() {
            match sink.as_mut().poll_ready(cx) {
                Poll::Ready(Ok(())) => self.blocked_since = None,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return self.blocked(),
            }
            let text = self.queue.pop_front().expect("the queue is not empty");
            self.bytes -= text.len();
            if let Err(e) = sink.as_mut().start_send(Message::Text(text)) {
                return Poll::Ready(Err(e));
            }
            self.unflushed = true;
        }
        if self.unflushed {
            match sink.as_mut().poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return self.blocked(),
            }
        }
        self.blocked_since = None;
        Poll::Ready(Ok(()))
    }

    fn blocked<T>(&mut self) -> Poll<T> {
        self.blocked_since.get_or_insert_with(Instant::now);
        Poll::Pending
    }
}

/// Writes everything queued, as long as the socket keeps taking it.
async fn drain(out: &mut Outbox, sink: &mut Sink) -> Result<(), End> {
    let mut check = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            written = poll_fn(|cx| out.poll_write(sink, cx)) => {
                return written.map_err(|_| End::Gone);
            }
            _ = check.tick() => out.check_stall(Instant::now())?,
        }
    }
}

/// Queues `first` and the frames already waiting behind it (up to [`MAX_COALESCE`]), so a
/// burst is written with one flush. Nothing waits for more frames.
fn queue_burst(
    out: &mut Outbox,
    rx: &mut broadcast::Receiver<Frame>,
    first: Frame,
    filter: &Filter,
) -> Result<(), End> {
    let mut taken = 0;
    let mut next = Some(first);
    while let Some(frame) = next.take() {
        if filter.wants(frame.robot.as_ref()) {
            out.push(frame.text)?;
        }
        taken += 1;
        if taken >= MAX_COALESCE {
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
    Ok(())
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
    let closing = st.shared.hub.closing();
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
    let mut out = Outbox::new(st.http.ws_queue_bytes.unwrap_or(DEFAULT_QUEUE_BYTES));
    let snap = snapshot(&st, &filter);
    if batch_every.is_some() {
        let mut batch = FrameBatch::default();
        snap.into_iter().for_each(|f| batch.push(f));
        if !batch.is_empty() {
            out.push_unbounded(batch.take().into());
        }
    } else {
        snap.into_iter().for_each(|f| out.push_unbounded(f.text));
    }
    let end = match drain(&mut out, &mut sink).await {
        Ok(()) => {
            let mut client = Client {
                st: &st,
                sink: &mut sink,
                out: &mut out,
                feed: &mut feed,
                filter: &mut filter,
                batch_every,
            };
            client.serve(&mut incoming, closing).await
        }
        Err(end) => end,
    };
    match end {
        End::Gone => {}
        End::Slow(reason) => {
            st.shared.metrics.ws_slow_consumer_dropped();
            tracing::warn!(
                queued_bytes = out.bytes,
                "websocket client dropped: {reason}"
            );
            close(&mut sink, &mut out, close_code::POLICY, reason).await;
        }
        End::Shutdown => {
            close(
                &mut sink,
                &mut out,
                close_code::AWAY,
                "server shutting down".into(),
            )
            .await;
        }
    }
    reader.abort();
}

/// Sends a close frame instead of what is still queued, giving up after [`CLOSE_GRACE`]
/// (a client that reads nothing cannot take it): the connection is dropped either way.
async fn close(sink: &mut Sink, out: &mut Outbox, code: u16, reason: String) {
    out.clear();
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(Message::Close(Some(frame)))).await;
}

/// One client's loop state.
struct Client<'a> {
    st: &'a AppState,
    sink: &'a mut Sink,
    out: &'a mut Outbox,
    feed: &'a mut Feed,
    filter: &'a mut Filter,
    batch_every: Option<Duration>,
}

impl Client<'_> {
    /// Live messages out, subscriptions in, heartbeats, until the client goes, falls too
    /// far behind, or the server shuts down.
    async fn serve(
        &mut self,
        incoming: &mut mpsc::Receiver<Incoming>,
        mut closing: watch::Receiver<bool>,
    ) -> End {
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        // A client batching on its own flushes at each tick.
        let mut flush =
            tokio::time::interval(self.batch_every.unwrap_or(Duration::from_secs(3600)));
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Polled in place all along: no registration per message.
        let shutdown = async move {
            let _ = closing.wait_for(|c| *c).await;
        };
        tokio::pin!(shutdown);
        loop {
            let (writing, own) = (self.out.has_work(), matches!(self.feed, Feed::Own { .. }));
            let Client {
                sink, out, feed, ..
            } = self;
            let step = tokio::select! {
                written = poll_fn(|cx| out.poll_write(sink, cx)), if writing => {
                    written.map_err(|_| End::Gone)
                }
                next = feed.next() => self.on_feed(next),
                _ = flush.tick(), if own => match self.feed {
                    Feed::Own { batch, .. } if !batch.is_empty() => {
                        self.out.push(batch.take().into())
                    }
                    _ => Ok(()),
                },
                msg = incoming.recv() => match msg {
                    Some(Incoming::Message(msg)) => self.on_subscription(msg),
                    Some(Incoming::Invalid(e)) => {
                        let reply = encode_text(&ErrorFrame {
                            r#type: "error",
                            error: ErrorBody { code: ErrorCode::ValidationError, message: &e },
                        });
                        self.out.push(reply.into())
                    }
                    None => Err(End::Gone),
                },
                _ = heartbeat.tick() => {
                    let text = encode_text(&LiveMessage::Heartbeat { stamp_ms: unix_ms() });
                    self.out
                        .check_stall(Instant::now())
                        .and_then(|()| self.out.push(text.into()))
                }
                () = &mut shutdown => Err(End::Shutdown),
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    fn on_feed(&mut self, next: Next) -> Result<(), End> {
        match next {
            Next::Frame(frame) => match self.feed {
                Feed::Each(rx) => queue_burst(self.out, rx, frame, self.filter),
                Feed::Own { batch, .. } => {
                    if self.filter.wants(frame.robot.as_ref()) {
                        batch.push(frame);
                    }
                    Ok(())
                }
                Feed::Shared(_) => Ok(()),
            },
            Next::Batch(text) => self.out.push(text),
            Next::Lagged(n) => {
                tracing::debug!("websocket client lagged; skipped {n} frames");
                // Batching: states may have been among them: resend every robot's latest.
                match self.feed {
                    Feed::Each(_) => Ok(()),
                    Feed::Own { batch, .. } => {
                        snapshot(self.st, self.filter)
                            .into_iter()
                            .for_each(|f| batch.push(f));
                        Ok(())
                    }
                    Feed::Shared(_) => self.out.push_batch(snapshot(self.st, self.filter)),
                }
            }
            Next::Closed => Err(End::Gone),
        }
    }

    fn on_subscription(&mut self, msg: ClientMessage) -> Result<(), End> {
        on_client_message(self.filter, msg);
        let Some(every) = self.batch_every else {
            return Ok(());
        };
        if matches!(self.feed, Feed::Shared(_)) != self.filter.is_all() {
            // Switch between the shared batches and our own; resync from a snapshot so
            // nothing falls in between.
            *self.feed = Feed::batching(self.st, every, self.filter);
            let snap = snapshot(self.st, self.filter);
            match self.feed {
                Feed::Own { batch, .. } => snap.into_iter().for_each(|f| batch.push(f)),
                _ => return self.out.push_batch(snap),
            }
        }
        Ok(())
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

    fn text(n: usize) -> Utf8Bytes {
        "x".repeat(n).into()
    }

    #[test]
    fn the_outbox_is_bounded_in_bytes_but_takes_one_large_message() {
        let mut out = Outbox::new(100);
        assert!(!out.has_work());
        // Alone, a message over the bound is taken (a large fleet's batch).
        out.push(text(150)).unwrap();
        assert!(matches!(out.push(text(1)), Err(End::Slow(_))));
        out.clear();
        assert!(!out.has_work());
        out.push(text(60)).unwrap();
        out.push(text(40)).unwrap();
        assert_eq!(out.bytes, 100);
        let Err(End::Slow(why)) = out.push(text(1)) else {
            panic!("over the bound")
        };
        assert!(why.contains("100 bytes"), "{why}");
        // The snapshot is not bounded.
        out.push_unbounded(text(1000));
        assert_eq!((out.bytes, out.queue.len()), (1100, 3));
        assert!(out.push_batch(Vec::new()).is_ok());
    }

    #[test]
    fn a_socket_that_takes_nothing_for_the_stall_time_is_a_slow_consumer() {
        let mut out = Outbox::new(100);
        let t0 = Instant::now();
        assert!(out.check_stall(t0 + SEND_STALL * 2).is_ok());
        assert!(out.blocked::<()>().is_pending());
        let since = out.blocked_since.unwrap();
        // Still blocked later: the first time counts.
        assert!(out.blocked::<()>().is_pending());
        assert_eq!(out.blocked_since, Some(since));
        assert!(out.check_stall(since + SEND_STALL / 2).is_ok());
        assert!(matches!(
            out.check_stall(since + SEND_STALL),
            Err(End::Slow(_))
        ));
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
