//! N simulated robots in this process: the same `SimRobot` and `Executor` as
//! `fms_agent --interface mock`, one Zenoh publisher and liveliness token per robot,
//! publishing `RobotState` at a fixed rate over one client session.
//!
//! Robots are split across a few OS threads; each thread spreads its robots' ticks evenly
//! over the period (so 10,000 robots at 10 Hz is a steady 100 kHz, not bursts).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fms_agent::executor::{Action, Effects, Executor};
use fms_agent::robot::sim::{SimParams, SimRobot};
use fms_agent::robot::RobotInterface;
use fms_msgs::keys::{self, RobotTopic};
use fms_msgs::{
    decode, encode, unix_ms, CancelCommand, EstopCommand, Pose, RobotId, TaskCommand, TeleopCommand,
};
use zenoh::bytes::ZBytes;
use zenoh::liveliness::LivelinessToken;
use zenoh::pubsub::{Publisher, Subscriber};
use zenoh::qos::CongestionControl;
use zenoh::{Session, Wait};

use crate::stats::SentTimes;

/// Robot ids are `bench-00000` … so a key maps back to an index without a lookup.
pub const ID_PREFIX: &str = "bench-";

pub fn robot_id(i: usize) -> RobotId {
    RobotId::new(format!("{ID_PREFIX}{i:05}")).expect("valid robot id")
}

/// The robot index of a `bench-NNNNN` id.
pub fn robot_index(id: &str) -> Option<usize> {
    id.strip_prefix(ID_PREFIX)?.parse().ok()
}

/// Opens a client session to `endpoint`, as fms_agent does (no scouting).
pub async fn client_session(endpoint: &str) -> anyhow::Result<Session> {
    let mut c = zenoh::Config::default();
    let set = |c: &mut zenoh::Config, k: &str, v: &str| {
        c.insert_json5(k, v)
            .map_err(|e| anyhow::anyhow!("zenoh config {k}: {e}"))
    };
    set(&mut c, "mode", "\"client\"")?;
    set(&mut c, "connect/endpoints", &format!("[{endpoint:?}]"))?;
    set(&mut c, "scouting/multicast/enabled", "false")?;
    zenoh::open(c)
        .await
        .map_err(|e| anyhow::anyhow!("zenoh: {e}"))
}

/// When each task command reached its robot (for command round trips).
pub type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

struct Robot {
    index: usize,
    sim: SimRobot,
    exec: Executor,
    seq: u64,
    publisher: Publisher<'static>,
    event_key: String,
}

struct Command {
    local: usize,
    topic: RobotTopic,
    bytes: Vec<u8>,
    at: Instant,
}

/// What the robot threads count.
#[derive(Debug, Default)]
pub struct FleetCounters {
    /// States handed to Zenoh.
    pub published: AtomicU64,
    /// Events published.
    pub events: AtomicU64,
    /// Slots that started more than a whole period late (the bench could not keep up).
    pub late_slots: AtomicU64,
}

/// The running fleet; `stop()` ends it.
pub struct Fleet {
    pub counters: Arc<FleetCounters>,
    pub arrivals: Arrivals,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    _tokens: Vec<LivelinessToken>,
    _commands: Subscriber<()>,
}

pub struct FleetParams {
    pub robots: usize,
    pub rate_hz: f64,
    pub threads: usize,
    pub tokens: bool,
}

