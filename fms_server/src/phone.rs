//! `fms_server phone`: the mobile teleop server (port 8765). It serves the phone page, lists
//! robots from their Zenoh state, and turns a WebSocket joystick into `cmd/teleop` commands
//! under the robot's teleop lease. It needs only Zenoh, not the fleet server.
//!
//! The safety rules live on the robot (the agent's dead-man stops it within 400 ms, its lease
//! admits one operator); this server adds limits (speeds clamped to `max_linear` /
//! `max_angular`, at most 50 commands/s per client) and releases the robot when its client goes.
//! At shutdown ([`serve`]) every client gets a close frame 1001 and its robot is released.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use fms_msgs::codec::encode_text;
use fms_msgs::keys::{self, RobotTopic};
use fms_msgs::{
    decode, encode, Battery, Pose, RobotId, RobotMode, RobotState, TeleopCommand, MAX_OPERATOR_LEN,
};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tower_http::services::{ServeDir, ServeFile};
use zenoh::Session;

use crate::http::{ApiError, ApiQuery, ErrorCode};
use crate::link::{self, ZenohMode};

/// A robot not heard from for this long leaves the list.
const FORGET_AFTER: Duration = Duration::from_secs(10);
/// How often a client is told the lease status of the robot it drives.
const STATUS_EVERY: Duration = Duration::from_millis(500);
/// Most teleop messages accepted per client per second; the rest are dropped.
const MAX_RATE_HZ: u32 = 50;
/// How long shutdown waits for clients to be sent their close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(3);
/// How long one close frame may take to be written.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Settings of `fms_server phone`.
#[derive(Debug, Clone, clap::Args)]
pub struct PhoneArgs {
    /// HTTP port of the phone page and its WebSocket.
    #[arg(long, env = "PORT", default_value_t = 8765)]
    pub port: u16,
    /// HTTP bind address.
    #[arg(long, env = "FMS_BIND", default_value = "0.0.0.0")]
    pub bind: std::net::IpAddr,
    /// Zenoh router to connect to.
    #[arg(long, env = "ZENOH_ENDPOINT", default_value = "tcp/127.0.0.1:7447")]
    pub zenoh_endpoint: String,
    /// Zenoh configuration file (JSON5, e.g. TLS) to start from.
    #[arg(long, env = "FMS_ZENOH_CONFIG")]
    pub zenoh_config: Option<PathBuf>,
    /// Directory of the built frontend (phone.html is served at `/`).
    #[arg(long, env = "FMS_FRONTEND_DIR", default_value = "frontend/dist")]
    pub frontend_dir: PathBuf,
    /// Highest forward/backward speed sent, m/s.
    #[arg(long, env = "FMS_PHONE_MAX_LINEAR", default_value_t = 0.5)]
    pub max_linear: f64,
    /// Highest turn rate sent, rad/s.
    #[arg(long, env = "FMS_PHONE_MAX_ANGULAR", default_value_t = 1.0)]
    pub max_angular: f64,
    /// Log filter.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Require an operator token (an HS256 JWT from `fms_server token`, role operator or
    /// admin) to drive; the token's subject becomes the operator name.
    #[arg(long, env = "FMS_AUTH", value_parser = clap::builder::BoolishValueParser::new())]
    pub auth: Option<bool>,
    /// The fleet's JWT secret (the server's FMS_JWT_SECRET).
    #[arg(long, env = "FMS_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// File holding the JWT secret.
    #[arg(long, env = "FMS_JWT_SECRET_FILE")]
    pub jwt_secret_file: Option<PathBuf>,
}

/// Phone settings that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum PhoneArgsError {
    #[error("cannot read {path}: {source}")]
    ReadSecret {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("--auth needs the fleet's JWT secret (FMS_JWT_SECRET or FMS_JWT_SECRET_FILE)")]
    NoSecret,
    #[error(transparent)]
    Secret(#[from] crate::auth::SecretTooShort),
    #[error("{name} {value} is outside (0, {max}]")]
    Limit {
        name: &'static str,
        value: f64,
        max: f64,
    },
    #[error("zenoh_endpoint {0:?} is not like tcp/127.0.0.1:7447")]
    Endpoint(String),
}

