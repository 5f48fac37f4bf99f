// Unit tests of the fleet store: batch unpacking, per-robot coalescing, ordering, trails, resyncs, tasks.

import { beforeEach, describe, expect, it } from 'vitest';
import type { LiveMessage, Presence, RobotEntry, RobotState, Task } from '../../shared/types';
import { addTrailPoint, BATTERY_EVERY_MS, FINISHED_KEEP, FleetStore, TRAIL_MAX } from './fleetStore';

let now = 1_000_000;
const clock = () => now;

function state(x: number, y: number, stamp: number, extra: Partial<RobotState> = {}): RobotState {
  return {
    protocol: 1,
    seq: stamp,
    stamp_ms: stamp,
    pose: { x, y, yaw: 0, frame: 'map' },
    velocity: { linear: 0, angular: 0 },
    battery: { percentage: 80, charging: false },
    mode: 'IDLE',
    ...extra,
  };
}

const su = (id: string, s: RobotState, presence: 'ONLINE' | 'STALE' | 'OFFLINE' = 'ONLINE'): LiveMessage => ({
  type: 'state_update',
  robot_id: id,
  presence,
  state: s,
});

function task(id: string, status: Task['status'], updated: number, extra: Partial<Task> = {}): Task {
  return {
    id,
    robot_id: null,
    assigned_robot: 'r1',
    goal: { pose: { x: 3, y: 1, yaw: 0 } },
    priority: 'normal',
    status,
    parameters: {},
    progress: 0,
    attempts: 0,
    max_attempts: 3,
    retries: 0,
    failures: 0,
    created_ms: updated,
    updated_ms: updated,
    history: [],
    ...extra,
  };
}

/** A robot as `GET /api/robots` lists it. */
function entry(id: string, presence: Presence, s: RobotState): RobotEntry {
  return {
    id,
    presence,
    legacy: false,
    first_seen_ms: s.stamp_ms,
    last_seen_ms: s.stamp_ms,
    state: s,
    robot_id: id,
    pose: null,
    battery: s.battery.percentage,
    status: s.mode.toLowerCase(),
    last_seen: s.stamp_ms / 1000,
  };
}

let store: FleetStore;
beforeEach(() => {
  now = 1_000_000;
  store = new FleetStore(clock);
});

describe('WebSocket messages', () => {
  it('unpacks batches (also nested) in order', () => {
    store.ingest({
      type: 'batch',
      messages: [su('r1', state(1, 1, 10)), { type: 'batch', messages: [su('r2', state(2, 2, 10))] }, { type: 'heartbeat', stamp_ms: 5 }],
    });
    store.flush();
    expect(store.robotIds()).toEqual(['r1', 'r2']);
    expect(store.robots.get('r2')!.state!.pose.x).toBe(2);
  });

  it('coalesces state updates per robot until flush: the latest wins', () => {
    const v = store.version;
    for (let i = 1; i <= 50; i++) store.ingest(su('r1', state(i / 10, 0, i)));
    store.ingest(su('r2', state(9, 9, 1)));
    expect(store.pendingCount()).toBe(2);
    expect(store.version).toBe(v); // nothing applied yet: no render work per message
    expect(store.flush()).toBe(2);
    expect(store.robots.get('r1')!.state!.stamp_ms).toBe(50);
    expect(store.pendingCount()).toBe(0);
  });

  it('keeps the newer state when an older one arrives late', () => {
    store.ingest(su('r1', state(5, 0, 20)));
    store.ingest(su('r1', state(1, 0, 10)));
    store.flush();
    expect(store.robots.get('r1')!.state!.pose.x).toBe(5);
    store.ingest(su('r1', state(0, 0, 15)));
    store.flush();
    expect(store.robots.get('r1')!.state!.pose.x).toBe(5);
  });

  it('applies queued states before a presence event, so the event wins', () => {
    store.ingest(su('r1', state(1, 1, 10), 'ONLINE'));
    store.ingest({ type: 'system_event', event: 'robot_offline', robot_id: 'r1', stamp_ms: 11 });
    store.flush();
    expect(store.robots.get('r1')!.presence).toBe('OFFLINE');
    expect(store.robots.get('r1')!.events[0].text).toMatch(/offline/);
  });

  it('asks for a robot reload when an event names an unknown robot', () => {
    store.ingest({ type: 'system_event', event: 'robot_online', robot_id: 'new', stamp_ms: 1 });
    expect(store.needRobots).toBe(true);
  });

  it('records e-stop events and asks for fresh fleet totals', () => {
    store.ingest({ type: 'system_event', event: 'estop', engaged: true, stamp_ms: 1 });
    expect(store.events[0].text).toBe('FLEET E-STOP engaged');
    expect(store.needFleet).toBe(true);
  });

  it('ingestText ignores garbage', () => {
    expect(store.ingestText('not json')).toBe(false);
    expect(store.ingestText(JSON.stringify(su('r1', state(1, 1, 1))))).toBe(true);
  });

  it('notes mode changes as robot events', () => {
    store.applyState('r1', 'ONLINE', state(0, 0, 1));
    store.applyState('r1', 'ONLINE', state(0, 0, 2, { mode: 'ESTOPPED' }));
    expect(store.robots.get('r1')!.events[0]).toMatchObject({ text: 'mode IDLE → ESTOPPED', level: 'warn' });
  });
});