impl Fleet {
    /// Declares every robot's publisher and token, then starts publishing.
    pub async fn start(
        session: &Session,
        p: &FleetParams,
        sent: Arc<SentTimes>,
    ) -> anyhow::Result<Fleet> {
        let threads = p.threads.clamp(1, p.robots.max(1));
        let counters = Arc::new(FleetCounters::default());
        let arrivals: Arrivals = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let mut shards: Vec<Vec<Robot>> = (0..threads).map(|_| Vec::new()).collect();
        let mut tokens = Vec::new();
        let side = (p.robots as f64).sqrt().ceil().max(1.0);
        for i in 0..p.robots {
            let id = robot_id(i);
            let publisher = session
                .declare_publisher(keys::robot_key(&id, RobotTopic::State))
                .congestion_control(CongestionControl::Drop)
                .await
                .map_err(|e| anyhow::anyhow!("declare publisher: {e}"))?;
            if p.tokens {
                tokens.push(
                    session
                        .liveliness()
                        .declare_token(keys::robot_key(&id, RobotTopic::Alive))
                        .await
                        .map_err(|e| anyhow::anyhow!("declare token: {e}"))?,
                );
            }
            let start = Pose::new(
                2.0 * (i as f64 % side),
                2.0 * (i as f64 / side).floor(),
                0.0,
            );
            let params = SimParams {
                seed: i as u64 + 1,
                ..SimParams::default()
            };
            shards[i % threads].push(Robot {
                index: i,
                sim: SimRobot::new(params, start),
                exec: Executor::new(unix_ms()),
                seq: 0,
                publisher,
                event_key: keys::robot_key(&id, RobotTopic::Event),
            });
        }
        // One wildcard subscriber for every robot's commands (the agent has one per robot;
        // one here keeps 10,000 robots cheap for the benchmark process itself).
        let (senders, receivers): (Vec<Sender<Command>>, Vec<Receiver<Command>>) =
            (0..threads).map(|_| mpsc::channel()).unzip();
        let commands = session
            .declare_subscriber(format!("{}/*/cmd/*", keys::ROBOT_PREFIX))
            .callback(move |sample| {
                let at = Instant::now();
                let Ok((id, topic)) = keys::parse_robot_key(sample.key_expr().as_str()) else {
                    return;
                };
                let Some(index) = robot_index(id.as_str()) else {
                    return;
                };
                if let Some(tx) = senders.get(index % threads) {
                    let _ = tx.send(Command {
                        local: index / threads,
                        topic,
                        bytes: sample.payload().to_bytes().into_owned(),
                        at,
                    });
                }
            })
            .await
            .map_err(|e| anyhow::anyhow!("declare subscriber: {e}"))?;

        let period = Duration::from_secs_f64(1.0 / p.rate_hz);
        let mut handles = Vec::new();
        for (robots, rx) in shards.into_iter().zip(receivers) {
            let (session, stop, counters, sent, arrivals) = (
                session.clone(),
                stop.clone(),
                counters.clone(),
                sent.clone(),
                arrivals.clone(),
            );
            handles.push(
                std::thread::Builder::new()
                    .name("bench-robots".into())
                    .spawn(move || {
                        shard_loop(
                            robots, period, &session, &stop, &counters, &sent, &arrivals, rx,
                        )
                    })?,
            );
        }
        Ok(Fleet {
            counters,
            arrivals,
            stop,
            threads: handles,
            _tokens: tokens,
            _commands: commands,
        })
    }

    pub fn published(&self) -> u64 {
        self.counters.published.load(Ordering::Relaxed)
    }

    /// Stops publishing (tokens stay declared until the fleet is dropped).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop();
    }
}

#[allow(clippy::too_many_arguments)]
fn shard_loop(
    mut robots: Vec<Robot>,
    period: Duration,
    session: &Session,
    stop: &AtomicBool,
    counters: &FleetCounters,
    sent: &SentTimes,
    arrivals: &Arrivals,
    commands: Receiver<Command>,
) {
    if robots.is_empty() {
        return;
    }
    // Each period is cut into slots; slot s ticks robots s, s+slots, s+2*slots, …
    let slots = robots.len().min(500);
    let slot_len = period / slots as u32;
    let mut next = Instant::now();
    let mut slot = 0;
    while !stop.load(Ordering::Relaxed) {
        while let Ok(cmd) = commands.try_recv() {
            if let Some(robot) = robots.get_mut(cmd.local) {
                robot.on_command(cmd, session, counters, arrivals);
            }
        }
        let now_ms = unix_ms();
        let mut n = 0;
        for robot in robots.iter_mut().skip(slot).step_by(slots) {
            robot.tick(now_ms, session, counters, sent);
            n += 1;
        }
        counters.published.fetch_add(n, Ordering::Relaxed);
        slot = (slot + 1) % slots;
        next += slot_len;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else if now - next > period {
            counters.late_slots.fetch_add(1, Ordering::Relaxed);
            next = now;
        }
    }
}

impl Robot {
    fn tick(&mut self, now_ms: u64, session: &Session, c: &FleetCounters, sent: &SentTimes) {
        let snap = self.sim.poll(now_ms);
        self.seq += 1;
        let (fx, state) = self.exec.on_poll(&snap, self.seq, now_ms);
        let payload = encode(&state);
        sent.record(self.index, self.seq);
        let _ = self.publisher.put(payload).wait();
        self.apply(fx, session, c);
    }

