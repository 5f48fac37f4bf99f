//! Counters kept on the hot path (atomics) and the Prometheus text rendering of all metrics.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::fleet::tasks::TaskStatus;

/// The kinds of Zenoh message the server counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgKind {
    State,
    Event,
    Legacy,
    Heartbeat,
    Liveliness,
}

impl MsgKind {
    const ALL: [MsgKind; 5] = [
        MsgKind::State,
        MsgKind::Event,
        MsgKind::Legacy,
        MsgKind::Heartbeat,
        MsgKind::Liveliness,
    ];

    fn label(self) -> &'static str {
        match self {
            MsgKind::State => "state",
            MsgKind::Event => "event",
            MsgKind::Legacy => "legacy",
            MsgKind::Heartbeat => "heartbeat",
            MsgKind::Liveliness => "liveliness",
        }
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    messages: [AtomicU64; 5],
    rejected: AtomicU64,
    duplicate_events: AtomicU64,
    /// Events refused as implausible (epoch ahead of the server's clock, seq out of reach).
    implausible_events: AtomicU64,
    /// E-stop commands and releases sent to robots but not yet persisted (1 while any).
    estop_unpersisted: AtomicU64,
    commands_sent: AtomicU64,
    /// Tasks that ended COMPLETED, FAILED, CANCELED (in that order) since the start.
    outcomes: [AtomicU64; 3],
    /// 1 while this replica holds the dispatch lease (always 1 without replicas).
    leader: AtomicU64,
    /// The fencing token of the current term (0: not leading, or no replicas).
    lease_token: AtomicU64,
    leader_terms: AtomicU64,
    commands_suppressed: AtomicU64,
    /// WebSocket clients dropped for not keeping up with their send queue.
    ws_slow_consumers_dropped: AtomicU64,
}

/// The terminal statuses counted by `fms_task_outcomes_total`.
const OUTCOMES: [TaskStatus; 3] = [
    TaskStatus::Completed,
    TaskStatus::Failed,
    TaskStatus::Canceled,
];

/// Gauges read at scrape time.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub robots_total: usize,
    pub robots_online: usize,
    pub robots_stale: usize,
    pub tasks_active: usize,
    pub tasks_by_status: HashMap<TaskStatus, u64>,
    /// The store did not answer: task gauges are left out rather than shown as zero.
    pub store_down: bool,
    pub ws_clients: usize,
    // --- Store write health (issue 15): see `Store::write_health` ---
    /// The store's last write (commit or probe) failed in the database.
    pub store_write_failing: bool,
    /// Writes (commits and probes) that failed in the database since the start.
    pub store_write_failures: u64,
}