impl PhoneArgs {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }

    /// The JWT secret when authentication is on; an error when it is on without a secret.
    pub fn auth_secret(&self) -> Result<Option<Vec<u8>>, PhoneArgsError> {
        if !self.auth.unwrap_or(false) {
            return Ok(None);
        }
        let text = match (&self.jwt_secret, &self.jwt_secret_file) {
            (Some(s), _) => s.clone(),
            (None, Some(p)) => {
                std::fs::read_to_string(p).map_err(|source| PhoneArgsError::ReadSecret {
                    path: p.clone(),
                    source,
                })?
            }
            (None, None) => return Err(PhoneArgsError::NoSecret),
        };
        Ok(Some(crate::auth::check_secret(&text)?))
    }

    /// Checks the limits: positive, finite, and no faster than a mobile robot goes.
    pub fn validate(&self) -> Result<(), PhoneArgsError> {
        for (name, v, hi) in [
            ("max_linear", self.max_linear, 5.0),
            ("max_angular", self.max_angular, 10.0),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= hi) {
                return Err(PhoneArgsError::Limit {
                    name,
                    value: v,
                    max: hi,
                });
            }
        }
        if self.zenoh_endpoint.split_once('/').is_none() {
            return Err(PhoneArgsError::Endpoint(self.zenoh_endpoint.clone()));
        }
        Ok(())
    }
}

/// A robot as the phone lists it.
#[derive(Debug, Clone, Serialize)]
pub struct PhoneRobot {
    pub id: RobotId,
    pub mode: RobotMode,
    pub battery: Battery,
    pub pose: Pose,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub teleop_operator: Option<String>,
}

#[derive(Debug)]
struct Seen {
    state: RobotState,
    at: Instant,
}

/// What the handlers share.
pub struct Phone {
    session: Session,
    /// Set when drivers must present an operator token.
    jwt_secret: Option<Vec<u8>>,
    robots: Mutex<HashMap<RobotId, Seen>>,
    max_linear: f64,
    max_angular: f64,
    /// True once the server is going away: clients close with 1001.
    closing: watch::Sender<bool>,
    /// Connected teleop clients.
    clients: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Phone {
    fn robots(&self) -> Vec<PhoneRobot> {
        let mut map = lock(&self.robots);
        map.retain(|_, s| s.at.elapsed() < FORGET_AFTER);
        let mut list: Vec<PhoneRobot> = map
            .iter()
            .map(|(id, s)| PhoneRobot {
                id: id.clone(),
                mode: s.state.mode,
                battery: s.state.battery,
                pose: s.state.pose.clone(),
                teleop_operator: s.state.teleop_operator.clone(),
            })
            .collect();
        list.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        list
    }

    fn robot(&self, id: &RobotId) -> Option<RobotState> {
        lock(&self.robots).get(id).map(|s| s.state.clone())
    }

    async fn send(&self, robot: &RobotId, cmd: &TeleopCommand) {
        let key = keys::robot_key(robot, RobotTopic::CmdTeleop);
        if let Err(e) = self.session.put(key, encode(cmd)).await {
            tracing::warn!(robot = %robot, "teleop not sent: {e}");
        }
    }
}

/// Connects to Zenoh and keeps the robot list from their state messages.
pub async fn start(
    args: &PhoneArgs,
) -> Result<(Arc<Phone>, zenoh::pubsub::Subscriber<()>), zenoh::Error> {
    let session = link::open(
        &ZenohMode::Client {
            connect: args.zenoh_endpoint.clone(),
        },
        args.zenoh_config.as_deref(),
    )
    .await?;
    let phone = Arc::new(Phone {
        session: session.clone(),
        jwt_secret: args.auth_secret().map_err(zenoh::Error::from)?,
        robots: Mutex::new(HashMap::new()),
        max_linear: args.max_linear,
        max_angular: args.max_angular,
        closing: watch::Sender::new(false),
        clients: AtomicUsize::new(0),
    });
    let p = phone.clone();
    let sub = session
        .declare_subscriber(keys::all_robots(RobotTopic::State))
        .callback(move |sample| {
            let Ok((id, _)) = keys::parse_robot_key(sample.key_expr().as_str()) else {
                return;
            };
            match decode::<RobotState>(&sample.payload().to_bytes()) {
                Ok(state) if state.validate().is_ok() => {
                    lock(&p.robots).insert(
                        id,
                        Seen {
                            state,
                            at: Instant::now(),
                        },
                    );
                }
                _ => tracing::debug!(robot = %id, "ignored a bad state message"),
            }
        })
        .await?;
    Ok((phone, sub))
}

/// The phone server's routes.
pub fn app(phone: Arc<Phone>, frontend_dir: &std::path::Path) -> Router {
    let mut router = Router::new()
        .route("/api/robots", get(list_robots))
        .route("/api/config", get(config))
        .route("/api/info", get(info))
        .route(
            "/api/{*rest}",
            axum::routing::any(|| async {
                ApiError::new(ErrorCode::NotFound, "no such API route")
            }),
        )
        .route("/ws/teleop", get(upgrade))
        .route("/healthz", get(health));
    if frontend_dir.is_dir() {
        let page = frontend_dir.join("phone.html");
        router = router
            .route_service("/", ServeFile::new(page.clone()))
            .fallback_service(ServeDir::new(frontend_dir).fallback(ServeFile::new(page)));
    } else {
        tracing::warn!(dir = %frontend_dir.display(), "phone page not served: build the frontend (cd frontend && npm ci && npm run build)");
    }
    router.with_state(phone)
}

/// Serves [`app`] on `listener` until `shutdown` completes, then sends every teleop client
/// a close frame 1001 (going away; its robot is released) and waits up to 3 s for them.
pub async fn serve(
    listener: tokio::net::TcpListener,
    phone: Arc<Phone>,
    frontend_dir: &std::path::Path,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let closing = phone.closing.clone();
    let served = axum::serve(listener, app(phone.clone(), frontend_dir))
        .with_graceful_shutdown(async move {
            shutdown.await;
            closing.send_replace(true);
        })
        .await;
    // Upgraded connections are no longer HTTP's to wait for.
    phone.closing.send_replace(true);
    let until = Instant::now() + CLOSE_WAIT;
    while phone.clients.load(Ordering::Relaxed) > 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    served
}

/// Counts a connected teleop client while alive.
struct Counted(Arc<Phone>);

impl Counted {
    fn new(phone: Arc<Phone>) -> Self {
        phone.clients.fetch_add(1, Ordering::Relaxed);
        Self(phone)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
}

async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Serialize)]
struct Info {
    /// Driving needs an operator token.
    auth_required: bool,
}

