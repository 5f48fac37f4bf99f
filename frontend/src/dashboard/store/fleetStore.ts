// The dashboard's live data, mutable and outside React: robots (state, trail, battery history,
// events), tasks and fleet totals, fed by WebSocket messages and REST resyncs.

import type { FleetStatus, LiveMessage, Location, Presence, RobotEntry, RobotState, Task, TaskStatus } from '../../shared/types';

export const TRAIL_MAX = 150; // points per robot
export const TRAIL_MIN_STEP = 0.05; // metres between trail points
export const BATTERY_MAX = 240; // samples per robot
export const BATTERY_EVERY_MS = 2000;
export const ROBOT_EVENTS_MAX = 30;
export const EVENTS_MAX = 200;
export const FINISHED_KEEP = 100;

export const OPEN_STATUSES: ReadonlySet<TaskStatus> = new Set(['QUEUED', 'ASSIGNED', 'ACTIVE']);
export const isOpen = (t: Task) => OPEN_STATUSES.has(t.status);
const STATUS_RANK: Record<TaskStatus, number> = { QUEUED: 0, ASSIGNED: 1, ACTIVE: 2, COMPLETED: 3, FAILED: 3, CANCELED: 3 };

export interface EventEntry {
  t: number;
  robotId?: string;
  taskId?: string;
  level: 'info' | 'warn' | 'error' | 'ok';
  text: string;
}

export interface RobotRec {
  id: string;
  presence: Presence;
  legacy: boolean;
  state: RobotState | null;
  /** Recent poses as flat x, y pairs, oldest first, at most TRAIL_MAX points. */
  trail: number[];
  battery: { t: number; v: number }[];
  /** Newest first. */
  events: EventEntry[];
  /** Local time (ms) of the last update. */
  rxMs: number;
}

export function goalPoses(t: Task | undefined | null): { x: number; y: number }[] {
  if (!t?.goal) return [];
  if ('pose' in t.goal) return [t.goal.pose];
  if ('waypoints' in t.goal) return t.goal.waypoints;
  return [];
}

export class FleetStore {
  readonly robots = new Map<string, RobotRec>();
  readonly tasks = new Map<string, Task>();
  fleet: FleetStatus | null = null;
  locations: Location[] = [];
  events: EventEntry[] = [];
  /** Bumped on every change; React panels poll it a few times a second. */
  version = 0;
  /** Set when the map needs a redraw; the canvas loop clears it. */
  mapDirty = true;
  /** Task ids robots report that we do not have; the controller fetches them. */
  readonly missingTasks = new Set<string>();
  /** Set when a message names a robot we do not know; the controller reloads /api/robots. */
  needRobots = false;
  /** Set when the fleet totals are likely out of date (e.g. an e-stop event). */
  needFleet = false;
  /** Latest unapplied state per robot: updates arriving between two frames are coalesced. */
  private readonly pending = new Map<string, { presence: Presence; state: RobotState }>();
  private readonly taskRxMs = new Map<string, number>();
  private sortedIds: string[] | null = null;
  private assigned: { version: number; map: Map<string, Task> } = { version: -1, map: new Map() };

  constructor(private readonly now: () => number = Date.now) {}

  private touch(): void {
    this.version++;
    this.mapDirty = true;
  }

  /** Handles one parsed WebSocket message; batches are unpacked in order. */
  ingest(msg: LiveMessage): void {
    switch (msg.type) {
      case 'batch':
        for (const m of msg.messages ?? []) this.ingest(m);
        break;
      case 'state_update': {
        const prev = this.pending.get(msg.robot_id);
        if (!prev || !(msg.state.stamp_ms < prev.state.stamp_ms)) {
          this.pending.set(msg.robot_id, { presence: msg.presence, state: msg.state });
        }
        break;
      }
      case 'task_update':
        this.flush();
        if (msg.task) this.upsertTask(msg.task);
        break;
      case 'system_event':
        this.flush(); // a queued state must not overwrite the presence this event sets
        this.onSystemEvent(msg);
        break;
      default:
        break;
    }
  }

  /** Parses and ingests one WebSocket text frame; returns false if it was not JSON. */
  ingestText(text: string): boolean {
    let msg: LiveMessage;
    try {
      msg = JSON.parse(text) as LiveMessage;
    } catch {
      return false;
    }
    if (msg && typeof msg === 'object') this.ingest(msg);
    return true;
  }