describe('trails and battery history', () => {
  it('adds a trail point only after a minimum move', () => {
    const t: number[] = [];
    expect(addTrailPoint(t, 0, 0)).toBe(true);
    expect(addTrailPoint(t, 0.01, 0)).toBe(false);
    expect(addTrailPoint(t, 0.1, 0)).toBe(true);
    expect(t).toEqual([0, 0, 0.1, 0]);
  });

  it('caps the trail length, keeping the newest points', () => {
    for (let i = 0; i < TRAIL_MAX + 40; i++) {
      store.applyState('r1', 'ONLINE', state(i, 0, i));
    }
    const trail = store.robots.get('r1')!.trail;
    expect(trail.length).toBe(2 * TRAIL_MAX);
    expect(trail[trail.length - 2]).toBe(TRAIL_MAX + 39);
    expect(trail[0]).toBe(40);
  });

  it('samples the battery at most every BATTERY_EVERY_MS', () => {
    for (let i = 0; i < 30; i++) {
      now += 100;
      store.applyState('r1', 'ONLINE', state(0, 0, i, { battery: { percentage: 90 - i, charging: false } }));
    }
    const b = store.robots.get('r1')!.battery;
    expect(b.length).toBe(1 + Math.floor((30 * 100 - 100) / BATTERY_EVERY_MS));
  });
});

describe('REST resync', () => {
  it('drops robots missing from the list unless heard from since the request started', () => {
    store.applyState('old', 'ONLINE', state(0, 0, 1));
    now += 10;
    const started = now;
    now += 10;
    store.applyState('live', 'ONLINE', state(0, 0, 1)); // arrived while the request was in flight
    store.replaceRobots([entry('r1', 'ONLINE', state(1, 1, 1))], started);
    expect(store.robotIds()).toEqual(['live', 'r1']);
  });

  it('keeps a live presence over the REST one while a live state is pending', () => {
    store.ingest(su('r1', state(1, 1, 20), 'ONLINE'));
    store.replaceRobots([entry('r1', 'STALE', state(1, 1, 10))], now);
    store.flush();
    expect(store.robots.get('r1')!.presence).toBe('ONLINE');
    expect(store.robots.get('r1')!.state!.stamp_ms).toBe(20);
  });

  it('replaces open tasks from REST but keeps tasks that arrived live meanwhile', () => {
    store.upsertTask(task('gone', 'ACTIVE', 1));
    const started = ++now;
    now++;
    store.ingest({ type: 'task_update', task: task('fresh', 'QUEUED', 2) });
    store.replaceTasks([task('t1', 'ACTIVE', 3)], started);
    expect([...store.tasks.keys()].sort()).toEqual(['fresh', 't1']);
  });
});

describe('tasks', () => {
  it('ignores older versions of a task', () => {
    store.upsertTask(task('t', 'ACTIVE', 10, { progress: 0.5 }));
    store.upsertTask(task('t', 'ASSIGNED', 5));
    expect(store.tasks.get('t')!.status).toBe('ACTIVE');
  });

  it('prefers the later lifecycle stage for updates in the same millisecond', () => {
    store.upsertTask(task('t', 'ASSIGNED', 10));
    store.upsertTask(task('t', 'QUEUED', 10));
    expect(store.tasks.get('t')!.status).toBe('ASSIGNED');
    store.upsertTask(task('t', 'QUEUED', 11)); // a later requeue is real
    expect(store.tasks.get('t')!.status).toBe('QUEUED');
  });

  it('logs status changes against the robot', () => {
    store.applyState('r1', 'ONLINE', state(0, 0, 1));
    store.upsertTask(task('t1234567890', 'ACTIVE', 10));
    store.upsertTask(task('t1234567890', 'COMPLETED', 20));
    expect(store.robots.get('r1')!.events[0]).toMatchObject({ level: 'ok', text: 'task t1234567 ACTIVE → COMPLETED' });
  });

  it('keeps every open task but only the newest finished ones', () => {
    for (let i = 0; i < FINISHED_KEEP + 20; i++) store.upsertTask(task(`done${i}`, 'COMPLETED', i));
    for (let i = 0; i < 30; i++) store.upsertTask(task(`open${i}`, 'QUEUED', i));
    expect(store.finishedTasks(1000).length).toBe(FINISHED_KEEP);
    expect(store.finishedTasks(1)[0].id).toBe(`done${FINISHED_KEEP + 19}`);
    expect(store.openTasks().length).toBe(30);
  });

  it('finds the task a robot works on, and notes unknown task ids to fetch', () => {
    store.applyState('r1', 'ONLINE', state(0, 0, 1, { task: { task_id: 'tx', progress: 0.2 } }));
    expect(store.missingTasks.has('tx')).toBe(true);
    store.upsertTask(task('tx', 'ACTIVE', 5));
    expect(store.missingTasks.has('tx')).toBe(false);
    expect(store.taskOf('r1')!.id).toBe('tx');
    store.applyState('r2', 'ONLINE', state(0, 0, 1));
    store.upsertTask(task('ty', 'ASSIGNED', 6, { assigned_robot: 'r2' }));
    expect(store.taskOf('r2')!.id).toBe('ty');
  });

  it('sorts robot ids naturally', () => {
    for (const id of ['robot-10', 'robot-2', 'robot-1']) store.applyState(id, 'ONLINE', state(0, 0, 1));
    expect(store.robotIds()).toEqual(['robot-1', 'robot-2', 'robot-10']);
  });
});

it('handles 1,000 robots x 10 updates in well under a frame budget per batch', () => {
  const t0 = performance.now();
  for (let tick = 0; tick < 10; tick++) {
    const messages: LiveMessage[] = [];
    for (let i = 0; i < 1000; i++) messages.push(su(`robot-${i}`, state(i % 40, tick * 0.1, tick)));
    store.ingestText(JSON.stringify({ type: 'batch', messages }));
    store.flush();
  }
  const perBatch = (performance.now() - t0) / 10;
  expect(store.robots.size).toBe(1000);
  expect(perBatch).toBeLessThan(50);
});
