//! Robot presence and latest state: ONLINE / STALE / OFFLINE from liveliness tokens plus
//! message staleness, for robots speaking our protocol or the legacy split form.

use std::collections::HashMap;
use std::sync::Arc;

use fms_msgs::codec::encode_into;
use fms_msgs::{Battery, Pose, RobotId, RobotMode, RobotState, Velocity, PROTOCOL_VERSION};
use serde::Serialize;

/// Messages that confirm a robot id without a token (a legacy robot sends pose, battery and
/// heartbeat every second).
const CONFIRMING_MESSAGES: u8 = 3;

/// When a robot counts as stale or offline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PresenceParams {
    /// No state for this long: STALE.
    pub stale_after_ms: u64,
    /// Robots without a liveliness token (legacy) go OFFLINE after this long without messages.
    pub offline_after_ms: u64,
}

impl Default for PresenceParams {
    fn default() -> Self {
        Self {
            stale_after_ms: 2_000,
            offline_after_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Presence {
    Online,
    Stale,
    Offline,
}

/// One robot as the server knows it. Its JSON ([`RobotJson`]) adds, beside ours, the fields
/// clients of the Python FMS read: `robot_id`, `pose`, `battery`, `status`, `last_seen`.
#[derive(Debug, Clone)]
pub struct RobotEntry {
    pub id: RobotId,
    pub presence: Presence,
    /// Speaks the legacy split form (no token, no RobotState).
    pub legacy: bool,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    pub state: Option<RobotState>,
    token: TokenState,
    /// Messages heard from it (saturating): one-off ids are told from robots by it.
    heard: u8,
    /// `state` as JSON, when the ingest had already encoded it (for live clients): lists of
    /// the whole fleet copy it instead of encoding every state again.
    state_json: Option<Arc<[u8]>>,
}

/// A robot as the API shows it (`GET /api/robots`, `GET /api/robots/{id}`).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = RobotEntry)]
pub struct RobotJson<'a> {
    id: &'a RobotId,
    presence: Presence,
    /// Speaks the legacy split form (no token, no RobotState).
    legacy: bool,
    /// Unix milliseconds.
    first_seen_ms: u64,
    /// Unix milliseconds.
    last_seen_ms: u64,
    /// The latest state; null until the robot has sent one.
    state: Option<&'a RobotState>,
    /// The same as `id` (the Python FMS's name for it).
    robot_id: &'a RobotId,
    /// `state.pose` in the Python FMS's shape: a position (`z` 0) and an orientation quaternion
    /// (a rotation of `yaw` about z); null until the robot has sent a state.
    pose: Option<OldPose>,
    /// `state.battery.percentage` (0-100), as the Python FMS gave it; null until the robot
    /// has sent a state.
    battery: Option<f64>,
    /// The Python FMS's status: `offline` when `presence` is OFFLINE, `unknown` before the first
    /// state, else `state.mode` in lower case (`idle`, `navigating`, `paused`, `charging`,
    /// `estopped`, `error`, `teleop`).
    status: &'static str,
    /// `last_seen_ms` in Unix seconds, as the Python FMS gave it.
    last_seen: f64,
}

/// The Python FMS's pose: `{"position":{x,y,z},"orientation":{x,y,z,w}}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OldPose {
    pub position: OldPoint,
    pub orientation: OldQuaternion,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OldPoint {
    pub x: f64,
    pub y: f64,
    pub z: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OldQuaternion {
    pub x: f64,
    pub y: f64,
    pub z: f64,
    pub w: f64,
}

impl OldPose {
    /// A planar pose as a position and a rotation of `yaw` about z.
    pub fn from_pose(p: &Pose) -> Self {
        let half = p.yaw / 2.0;
        Self {
            position: OldPoint {
                x: p.x,
                y: p.y,
                z: 0.0,
            },
            orientation: OldQuaternion {
                x: 0.0,
                y: 0.0,
                z: half.sin(),
                w: half.cos(),
            },
        }
    }
}

impl Serialize for RobotEntry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json().serialize(s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenState {
    Never,
    Alive,
    Lost,
}

impl RobotEntry {
    fn new(id: RobotId, now: u64) -> Self {
        Self {
            id,
            presence: Presence::Offline,
            legacy: false,
            first_seen_ms: now,
            last_seen_ms: now,
            state: None,
            token: TokenState::Never,
            heard: 0,
            state_json: None,
        }
    }

    /// What the API shows of this robot.
    pub fn json(&self) -> RobotJson<'_> {
        RobotJson {
            id: &self.id,
            presence: self.presence,
            legacy: self.legacy,
            first_seen_ms: self.first_seen_ms,
            last_seen_ms: self.last_seen_ms,
            state: self.state.as_ref(),
            robot_id: &self.id,
            pose: self.old_pose(),
            battery: self.battery(),
            status: self.old_status(),
            last_seen: self.last_seen(),
        }
    }

    /// The pose in the Python FMS's shape.
    pub fn old_pose(&self) -> Option<OldPose> {
        self.state.as_ref().map(|s| OldPose::from_pose(&s.pose))
    }

    /// The Python FMS's status word (see [`RobotJson`]). Each is one the legacy status
    /// message is read back as (`fms_msgs::legacy::LegacyStatus`), but `offline` and `unknown`.
    pub fn old_status(&self) -> &'static str {
        if self.presence == Presence::Offline {
            return "offline";
        }
        match self.mode() {
            None => "unknown",
            Some(RobotMode::Idle) => "idle",
            Some(RobotMode::Navigating) => "navigating",
            Some(RobotMode::Paused) => "paused",
            Some(RobotMode::Charging) => "charging",
            Some(RobotMode::Estopped) => "estopped",
            Some(RobotMode::Error) => "error",
            Some(RobotMode::Teleop) => "teleop",
        }
    }

    /// When the robot was last heard of, in Unix seconds.
    pub fn last_seen(&self) -> f64 {
        self.last_seen_ms as f64 / 1000.0
    }

    /// Appends this entry as JSON, exactly as `serde` writes it ([`RobotJson`]), reusing the
    /// encoded state.
    pub fn write_json(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(br#"{"id":"#);
        encode_into(buf, &self.id);
        buf.extend_from_slice(br#","presence":"#);
        encode_into(buf, &self.presence);
        buf.extend_from_slice(if self.legacy {
            br#","legacy":true"#.as_slice()
        } else {
            br#","legacy":false"#.as_slice()
        });
        buf.extend_from_slice(br#","first_seen_ms":"#);
        encode_into(buf, &self.first_seen_ms);
        buf.extend_from_slice(br#","last_seen_ms":"#);
        encode_into(buf, &self.last_seen_ms);
        buf.extend_from_slice(br#","state":"#);
        match (&self.state_json, &self.state) {
            (Some(json), Some(_)) => buf.extend_from_slice(json),
            (_, state) => encode_into(buf, state),
        }
        buf.extend_from_slice(br#","robot_id":"#);
        encode_into(buf, &self.id);
        buf.extend_from_slice(br#","pose":"#);
        encode_into(buf, &self.old_pose());
        buf.extend_from_slice(br#","battery":"#);
        encode_into(buf, &self.battery());
        buf.extend_from_slice(br#","status":""#);
        buf.extend_from_slice(self.old_status().as_bytes());
        buf.extend_from_slice(br#"","last_seen":"#);
        encode_into(buf, &self.last_seen());
        buf.push(b'}');
    }

    pub fn mode(&self) -> Option<RobotMode> {
        self.state.as_ref().map(|s| s.mode)
    }

    pub fn battery(&self) -> Option<f64> {
        self.state.as_ref().map(|s| s.battery.percentage)
    }

    /// Whether the robot has shown it really exists: it declared a liveliness token, or sent
    /// [`CONFIRMING_MESSAGES`] messages, or has been heard of for at least `stale_after_ms`
    /// (a one-off message from an unknown id is not a robot yet). Once confirmed, always
    /// confirmed.
    fn confirmed(&self, p: &PresenceParams) -> bool {
        self.token != TokenState::Never
            || self.heard >= CONFIRMING_MESSAGES
            || self.last_seen_ms.saturating_sub(self.first_seen_ms) >= p.stale_after_ms
    }

    fn compute(&self, now: u64, p: &PresenceParams) -> Presence {
        let age = now.saturating_sub(self.last_seen_ms);
        match self.token {
            TokenState::Alive if age <= p.stale_after_ms => Presence::Online,
            TokenState::Alive => Presence::Stale,
            TokenState::Lost => Presence::Offline,
            TokenState::Never if age <= p.stale_after_ms => Presence::Online,
            TokenState::Never if age <= p.offline_after_ms => Presence::Stale,
            TokenState::Never => Presence::Offline,
        }
    }
}

/// A presence transition worth telling others about.
#[derive(Debug, Clone, PartialEq)]
pub struct PresenceChange {
    pub robot_id: RobotId,
    pub from: Option<Presence>,
    pub to: Presence,
}

/// What [`Registry::on_state_named`] did.
#[derive(Debug)]
pub struct StateApplied<'a> {
    pub change: Option<PresenceChange>,
    /// The state was newer than the one held and replaced it.
    pub taken: bool,
    pub entry: &'a RobotEntry,
}

/// One message of the legacy split form.
#[derive(Debug, Clone, PartialEq)]
pub enum LegacyUpdate {
    Pose(Pose),
    Battery {
        percentage: f64,
        voltage: Option<f64>,
        charging: Option<bool>,
    },
    Mode(RobotMode),
    Heartbeat,
}

/// Every robot the server has heard of.
#[derive(Debug, Default)]
pub struct Registry {
    robots: HashMap<RobotId, RobotEntry>,
    params: PresenceParams,
}

impl Registry {
    pub fn new(params: PresenceParams) -> Self {
        Self {
            robots: HashMap::new(),
            params,
        }
    }

    pub fn get(&self, id: &RobotId) -> Option<&RobotEntry> {
        self.robots.get(id)
    }

    /// The robot named `id`, looked up without building a `RobotId`.
    pub fn get_str(&self, id: &str) -> Option<&RobotEntry> {
        self.robots.get(id)
    }

    pub fn robots(&self) -> impl Iterator<Item = &RobotEntry> {
        self.robots.values()
    }

    /// Every robot as a JSON array sorted by id (the body of `GET /api/robots`).
    pub fn robots_json(&self) -> Vec<u8> {
        let mut entries: Vec<&RobotEntry> = self.robots.values().collect();
        entries.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        let mut buf = Vec::with_capacity(64 + entries.len() * 768);
        buf.push(b'[');
        for (i, e) in entries.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            e.write_json(&mut buf);
        }
        buf.push(b']');
        buf
    }

    pub fn len(&self) -> usize {
        self.robots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.robots.is_empty()
    }

    /// Applies `f` to the robot's entry (creating it), then recomputes its presence.
    /// Looks the robot up by its text, so a known robot costs no allocation.
    fn touch<T>(
        &mut self,
        id: &str,
        now: u64,
        f: impl FnOnce(&mut RobotEntry) -> T,
    ) -> Option<(Option<PresenceChange>, T, &RobotEntry)> {
        let params = self.params;
        let is_new = !self.robots.contains_key(id);
        if is_new {
            let id = RobotId::from_ref(id).ok()?;
            self.robots.insert(id.clone(), RobotEntry::new(id, now));
        }
        let entry = self.robots.get_mut(id)?;
        entry.heard = entry.heard.saturating_add(1);
        let out = f(entry);
        let to = entry.compute(now, &params);
        let change = if is_new || to != entry.presence {
            let from = (!is_new).then_some(entry.presence);
            entry.presence = to;
            Some(PresenceChange {
                robot_id: entry.id.clone(),
                from,
                to,
            })
        } else {
            None
        };
        Some((change, out, entry))
    }

    /// A `RobotState` arrived. States older than the one held (by stamp) are ignored.
    pub fn on_state(
        &mut self,
        id: &RobotId,
        state: RobotState,
        now: u64,
    ) -> Option<PresenceChange> {
        self.on_state_named(id.as_str(), state, None, now)
            .and_then(|a| a.change)
    }

    /// [`Registry::on_state`] for a robot named by text (a valid [`RobotId`]; an invalid one
    /// is ignored and gives None). Also says whether the state was taken and what the entry
    /// now is, so the caller can publish it without a second lookup.
    /// `json`: the state already encoded, if the caller has it.
    pub fn on_state_named(
        &mut self,
        id: &str,
        state: RobotState,
        json: Option<Arc<[u8]>>,
        now: u64,
    ) -> Option<StateApplied<'_>> {
        let (change, taken, entry) = self.touch(id, now, |e| {
            e.last_seen_ms = now;
            e.legacy = false;
            let newer = e
                .state
                .as_ref()
                .is_none_or(|old| state.stamp_ms >= old.stamp_ms || state.seq < old.seq);
            if newer {
                e.state = Some(state);
                e.state_json = json;
            }
            newer
        })?;
        Some(StateApplied {
            change,
            taken,
            entry,
        })
    }

    /// A legacy message arrived; it updates the matching part of a synthesized state.
    pub fn on_legacy(
        &mut self,
        id: &RobotId,
        update: LegacyUpdate,
        now: u64,
    ) -> Option<PresenceChange> {
        self.touch(id.as_str(), now, |e| {
            e.last_seen_ms = now;
            e.legacy = true;
            e.state_json = None;
            // Only an old agent speaks the split form: a robot moved back to it from
            // fms_agent (whose token is gone) is judged by its messages again.
            if e.token == TokenState::Lost {
                e.token = TokenState::Never;
            }
            let state = e.state.get_or_insert_with(|| RobotState {
                protocol: PROTOCOL_VERSION,
                seq: 0,
                stamp_ms: now,
                pose: Pose::new(0.0, 0.0, 0.0),
                velocity: Velocity::default(),
                battery: Battery {
                    percentage: 0.0,
                    voltage: None,
                    charging: false,
                },
                mode: RobotMode::Idle,
                task: None,
                teleop_operator: None,
            });
            state.stamp_ms = now;
            match update {
                LegacyUpdate::Pose(p) => state.pose = p,
                LegacyUpdate::Battery {
                    percentage,
                    voltage,
                    charging,
                } => {
                    state.battery.percentage = percentage;
                    state.battery.voltage = voltage;
                    state.battery.charging = charging.unwrap_or(false);
                }
                LegacyUpdate::Mode(m) => state.mode = m,
                LegacyUpdate::Heartbeat => {}
            }
        })
        .and_then(|(change, (), _)| change)
    }

    /// The robot's liveliness token appeared (`alive`) or went away.
    pub fn on_token(&mut self, id: &RobotId, alive: bool, now: u64) -> Option<PresenceChange> {
        if !alive && !self.robots.contains_key(id) {
            return None;
        }
        self.touch(id.as_str(), now, |e| {
            if alive {
                e.token = TokenState::Alive;
                e.last_seen_ms = now;
            } else {
                e.token = TokenState::Lost;
            }
        })
        .and_then(|(change, (), _)| change)
    }

    /// Whether the robot is known and confirmed (see [`RobotEntry`]'s rules): presence
    /// changes of unconfirmed ids are logged sparingly.
    pub fn is_confirmed(&self, id: &RobotId) -> bool {
        self.robots
            .get(id)
            .is_some_and(|e| e.confirmed(&self.params))
    }

    /// Re-evaluates staleness; returns every robot whose presence changed. Robots that were
    /// never confirmed are forgotten one tick after they went OFFLINE.
    pub fn tick(&mut self, now: u64) -> Vec<PresenceChange> {
        let params = self.params;
        self.robots
            .retain(|_, e| e.presence != Presence::Offline || e.confirmed(&params));
        let mut changes = Vec::new();
        for e in self.robots.values_mut() {
            let to = e.compute(now, &params);
            if to != e.presence {
                changes.push(PresenceChange {
                    robot_id: e.id.clone(),
                    from: Some(e.presence),
                    to,
                });
                e.presence = to;
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_off_ids_are_forgotten_once_offline_and_real_robots_kept() {
        let p = PresenceParams::default();
        let mut r = Registry::new(p);
        // A one-off message from an unknown id, a legacy robot heard for a while, a robot
        // with a token that went away.
        r.on_state(&id("ghost"), state(1), 0);
        for t in (0..=3_000).step_by(1_000) {
            r.on_legacy(&id("old"), LegacyUpdate::Heartbeat, t);
        }
        r.on_token(&id("agent"), true, 0);
        r.on_token(&id("agent"), false, 100);
        assert!(!r.is_confirmed(&id("ghost")));
        assert!(r.is_confirmed(&id("old")) && r.is_confirmed(&id("agent")));
        let late = 3_000 + p.offline_after_ms + 1;
        let changes = r.tick(late);
        assert!(changes
            .iter()
            .any(|c| c.robot_id == id("ghost") && c.to == Presence::Offline));
        assert_eq!(r.len(), 3, "forgotten before it was seen OFFLINE");
        r.tick(late + 250);
        let mut left: Vec<&str> = r.robots().map(|e| e.id.as_str()).collect();
        left.sort();
        assert_eq!(left, ["agent", "old"]);
    }

    fn id(s: &str) -> RobotId {
        RobotId::new(s).unwrap()
    }

    fn state(stamp: u64) -> RobotState {
        RobotState {
            protocol: 1,
            seq: stamp,
            stamp_ms: stamp,
            pose: Pose::new(1.0, 2.0, 0.0),
            velocity: Velocity::default(),
            battery: Battery {
                percentage: 90.0,
                voltage: None,
                charging: false,
            },
            mode: RobotMode::Idle,
            task: None,
            teleop_operator: None,
        }
    }

    #[test]
    fn fleet_json_matches_serde_and_reuses_encoded_states() {
        let mut r = Registry::new(PresenceParams::default());
        // "b": no encoded state; "a": an encoded state; "c": a legacy robot; "d": no state.
        r.on_token(&id("b"), true, 0);
        r.on_state(&id("b"), state(100), 100);
        let mut s = state(200);
        s.pose = Pose::new(0.1 + 0.2, -1e-7, 3.0);
        s.teleop_operator = Some("ana \"x\"".into());
        let json: Arc<[u8]> = fms_msgs::encode(&s).into();
        r.on_state_named("a", s.clone(), Some(json.clone()), 200)
            .unwrap();
        r.on_legacy(&id("c"), LegacyUpdate::Pose(Pose::new(3.0, 4.0, 1.0)), 10);
        r.on_token(&id("d"), true, 5);
        let body = r.robots_json();
        let mut entries: Vec<&RobotEntry> = r.robots().collect();
        entries.sort_by(|x, y| x.id.cmp(&y.id));
        let want = fms_msgs::codec::to_value(&entries);
        let got: fms_msgs::codec::JsonValue = fms_msgs::decode(&body).unwrap();
        assert_eq!(got, want);
        assert_eq!(
            got.as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap())
                .collect::<Vec<_>>(),
            ["a", "b", "c", "d"]
        );
        // The Python FMS's fields, beside ours.
        let a = &got[0];
        assert_eq!(a["robot_id"], "a");
        assert_eq!(a["battery"], 90.0);
        assert_eq!(a["status"], "idle");
        assert_eq!(a["last_seen"], 0.2);
        assert_eq!(a["pose"]["position"]["x"], 0.1 + 0.2);
        assert_eq!(a["pose"]["orientation"]["z"], 1.5f64.sin());
        assert_eq!(a["pose"]["orientation"]["w"], 1.5f64.cos());
        assert_eq!(
            got[2]["status"], "idle",
            "a legacy robot has the default mode"
        );
        let d = &got[3];
        assert_eq!(
            (d["robot_id"].as_str(), d["status"].as_str()),
            (Some("d"), Some("unknown"))
        );
        assert!(d["pose"].is_null() && d["battery"].is_null());
        assert_eq!(d["last_seen"], 0.005);
        // The cached bytes are what is served for "a".
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains(std::str::from_utf8(&json).unwrap()));
        // A legacy update drops the cache (the state changed without it).
        r.on_legacy(&id("a"), LegacyUpdate::Mode(RobotMode::Charging), 300);
        let got: fms_msgs::codec::JsonValue = fms_msgs::decode(&r.robots_json()).unwrap();
        assert_eq!(got[0]["state"]["mode"], "CHARGING");
        assert_eq!(
            Registry::new(PresenceParams::default()).robots_json(),
            b"[]"
        );
    }

    #[test]
    fn old_status_follows_mode_and_presence_and_reads_back_as_the_same_mode() {
        let mut r = Registry::new(PresenceParams::default());
        r.on_token(&id("a"), true, 0);
        for (i, mode) in [
            RobotMode::Idle,
            RobotMode::Navigating,
            RobotMode::Paused,
            RobotMode::Charging,
            RobotMode::Estopped,
            RobotMode::Error,
            RobotMode::Teleop,
        ]
        .into_iter()
        .enumerate()
        {
            let mut s = state(i as u64 + 1);
            s.mode = mode;
            r.on_state(&id("a"), s, i as u64 + 1);
            let word = r.get(&id("a")).unwrap().old_status();
            assert_eq!(word, mode.as_str().to_ascii_lowercase());
            let back = fms_msgs::legacy::LegacyStatus::Bare(word.into()).to_mode();
            assert_eq!(back, Ok(mode), "{word}");
        }
        r.on_token(&id("a"), false, 10);
        let e = r.get(&id("a")).unwrap();
        assert_eq!(e.old_status(), "offline");
        assert_eq!(fms_msgs::codec::to_value(e)["status"], "offline");
    }

    #[test]
    fn token_and_staleness_drive_presence() {
        let mut r = Registry::new(PresenceParams::default());
        let c = r.on_token(&id("a"), true, 0).unwrap();
        assert_eq!((c.from, c.to), (None, Presence::Online));
        assert_eq!(r.on_state(&id("a"), state(100), 100), None);
        assert!(r.tick(2_000).is_empty());
        let c = r.tick(2_200);
        assert_eq!(c[0].to, Presence::Stale);
        let c = r.on_state(&id("a"), state(2_300), 2_300).unwrap();
        assert_eq!((c.from, c.to), (Some(Presence::Stale), Presence::Online));
        // Token lost: offline at once, whatever the staleness.
        let c = r.on_token(&id("a"), false, 2_400).unwrap();
        assert_eq!(c.to, Presence::Offline);
        // A late state after the token loss keeps it offline until the token returns.
        assert_eq!(r.on_state(&id("a"), state(2_500), 2_500), None);
        assert_eq!(
            r.on_token(&id("a"), true, 2_600).unwrap().to,
            Presence::Online
        );
    }

    #[test]
    fn legacy_robots_age_out() {
        let mut r = Registry::new(PresenceParams::default());
        let c = r.on_legacy(&id("old"), LegacyUpdate::Heartbeat, 0).unwrap();
        assert_eq!(c.to, Presence::Online);
        r.on_legacy(&id("old"), LegacyUpdate::Pose(Pose::new(3.0, 4.0, 1.0)), 10);
        r.on_legacy(
            &id("old"),
            LegacyUpdate::Battery {
                percentage: 55.0,
                voltage: Some(24.1),
                charging: None,
            },
            20,
        );
        r.on_legacy(&id("old"), LegacyUpdate::Mode(RobotMode::Charging), 30);
        let e = r.get(&id("old")).unwrap();
        assert!(e.legacy);
        let s = e.state.as_ref().unwrap();
        assert_eq!(
            (s.pose.x, s.battery.percentage, s.mode),
            (3.0, 55.0, RobotMode::Charging)
        );
        assert_eq!(r.tick(3_000)[0].to, Presence::Stale);
        assert_eq!(r.tick(10_031)[0].to, Presence::Offline);
    }

    #[test]
    fn a_robot_moved_back_to_the_old_agent_comes_back_online() {
        let mut r = Registry::new(PresenceParams::default());
        r.on_token(&id("a"), true, 0);
        r.on_state(&id("a"), state(10), 10);
        assert_eq!(
            r.on_token(&id("a"), false, 20).unwrap().to,
            Presence::Offline
        );
        // Our state after the token loss does not bring it back; the old agent's messages do.
        assert_eq!(r.on_state(&id("a"), state(30), 30), None);
        let c = r.on_legacy(&id("a"), LegacyUpdate::Heartbeat, 40).unwrap();
        assert_eq!(c.to, Presence::Online);
        let e = r.get(&id("a")).unwrap();
        assert!(e.legacy);
        assert_eq!(e.old_status(), "idle");
    }

    #[test]
    fn unknown_token_loss_is_ignored_and_old_states_do_not_win() {
        let mut r = Registry::new(PresenceParams::default());
        assert_eq!(r.on_token(&id("ghost"), false, 0), None);
        assert!(r.is_empty());
        r.on_token(&id("a"), true, 0);
        r.on_state(&id("a"), state(500), 500);
        let mut older = state(400);
        older.seq = 600; // not a restart (seq went up) yet older stamp: keep the newer one
        r.on_state(&id("a"), older, 501);
        assert_eq!(
            r.get(&id("a")).unwrap().state.as_ref().unwrap().stamp_ms,
            500
        );
    }
}