    fn on_command(&mut self, cmd: Command, session: &Session, c: &FleetCounters, a: &Arrivals) {
        let now = unix_ms();
        let fx = match cmd.topic {
            RobotTopic::CmdTask => decode::<TaskCommand>(&cmd.bytes).map(|t| {
                if let Ok(mut a) = a.lock() {
                    a.entry(t.task_id.to_string()).or_insert(cmd.at);
                }
                self.exec.on_task(t, now)
            }),
            RobotTopic::CmdCancel => {
                decode::<CancelCommand>(&cmd.bytes).map(|x| self.exec.on_cancel(x, now))
            }
            RobotTopic::CmdEstop => {
                decode::<EstopCommand>(&cmd.bytes).map(|x| self.exec.on_estop(x, now))
            }
            RobotTopic::CmdTeleop => {
                decode::<TeleopCommand>(&cmd.bytes).map(|x| self.exec.on_teleop(x, now))
            }
            _ => return,
        };
        if let Ok(fx) = fx {
            self.apply(fx, session, c);
        }
    }

    /// What fms_agent's loop does with the executor's effects: act on the robot, publish events.
    fn apply(&mut self, fx: Effects, session: &Session, c: &FleetCounters) {
        let Effects {
            actions,
            mut events,
        } = fx;
        let now = unix_ms();
        for action in actions {
            match action {
                Action::Navigate(poses) => {
                    if let Err(e) = self.sim.navigate(&poses, now) {
                        events.extend(self.exec.on_navigate_refused(e.to_string(), now).events);
                    }
                }
                Action::CancelNavigation => self.sim.cancel(now),
                Action::SetEstop(on) => self.sim.set_estop(on, now),
                Action::Teleop { cmd, until_ms } => self.sim.teleop(cmd, until_ms, now),
                Action::Dock => self.sim.dock(now),
            }
        }
        for event in events {
            let _ = session
                .put(&self.event_key, encode(&event))
                .congestion_control(CongestionControl::Block)
                .wait();
            c.events.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One real encoded `RobotState` per robot, as the flood publishes it.
pub fn sample_payloads(robots: usize) -> Vec<Vec<u8>> {
    (0..robots)
        .map(|i| {
            let mut sim = SimRobot::new(SimParams::default(), Pose::new(i as f64, 1.5, 0.25));
            let now = unix_ms();
            let snap = sim.poll(now);
            let (_, state) = Executor::new(now).on_poll(&snap, 1_000_000 + i as u64, now);
            encode(&state)
        })
        .collect()
}

/// Publishes as fast as Zenoh takes them (congestion control Block: the receiver's pace)
/// on every robot's state key, from `threads` threads, until `stop`. Returns the count.
pub async fn flood(
    session: &Session,
    robots: usize,
    threads: usize,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(Arc<AtomicU64>, Vec<JoinHandle<()>>)> {
    let count = Arc::new(AtomicU64::new(0));
    let payloads = sample_payloads(robots);
    let threads = threads.clamp(1, robots.max(1));
    let mut shards: Vec<Vec<(Publisher<'static>, ZBytes)>> =
        (0..threads).map(|_| Vec::new()).collect();
    for (i, payload) in payloads.into_iter().enumerate() {
        let publisher = session
            .declare_publisher(keys::robot_key(&robot_id(i), RobotTopic::State))
            .congestion_control(CongestionControl::Block)
            .await
            .map_err(|e| anyhow::anyhow!("declare publisher: {e}"))?;
        shards[i % threads].push((publisher, ZBytes::from(payload)));
    }
    let handles = shards
        .into_iter()
        .map(|pubs| {
            let (stop, count) = (stop.clone(), count.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                'outer: loop {
                    for (publisher, payload) in &pubs {
                        let _ = publisher.put(payload.clone()).wait();
                        n += 1;
                        if n % 256 == 0 {
                            count.fetch_add(256, Ordering::Relaxed);
                            if stop.load(Ordering::Relaxed) {
                                break 'outer;
                            }
                        }
                    }
                }
                count.fetch_add(n % 256, Ordering::Relaxed);
            })
        })
        .collect();
    Ok((count, handles))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_back_to_indexes() {
        assert_eq!(robot_id(42).as_str(), "bench-00042");
        assert_eq!(robot_index("bench-00042"), Some(42));
        assert_eq!(robot_index("bench-123456"), Some(123456));
        assert_eq!(robot_index("tb3_1"), None);
    }

    #[test]
    fn sample_payload_is_a_real_state_of_about_190_bytes() {
        let p = sample_payloads(2);
        let state: fms_msgs::RobotState = decode(&p[1]).unwrap();
        state.validate().unwrap();
        assert!((150..260).contains(&p[1].len()), "{}", p[1].len());
    }
}