async fn info(State(phone): State<Arc<Phone>>) -> Json<Info> {
    Json(Info {
        auth_required: phone.jwt_secret.is_some(),
    })
}

async fn list_robots(State(phone): State<Arc<Phone>>) -> Json<Vec<PhoneRobot>> {
    Json(phone.robots())
}

#[derive(Serialize)]
struct Limits {
    max_linear: f64,
    max_angular: f64,
}

async fn config(State(phone): State<Arc<Phone>>) -> Json<Limits> {
    Json(Limits {
        max_linear: phone.max_linear,
        max_angular: phone.max_angular,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeleopParams {
    operator: Option<String>,
    /// Credentials for browsers, which cannot set headers on a WebSocket.
    access_token: Option<String>,
}

/// An operator name: 1-64 bytes of letters, digits, `_ . -`.
fn valid_operator(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_OPERATOR_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

async fn upgrade(
    ws: WebSocketUpgrade,
    State(phone): State<Arc<Phone>>,
    headers: axum::http::HeaderMap,
    ApiQuery(params): ApiQuery<TeleopParams>,
) -> Result<Response, ApiError> {
    if let Some(secret) = &phone.jwt_secret {
        // With auth on, the operator is who the token says, with an operator role or more.
        let token = match crate::http::guard::credential(&headers, None) {
            Some(crate::auth::Credential::Bearer(t)) => Some(t),
            _ => params.access_token.clone(),
        }
        .ok_or(crate::auth::AuthError::Missing)?;
        let who = crate::auth::verify_jwt(&token, secret)?;
        if who.role < crate::auth::Role::Operator {
            return Err(crate::auth::AuthError::Forbidden {
                needed: crate::auth::Role::Operator,
                have: who.role,
            }
            .into());
        }
        if !valid_operator(&who.name) {
            return Err(ApiError::validation(
                "the token's subject is not a valid operator name",
            ));
        }
        let operator = who.name;
        return Ok(ws
            .max_message_size(4096)
            .on_upgrade(move |socket| teleop_client(socket, phone, operator))
            .into_response());
    }
    let operator = match params.operator {
        Some(o) if valid_operator(&o) => o,
        Some(o) => {
            return Err(ApiError::new(
                ErrorCode::ValidationError,
                format!("operator {o:?}: use 1-{MAX_OPERATOR_LEN} letters, digits, _ . -"),
            ))
        }
        None => format!("phone-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
    };
    Ok(ws
        .max_message_size(4096)
        .on_upgrade(move |socket| teleop_client(socket, phone, operator))
        .into_response())
}

/// What a phone sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ClientMessage {
    Teleop {
        robot_id: RobotId,
        linear: f64,
        angular: f64,
    },
    Stop {
        robot_id: RobotId,
    },
}

/// What a phone receives.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerMessage<'a> {
    Hello {
        operator: &'a str,
        max_linear: f64,
        max_angular: f64,
    },
    TeleopStatus {
        robot_id: &'a RobotId,
        holder: Option<&'a str>,
        yours: bool,
        mode: Option<RobotMode>,
    },
    Error {
        message: String,
    },
}

/// Clamps a joystick command to the limits; `None` for non-finite input.
pub fn clamp_command(
    linear: f64,
    angular: f64,
    max_linear: f64,
    max_angular: f64,
) -> Option<(f64, f64)> {
    (linear.is_finite() && angular.is_finite()).then(|| {
        (
            linear.clamp(-max_linear, max_linear),
            angular.clamp(-max_angular, max_angular),
        )
    })
}

/// Counts messages per one-second window.
struct RateLimit {
    window: Instant,
    count: u32,
}

impl RateLimit {
    fn allow(&mut self) -> bool {
        if self.window.elapsed() >= Duration::from_secs(1) {
            self.window = Instant::now();
            self.count = 0;
        }
        self.count += 1;
        self.count <= MAX_RATE_HZ
    }
}

async fn teleop_client(socket: WebSocket, phone: Arc<Phone>, operator: String) {
    tracing::info!(%operator, "phone connected");
    let _counted = Counted::new(phone.clone());
    let mut closing = phone.closing.subscribe();
    let shutdown = async move {
        let _ = closing.wait_for(|c| *c).await;
    };
    tokio::pin!(shutdown);
    let (mut sink, mut stream) = socket.split();
    let hello = encode_text(&ServerMessage::Hello {
        operator: &operator,
        max_linear: phone.max_linear,
        max_angular: phone.max_angular,
    });
    if sink.send(Message::Text(hello.into())).await.is_err() {
        return;
    }
    let mut driving: Option<RobotId> = None;
    let mut status = tokio::time::interval(STATUS_EVERY);
    let mut rate = RateLimit {
        window: Instant::now(),
        count: 0,
    };
    let release = || TeleopCommand {
        linear: 0.0,
        angular: 0.0,
        operator: Some(operator.clone()),
        release: true,
    };
    loop {
        let reply = tokio::select! {
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    if !rate.allow() {
                        continue;
                    }
                    match decode::<ClientMessage>(text.as_bytes()) {
                        Ok(ClientMessage::Teleop { robot_id, linear, angular }) => {
                            match clamp_command(linear, angular, phone.max_linear, phone.max_angular) {
                                Some((l, a)) => {
                                    if let Some(old) = driving.as_ref().filter(|d| **d != robot_id) {
                                        phone.send(old, &release()).await;
                                    }
                                    phone.send(&robot_id, &TeleopCommand::drive(l, a, Some(operator.clone()))).await;
                                    driving = Some(robot_id);
                                    None
                                }
                                None => Some(ServerMessage::Error { message: "linear and angular must be finite numbers".into() }),
                            }
                        }
                        Ok(ClientMessage::Stop { robot_id }) => {
                            phone.send(&robot_id, &release()).await;
                            if driving.as_ref() == Some(&robot_id) {
                                driving = None;
                            }
                            None
                        }
                        Err(e) => Some(ServerMessage::Error { message: e.to_string() }),
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => None,
            },
            _ = status.tick() => {
                let Some(robot) = driving.as_ref() else { continue };
                let state = phone.robot(robot);
                let holder = state.as_ref().and_then(|s| s.teleop_operator.clone());
                let text = encode_text(&ServerMessage::TeleopStatus {
                    robot_id: robot,
                    holder: holder.as_deref(),
                    yours: holder.as_deref() == Some(operator.as_str()),
                    mode: state.map(|s| s.mode),
                });
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
                None
            }
            () = &mut shutdown => {
                let bye = CloseFrame {
                    code: close_code::AWAY,
                    reason: "server shutting down".into(),
                };
                let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(Message::Close(Some(bye)))).await;
                break;
            }
        };
        if let Some(msg) = reply {
            if sink
                .send(Message::Text(encode_text(&msg).into()))
                .await
                .is_err()
            {
                break;
            }
        }
    }
    if let Some(robot) = driving {
        phone.send(&robot, &release()).await;
    }
    tracing::info!(%operator, "phone disconnected");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_clamped_and_checked() {
        assert_eq!(clamp_command(2.0, -3.0, 0.5, 1.0), Some((0.5, -1.0)));
        assert_eq!(clamp_command(0.2, 0.1, 0.5, 1.0), Some((0.2, 0.1)));
        assert_eq!(clamp_command(f64::NAN, 0.0, 0.5, 1.0), None);
        assert_eq!(clamp_command(0.0, f64::INFINITY, 0.5, 1.0), None);
    }

    #[test]
    fn operators_are_plain_names() {
        assert!(valid_operator("alice"));
        assert!(valid_operator("phone-1a2b.c_d"));
        assert!(!valid_operator(""));
        assert!(!valid_operator("a/b"));
        assert!(!valid_operator("*"));
        assert!(!valid_operator(&"x".repeat(MAX_OPERATOR_LEN + 1)));
    }

    #[test]
    fn client_messages_are_validated() {
        assert!(decode::<ClientMessage>(
            br#"{"type":"teleop","robot_id":"r1","linear":0.1,"angular":0}"#
        )
        .is_ok());
        assert!(decode::<ClientMessage>(
            br#"{"type":"teleop","robot_id":"fms/**","linear":0.1,"angular":0}"#
        )
        .is_err());
        assert!(decode::<ClientMessage>(br#"{"type":"stop","robot_id":"r1","x":1}"#).is_err());
        assert!(decode::<ClientMessage>(br#"{"type":"fly"}"#).is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_closes_teleop_clients_with_going_away() {
        use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
        use tokio_tungstenite::tungstenite::Message as WsMessage;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = vec![format!("tcp/127.0.0.1:{port}")];
        let session = link::open(&ZenohMode::EmbeddedRouter { listen }, None)
            .await
            .unwrap();
        let phone = Arc::new(Phone {
            session: session.clone(),
            jwt_secret: None,
            robots: Mutex::default(),
            max_linear: 0.5,
            max_angular: 1.0,
            closing: watch::Sender::new(false),
            clients: AtomicUsize::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            phone.clone(),
            std::path::Path::new("/nonexistent"),
            async move {
                let _ = stopped.await;
            },
        ));
        let url = format!("ws://{addr}/ws/teleop?operator=t1");
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let hello = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
        assert!(
            matches!(hello, Ok(Some(Ok(WsMessage::Text(_))))),
            "{hello:?}"
        );
        stop.send(()).unwrap();
        let close = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match ws.next().await {
                    Some(Ok(WsMessage::Close(frame))) => return frame,
                    Some(Ok(_)) => continue,
                    other => panic!("no close frame: {other:?}"),
                }
            }
        })
        .await
        .expect("no close frame in time");
        assert_eq!(close.expect("a close code").code, CloseCode::Away);
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("serve did not return")
            .unwrap()
            .unwrap();
        assert_eq!(phone.clients.load(Ordering::Relaxed), 0);
        session.close().await.unwrap();
    }

    #[test]
    fn rate_limit_caps_a_second() {
        let mut r = RateLimit {
            window: Instant::now(),
            count: 0,
        };
        let allowed = (0..100).filter(|_| r.allow()).count();
        assert_eq!(allowed, MAX_RATE_HZ as usize);
    }
}