impl Metrics {
    pub fn message(&self, kind: MsgKind) {
        self.messages[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    pub fn duplicate_event(&self) {
        self.duplicate_events.fetch_add(1, Ordering::Relaxed);
    }

    pub fn implausible_event(&self) {
        self.implausible_events.fetch_add(1, Ordering::Relaxed);
    }

    pub fn implausible_events_total(&self) -> u64 {
        self.implausible_events.load(Ordering::Relaxed)
    }

    pub fn set_estop_unpersisted(&self, pending: bool) {
        self.estop_unpersisted
            .store(u64::from(pending), Ordering::Relaxed);
    }

    /// A task reached `status`; terminal statuses are counted by outcome.
    pub fn task_outcome(&self, status: TaskStatus) {
        if let Some(i) = OUTCOMES.iter().position(|s| *s == status) {
            self.outcomes[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// This replica leads under `token` (`None`: it follows).
    pub fn set_leader(&self, token: Option<u64>) {
        self.leader
            .store(u64::from(token.is_some()), Ordering::Relaxed);
        self.lease_token
            .store(token.unwrap_or(0), Ordering::Relaxed);
        if token.is_some() {
            self.leader_terms.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed) == 1
    }

    /// A command not sent because this replica does not (or no longer) lead.
    pub fn command_suppressed(&self) {
        self.commands_suppressed.fetch_add(1, Ordering::Relaxed);
    }

    /// A WebSocket client was dropped for not keeping up.
    pub fn ws_slow_consumer_dropped(&self) {
        self.ws_slow_consumers_dropped
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn command_sent(&self) {
        self.commands_sent.fetch_add(1, Ordering::Relaxed);
    }

    pub fn messages_total(&self, kind: MsgKind) -> u64 {
        self.messages[kind as usize].load(Ordering::Relaxed)
    }

    pub fn rejected_total(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self, s: &Snapshot) -> String {
        let mut out = String::with_capacity(2048);
        let mut gauge = |name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(
            "fms_robots_total",
            "Robots known to the server.",
            s.robots_total as u64,
        );
        gauge(
            "fms_robots_online",
            "Robots currently ONLINE.",
            s.robots_online as u64,
        );
        gauge(
            "fms_robots_stale",
            "Robots currently STALE.",
            s.robots_stale as u64,
        );
        gauge(
            "fms_store_up",
            "1 if the store answered this scrape's task count.",
            u64::from(!s.store_down),
        );
        if !s.store_down {
            gauge(
                "fms_tasks_active",
                "Tasks assigned to or running on a robot.",
                s.tasks_active as u64,
            );
        }
        gauge(
            "fms_estop_unpersisted",
            "1 while an e-stop or release was sent to robots but the store has not persisted it yet (it is re-sent until it has).",
            self.estop_unpersisted.load(Ordering::Relaxed),
        );
        gauge(
            "fms_websocket_clients",
            "Connected WebSocket clients.",
            s.ws_clients as u64,
        );
        gauge(
            "fms_leader",
            "1 while this replica holds the dispatch lease (always 1 for a single server).",
            self.leader.load(Ordering::Relaxed),
        );
        gauge(
            "fms_lease_token",
            "Fencing token of this replica's current lease term (0 when not leading).",
            self.lease_token.load(Ordering::Relaxed),
        );
        if !s.store_down {
            let _ = writeln!(
                out,
                "# HELP fms_tasks_total Tasks by status.\n# TYPE fms_tasks_total gauge"
            );
            for st in TaskStatus::ALL {
                let n = s.tasks_by_status.get(&st).copied().unwrap_or(0);
                let _ = writeln!(out, "fms_tasks_total{{status=\"{}\"}} {n}", st.as_str());
            }
        }
        let _ = writeln!(
            out,
            "# HELP fms_zenoh_messages_total Zenoh messages received, by kind.\n# TYPE fms_zenoh_messages_total counter"
        );
        for k in MsgKind::ALL {
            let _ = writeln!(
                out,
                "fms_zenoh_messages_total{{kind=\"{}\"}} {}",
                k.label(),
                self.messages_total(k)
            );
        }
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        counter(
            "fms_zenoh_messages_rejected_total",
            "Zenoh messages dropped as malformed or invalid.",
            self.rejected_total(),
        );
        counter(
            "fms_zenoh_events_duplicate_total",
            "Robot events ignored as already applied.",
            self.duplicate_events.load(Ordering::Relaxed),
        );
        counter(
            "fms_zenoh_events_implausible_total",
            "Robot events refused as implausible (epoch ahead of the server's clock, seq out of reach); never stored.",
            self.implausible_events_total(),
        );
        counter(
            "fms_zenoh_commands_sent_total",
            "Commands published to robots.",
            self.commands_sent.load(Ordering::Relaxed),
        );
        counter(
            "fms_leader_terms_total",
            "Lease terms this replica has begun leading.",
            self.leader_terms.load(Ordering::Relaxed),
        );
        counter(
            "fms_commands_suppressed_total",
            "Commands not sent because this replica did not hold the dispatch lease.",
            self.commands_suppressed.load(Ordering::Relaxed),
        );
        counter(
            "fms_ws_slow_consumers_dropped_total",
            "WebSocket clients disconnected (close code 1008) for falling too far behind.",
            self.ws_slow_consumers_dropped.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP fms_task_outcomes_total Tasks that ended, by outcome, since the server started.\n# TYPE fms_task_outcomes_total counter"
        );
        for (status, n) in OUTCOMES.iter().zip(&self.outcomes) {
            let _ = writeln!(
                out,
                "fms_task_outcomes_total{{outcome=\"{}\"}} {}",
                status.as_str(),
                n.load(Ordering::Relaxed)
            );
        }
        // --- Store write health (issue 15). `fms_store_up` says the store answers reads;
        // these say whether it takes writes (a full disk fails writes, not reads).
        let _ = writeln!(
            out,
            "# HELP fms_store_writable 1 if the store's last write (a commit, or a probe while writes fail) succeeded.\n\
             # TYPE fms_store_writable gauge\nfms_store_writable {}",
            u64::from(!s.store_write_failing)
        );
        let _ = writeln!(
            out,
            "# HELP fms_store_write_failures_total Writes (commits and probes) the store failed to make since the start.\n\
             # TYPE fms_store_write_failures_total counter\nfms_store_write_failures_total {}",
            s.store_write_failures
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_required_names() {
        let m = Metrics::default();
        m.message(MsgKind::State);
        m.message(MsgKind::State);
        m.rejected();
        let text = m.render(&Snapshot {
            robots_total: 3,
            robots_online: 2,
            ..Snapshot::default()
        });
        for needle in [
            "fms_robots_total 3",
            "fms_robots_online 2",
            "fms_tasks_active 0",
            "fms_tasks_total{status=\"COMPLETED\"} 0",
            "fms_zenoh_messages_total{kind=\"state\"} 2",
            "fms_zenoh_messages_rejected_total 1",
            "fms_store_writable 1",
            "fms_store_write_failures_total 0",
            "fms_ws_slow_consumers_dropped_total 0",
        ] {
            assert!(text.contains(needle), "missing {needle}:\n{text}");
        }
    }

    #[test]
    fn renders_store_write_health() {
        let text = Metrics::default().render(&Snapshot {
            store_write_failing: true,
            store_write_failures: 7,
            ..Snapshot::default()
        });
        for needle in [
            "\n# TYPE fms_store_writable gauge\nfms_store_writable 0\n",
            "\n# TYPE fms_store_write_failures_total counter\nfms_store_write_failures_total 7\n",
        ] {
            assert!(text.contains(needle), "missing {needle:?}:\n{text}");
        }
    }
}
