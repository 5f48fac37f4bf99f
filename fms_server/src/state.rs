//! The server's shared state: the registry of robots, the hub that fans updates out to live
//! clients, the metrics, the store and the fleet e-stop flag. The HTTP handlers, the Zenoh
//! ingest, the ticker and the coordinator all hold it; the helpers of its writers live here.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use fms_msgs::RobotMode;

use crate::fleet::engine::RobotView;
use crate::fleet::registry::{Presence, PresenceChange, Registry};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::store::Store;

/// State shared by the HTTP handlers, the Zenoh ingest, the ticker and the coordinator.
pub struct ServerState {
    registry: RwLock<Registry>,
    pub metrics: Metrics,
    pub hub: Hub,
    pub store: Arc<dyn Store>,
    fleet_estop: AtomicBool,
}

impl ServerState {
    pub fn new(registry: Registry, store: Arc<dyn Store>, fleet_estop: bool) -> Self {
        Self {
            registry: RwLock::new(registry),
            metrics: Metrics::default(),
            hub: Hub::new(),
            store,
            fleet_estop: AtomicBool::new(fleet_estop),
        }
    }

    /// Read access to the registry. A panic while holding the lock cannot leave the
    /// registry half-updated in a harmful way (each update is one field write), so a
    /// poisoned lock is used as is.
    pub fn registry(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn registry_mut(&self) -> RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Re-evaluates presence staleness (the ticker): the changes, for the coordinator.
    pub fn tick_presence(&self, now: u64) -> Vec<PresenceChange> {
        self.registry_mut().tick(now)
    }

    pub fn fleet_estop(&self) -> bool {
        self.fleet_estop.load(Ordering::Relaxed)
    }

    /// Shows the fleet e-stop as the coordinator (or, on a follower, the store) has it.
    pub(crate) fn set_fleet_estop(&self, engaged: bool) {
        self.fleet_estop.store(engaged, Ordering::Relaxed);
    }

    /// Robots as the engine sees them.
    pub fn robot_views(&self) -> Vec<RobotView> {
        let reg = self.registry();
        reg.robots()
            .map(|e| {
                let s = e.state.as_ref();
                RobotView {
                    id: e.id.clone(),
                    online: e.presence == Presence::Online && s.is_some(),
                    // A legacy robot reports ERROR as the end of a failed task and takes the
                    // next one in that state (its protocol has no other way out of it).
                    idle: s.is_some_and(|s| {
                        (matches!(s.mode, RobotMode::Idle | RobotMode::Charging)
                            || (e.legacy && s.mode == RobotMode::Error))
                            && s.task.is_none()
                    }),
                    estopped: s.is_some_and(|s| s.mode == RobotMode::Estopped),
                    charging: s
                        .is_some_and(|s| s.battery.charging || s.mode == RobotMode::Charging),
                    battery: s.map_or(0.0, |s| s.battery.percentage),
                    x: s.map_or(0.0, |s| s.pose.x),
                    y: s.map_or(0.0, |s| s.pose.y),
                    current_task: s.and_then(|s| s.task.as_ref().map(|t| t.task_id.clone())),
                    legacy: e.legacy,
                }
            })
            .collect()
    }
}
