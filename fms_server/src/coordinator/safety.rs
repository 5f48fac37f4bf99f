//! E-stops and releases never wait for the store: their commands go to the robots first,
//! then their writes (the fleet e-stop setting, the audit) are committed. When the commit
//! fails the change holds in memory, its commands are re-sent and its writes retried every
//! second until the store takes them, and the caller is told so.

use std::collections::HashMap;

use fms_msgs::codec::JsonValue;
use fms_msgs::{EstopCommand, RobotId};

use super::{Command, CoordError, Coordinator};
use crate::fleet::engine::{Effect, FLEET_ESTOP_SETTING};
use crate::store::{StoreError, Write, WriteBatch};

/// How often unpersisted e-stops are re-sent and their writes retried.
const RETRY_EVERY_MS: u64 = 1_000;
/// Audit rows kept for a failing store; older ones are dropped (and counted in the log).
const MAX_PENDING_AUDIT: usize = 10_000;

/// What an e-stop or release did.
#[derive(Debug, Clone, PartialEq)]
pub struct EstopDone {
    /// Robots the command was sent to.
    pub robots: usize,
    /// Set when the command was sent but could not be persisted (it holds in memory).
    pub warning: Option<String>,
}

/// E-stop changes sent to robots but not yet in the store.
#[derive(Debug, Default)]
pub(super) struct Unpersisted {
    /// The latest value of each setting (the fleet e-stop).
    settings: HashMap<String, JsonValue>,
    /// Audit rows (and replica answers) of those changes, in order.
    writes: Vec<Write>,
    /// The latest e-stop command of each robot, re-sent until persisted.
    commands: HashMap<RobotId, EstopCommand>,
    dropped: usize,
    since_ms: u64,
    last_try_ms: u64,
}

impl Unpersisted {
    pub(super) fn is_empty(&self) -> bool {
        self.settings.is_empty() && self.writes.is_empty()
    }

    /// The fleet e-stop the store has not taken yet, if any.
    pub(super) fn fleet_estop(&self) -> Option<bool> {
        self.settings
            .get(FLEET_ESTOP_SETTING)
            .and_then(JsonValue::as_bool)
    }

    fn batch(&self) -> Vec<Write> {
        let mut writes: Vec<Write> = self
            .settings
            .iter()
            .map(|(key, value)| Write::Setting {
                key: key.clone(),
                value: value.clone(),
            })
            .collect();
        writes.extend(self.writes.iter().cloned());
        writes
    }

    /// Keeps the audit rows of a change the store refused.
    fn keep(&mut self, writes: Vec<Write>, now: u64) {
        if self.since_ms == 0 {
            self.since_ms = now;
        }
        self.writes.extend(writes);
        if self.writes.len() > MAX_PENDING_AUDIT {
            let over = self.writes.len() - MAX_PENDING_AUDIT;
            self.writes.drain(..over);
            self.dropped += over;
        }
    }
}

impl Coordinator {
    /// Carries out an e-stop or release: its commands and fleet event go out at once; then
    /// its writes, with any task changes (a release dispatches), are committed. Returns a
    /// warning when the store refused them: the change then holds in memory and is retried.
    pub(super) async fn apply_estop(
        &mut self,
        fx: Vec<Effect>,
        extra: Vec<Write>,
        now: u64,
    ) -> Result<Option<String>, CoordError> {
        let mut rest = Vec::new();
        let mut sent = Vec::new();
        for effect in fx {
            match effect {
                Effect::SendEstop(robot, cmd) => {
                    self.send_command(&robot, Command::Estop(&cmd), true);
                    sent.push((robot, cmd));
                }
                Effect::System(kind) => self.system_event(kind),
                other => rest.push(other),
            }
        }
        // A command still re-sent for an earlier change is superseded by this one.
        for (robot, cmd) in &sent {
            if let Some(old) = self.unpersisted.commands.get_mut(robot) {
                *old = cmd.clone();
            }
        }
        let settings: Vec<(String, JsonValue)> = rest
            .iter()
            .filter_map(|e| match e {
                Effect::Setting(key, value) => Some((key.clone(), value.clone())),
                _ => None,
            })
            .collect();
        // Held in memory during the commit: a failed commit reloads the engine from the
        // store, which must not undo this change.
        let before = self.unpersisted.settings.clone();
        self.unpersisted.settings.extend(settings.iter().cloned());
        match self.apply(rest, extra.clone()).await {
            Ok(()) => {
                // The store has the latest value; an older one must not be retried over it.
                for (key, _) in &settings {
                    self.unpersisted.settings.remove(key);
                }
                self.unpersisted.last_try_ms = 0;
                if self.unpersisted.is_empty() {
                    self.unpersisted = Unpersisted::default();
                    self.shared.metrics.set_estop_unpersisted(false);
                }
                Ok(None)
            }
            Err(CoordError::Store(e)) => {
                self.unpersisted.keep(extra, now);
                self.unpersisted.commands.extend(sent);
                self.unpersisted.last_try_ms = now;
                self.shared.metrics.set_estop_unpersisted(true);
                tracing::error!(
                    "e-stop change sent to the robots but not persisted: {e}; it holds in memory, \
                     is re-sent every second and is persisted as soon as the store takes writes"
                );
                Ok(Some(format!(
                    "sent to the robots, but not persisted ({e}); it holds while this server runs \
                     and is retried until the store accepts it"
                )))
            }
            Err(e) => {
                self.unpersisted.settings = before;
                Err(e)
            }
        }
    }

    /// Every second while e-stop changes wait for the store: re-sends their commands and
    /// tries to commit their writes.
    pub(super) async fn retry_unpersisted(&mut self, now: u64) {
        if self.unpersisted.is_empty()
            || now.saturating_sub(self.unpersisted.last_try_ms) < RETRY_EVERY_MS
        {
            return;
        }
        self.unpersisted.last_try_ms = now;
        for (robot, cmd) in &self.unpersisted.commands {
            self.send_command(robot, Command::Estop(cmd), true);
        }
        let Ok(fence) = self.fence() else {
            return;
        };
        let batch = WriteBatch {
            fence,
            writes: self.unpersisted.batch(),
        };
        match self.shared.store.commit(&batch).await {
            Ok(()) => {
                let waited = now.saturating_sub(self.unpersisted.since_ms);
                if self.unpersisted.dropped > 0 {
                    tracing::warn!(
                        "{} audit rows of e-stop changes were dropped while the store failed",
                        self.unpersisted.dropped
                    );
                }
                tracing::info!("e-stop changes persisted after {waited} ms");
                self.unpersisted = Unpersisted::default();
                self.shared.metrics.set_estop_unpersisted(false);
            }
            Err(StoreError::Fenced(_)) => {
                // Another replica leads: it has the store's view of the e-stop.
                self.unpersisted = Unpersisted::default();
                self.shared.metrics.set_estop_unpersisted(false);
            }
            Err(e) => {
                tracing::debug!("e-stop changes still not persisted: {e}");
            }
        }
    }
}