  /** Applies coalesced state updates; called once per animation frame. */
  flush(): number {
    const n = this.pending.size;
    if (!n) return 0;
    for (const [id, p] of this.pending) this.applyState(id, p.presence, p.state);
    this.pending.clear();
    return n;
  }

  pendingCount(): number {
    return this.pending.size;
  }

  private robot(id: string): RobotRec {
    let r = this.robots.get(id);
    if (!r) {
      r = { id, presence: 'OFFLINE', legacy: false, state: null, trail: [], battery: [], events: [], rxMs: 0 };
      this.robots.set(id, r);
      this.sortedIds = null;
    }
    return r;
  }

  applyState(id: string, presence: Presence | undefined, state: RobotState | null): void {
    const r = this.robot(id);
    const now = this.now();
    if (presence) r.presence = presence;
    if (state && (!r.state || state.stamp_ms >= r.state.stamp_ms)) {
      const prev = r.state;
      r.state = state;
      addTrailPoint(r.trail, state.pose.x, state.pose.y);
      const pct = state.battery?.percentage;
      const lastB = r.battery[r.battery.length - 1];
      if (typeof pct === 'number' && (!lastB || now - lastB.t >= BATTERY_EVERY_MS)) {
        r.battery.push({ t: now, v: pct });
        if (r.battery.length > BATTERY_MAX) r.battery.splice(0, r.battery.length - BATTERY_MAX);
      }
      if (prev && prev.mode !== state.mode) {
        this.addEvent({ t: now, robotId: id, level: state.mode === 'ESTOPPED' || state.mode === 'ERROR' ? 'warn' : 'info', text: `mode ${prev.mode} → ${state.mode}` });
      }
      const tid = state.task?.task_id;
      if (tid && !this.tasks.has(tid)) this.missingTasks.add(tid);
    }
    r.rxMs = now;
    this.touch();
  }

  private onSystemEvent(m: Extract<LiveMessage, { type: 'system_event' }>): void {
    const presence = ({ robot_online: 'ONLINE', robot_stale: 'STALE', robot_offline: 'OFFLINE' } as const)[
      m.event as 'robot_online' | 'robot_stale' | 'robot_offline'
    ];
    const t = this.now();
    if (presence && m.robot_id) {
      const r = this.robots.get(m.robot_id);
      if (r) r.presence = presence;
      else this.needRobots = true;
      this.addEvent({ t, robotId: m.robot_id, level: presence === 'ONLINE' ? 'ok' : 'warn', text: `robot ${presence.toLowerCase()}` });
      this.needFleet = true;
    } else if (m.event === 'estop') {
      const what = m.robot_id ? 'e-stop' : 'FLEET E-STOP';
      this.addEvent({ t, robotId: m.robot_id, level: m.engaged ? 'error' : 'ok', text: `${what} ${m.engaged ? 'engaged' : 'released'}` });
      this.needFleet = true;
    } else {
      this.addEvent({ t, robotId: m.robot_id, level: 'info', text: String(m.event) });
    }
    this.touch();
  }

  addEvent(e: EventEntry): void {
    this.events.unshift(e);
    if (this.events.length > EVENTS_MAX) this.events.length = EVENTS_MAX;
    const r = e.robotId ? this.robots.get(e.robotId) : undefined;
    if (r) {
      r.events.unshift(e);
      if (r.events.length > ROBOT_EVENTS_MAX) r.events.length = ROBOT_EVENTS_MAX;
    }
  }

  /** Inserts or updates a task, ignoring versions older than the one held. */
  upsertTask(t: Task): void {
    const old = this.tasks.get(t.id);
    if (old && old.updated_ms > t.updated_ms) return;
    // same millisecond (e.g. created and assigned at once): the later lifecycle stage wins
    if (old && old.updated_ms === t.updated_ms && STATUS_RANK[t.status] < STATUS_RANK[old.status]) return;
    this.tasks.set(t.id, old?.history && !t.history?.length ? { ...t, history: old.history } : t);
    this.taskRxMs.set(t.id, this.now());
    this.missingTasks.delete(t.id);
    if (old && old.status !== t.status) {
      const robotId = t.assigned_robot ?? t.robot_id ?? undefined;
      const level = t.status === 'COMPLETED' ? 'ok' : t.status === 'FAILED' ? 'error' : t.status === 'CANCELED' ? 'warn' : 'info';
      this.addEvent({ t: this.now(), robotId, taskId: t.id, level, text: `task ${t.id.slice(0, 8)} ${old.status} → ${t.status}${t.error ? `: ${t.error}` : ''}` });
    }
    this.pruneTasks();
    this.touch();
  }

