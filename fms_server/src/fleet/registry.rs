//! Robot presence and latest state: ONLINE / STALE / OFFLINE from liveliness tokens plus
//! message staleness, for robots speaking our protocol or the legacy split form.

use std::collections::HashMap;
use std::sync::Arc;

use fms_msgs::codec::encode_into;
use fms_msgs::{Battery, Pose, RobotId, RobotMode, RobotState, Velocity, PROTOCOL_VERSION};
use serde::Serialize;

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

/// One robot as the server knows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RobotEntry {
    pub id: RobotId,
    pub presence: Presence,
    /// Speaks the legacy split form (no token, no RobotState).
    pub legacy: bool,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    pub state: Option<RobotState>,
    #[serde(skip)]
    #[schema(ignore)]
    token: TokenState,
    /// `state` as JSON, when the ingest had already encoded it (for live clients): lists of
    /// the whole fleet copy it instead of encoding every state again.
    #[serde(skip)]
    #[schema(ignore)]
    state_json: Option<Arc<[u8]>>,
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
            state_json: None,
        }
    }

    /// Appends this entry as JSON, exactly as `serde` writes it, reusing the encoded state.
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
        buf.push(b'}');
    }

    pub fn mode(&self) -> Option<RobotMode> {
        self.state.as_ref().map(|s| s.mode)
    }

    pub fn battery(&self) -> Option<f64> {
        self.state.as_ref().map(|s| s.battery.percentage)
    }

    /// Whether the robot has shown it really exists: it declared a liveliness token, or it
    /// has been heard of for at least `stale_after_ms` (a one-off message from an unknown id
    /// is not a robot yet). Once confirmed, always confirmed.
    fn confirmed(&self, p: &PresenceParams) -> bool {
        self.token != TokenState::Never
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
        let mut buf = Vec::with_capacity(64 + entries.len() * 512);
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