  /** Keeps every open task and the FINISHED_KEEP most recently updated finished ones. */
  private pruneTasks(): void {
    let finished = 0;
    for (const t of this.tasks.values()) if (!isOpen(t)) finished++;
    if (finished <= FINISHED_KEEP) return;
    const done = [...this.tasks.values()].filter((t) => !isOpen(t)).sort((a, b) => b.updated_ms - a.updated_ms);
    for (const t of done.slice(FINISHED_KEEP)) {
      this.tasks.delete(t.id);
      this.taskRxMs.delete(t.id);
    }
  }

  /** REST resync of robots: the list is the truth, except robots heard from since `startedMs`. */
  replaceRobots(list: RobotEntry[], startedMs: number): void {
    const seen = new Set<string>();
    for (const e of list) {
      seen.add(e.id);
      const pend = this.pending.get(e.id);
      this.applyState(e.id, pend ? undefined : e.presence, e.state ?? null);
      this.robot(e.id).legacy = !!e.legacy;
    }
    for (const [id, r] of this.robots) {
      if (!seen.has(id) && r.rxMs < startedMs) {
        this.robots.delete(id);
        this.sortedIds = null;
      }
    }
    this.needRobots = false;
    this.touch();
  }

  /** REST resync of tasks: tasks absent from the list are dropped unless they arrived live since `startedMs`. */
  replaceTasks(list: Task[], startedMs: number): void {
    const fresh = new Set(list.map((t) => t.id));
    for (const id of [...this.tasks.keys()]) {
      if (!fresh.has(id) && (this.taskRxMs.get(id) ?? 0) < startedMs && isOpen(this.tasks.get(id)!)) {
        this.tasks.delete(id);
        this.taskRxMs.delete(id);
      }
    }
    for (const t of list) this.upsertTask(t);
    this.touch();
  }

  setFleet(f: FleetStatus): void {
    this.fleet = f;
    this.needFleet = false;
    this.version++;
  }

  setLocations(l: Location[]): void {
    this.locations = l;
    this.touch();
  }

  /** Robot ids in natural order (robot-2 before robot-10). */
  robotIds(): string[] {
    this.sortedIds ??= [...this.robots.keys()].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    return this.sortedIds;
  }

  /** The task a robot is working on: the one it reports, else an open task assigned to it. */
  taskOf(robotId: string): Task | undefined {
    const r = this.robots.get(robotId);
    const id = r?.state?.task?.task_id;
    return (id ? this.tasks.get(id) : undefined) ?? this.assignedIndex().get(robotId);
  }

  /** ASSIGNED / ACTIVE tasks by robot, rebuilt at most once per store version. */
  private assignedIndex(): Map<string, Task> {
    if (this.assigned.version !== this.version) {
      const map = new Map<string, Task>();
      for (const t of this.tasks.values()) {
        if (t.assigned_robot && (t.status === 'ASSIGNED' || t.status === 'ACTIVE')) map.set(t.assigned_robot, t);
      }
      this.assigned = { version: this.version, map };
    }
    return this.assigned.map;
  }

  openTasks(): Task[] {
    return [...this.tasks.values()].filter(isOpen).sort((a, b) => b.created_ms - a.created_ms);
  }

  finishedTasks(limit = 30): Task[] {
    return [...this.tasks.values()]
      .filter((t) => !isOpen(t))
      .sort((a, b) => b.updated_ms - a.updated_ms)
      .slice(0, limit);
  }
}

/** Appends a pose to a flat x, y trail if it moved at least TRAIL_MIN_STEP; caps the length. */
export function addTrailPoint(trail: number[], x: number, y: number, max = TRAIL_MAX): boolean {
  const n = trail.length;
  if (n >= 2 && Math.hypot(x - trail[n - 2], y - trail[n - 1]) < TRAIL_MIN_STEP) return false;
  trail.push(x, y);
  if (trail.length > 2 * max) trail.splice(0, trail.length - 2 * max);
  return true;
}
