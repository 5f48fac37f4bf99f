// Feeds the fleet store: the batched /ws live feed, REST resyncs (on every (re)connect and by
// polling), the map and locations; and the operator actions (tasks, cancel, e-stops).

import { ApiError, errorText, get, post, wsUrl } from '../../shared/api';
import { withAccessToken, type Role } from '../../shared/auth';
import { ReconnectingSocket } from '../../shared/socket';
import { toast } from '../../shared/toasts';
import type { Ack, CreatedTask, CreateTask, EstopReply, FleetStatus, Location, Priority, RobotEntry, Task } from '../../shared/types';
import { loadMap, type LoadedMap } from '../map/mapLoader';
import { FleetStore } from '../store/fleetStore';
import { can, roleToast, wsCredential } from '../store/sessionStore';

export const BATCH_MS = 100;
const FLEET_POLL_MS = 2000;
const TASKS_POLL_MS = 5000;
const ROBOTS_POLL_MS = 15000;
export const TASK_LIMIT = 200;

const enc = encodeURIComponent;

export class FleetController {
  readonly store = new FleetStore();
  readonly socket: ReconnectingSocket;
  map: LoadedMap | null = null;
  mapStatus: 'loading' | 'ready' | 'none' | 'error' = 'loading';
  /** Local time of the last successful REST resync. */
  lastResyncMs = 0;
  resyncs = 0;
  private timers: ReturnType<typeof setInterval>[] = [];
  private fetching = new Set<string>();
  /** Bumped by start() and stop(), so that a stopped controller's retry loops end. */
  private generation = 0;
  running = false;

  constructor() {
    this.socket = new ReconnectingSocket({
      url: () => wsUrl(withAccessToken(`/ws?batch_ms=${BATCH_MS}`, wsCredential())),
      onMessage: (text) => this.store.ingestText(text),
      onOpen: () => void this.resync(),
    });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.generation++;
    this.socket.start();
    void this.resync();
    void this.loadStatic(this.generation);
    this.every(FLEET_POLL_MS, () => this.loadFleet());
    this.every(TASKS_POLL_MS, () => this.loadTasks());
    this.every(ROBOTS_POLL_MS, () => this.loadRobots());
    this.every(500, () => this.followUp());
  }

  stop(): void {
    this.running = false;
    this.generation++;
    this.socket.stop();
    this.timers.forEach(clearInterval);
    this.timers = [];
  }

  private every(ms: number, fn: () => Promise<unknown> | void): void {
    let busy = false;
    this.timers.push(
      setInterval(async () => {
        if (busy) return;
        busy = true;
        try {
          await fn();
        } catch {
          /* the connection indicator tells the operator; the next poll retries */
        } finally {
          busy = false;
        }
      }, ms),
    );
  }

  /** Robots, tasks and fleet totals from REST: after every (re)connect, so nothing missed stays missing. */
  async resync(): Promise<void> {
    try {
      await Promise.all([this.loadRobots(), this.loadTasks(), this.loadFleet()]);
      this.lastResyncMs = Date.now();
      this.resyncs++;
    } catch (e) {
      console.warn('resync failed', e);
    }
  }

  async loadRobots(): Promise<void> {
    const started = Date.now();
    this.store.replaceRobots(await get<RobotEntry[]>('/api/robots'), started);
  }

  async loadTasks(): Promise<void> {
    const started = Date.now();
    const [open, recent] = await Promise.all([
      Promise.all(['QUEUED', 'ASSIGNED', 'ACTIVE'].map((s) => get<Task[]>(`/api/tasks?status=${s}&limit=${TASK_LIMIT}`))),
      get<Task[]>(`/api/tasks?limit=50`),
    ]);
    this.store.replaceTasks([...open.flat(), ...recent], started);
  }

  async loadFleet(): Promise<void> {
    this.store.setFleet(await get<FleetStatus>('/api/fleet/status'));
  }

  /** Map and locations: retried until loaded, since the server may not be up yet. */
  private async loadStatic(gen: number): Promise<void> {
    for (let delay = 1000; ; delay = Math.min(delay * 2, 10_000)) {
      if (gen !== this.generation) return;
      try {
        this.store.setLocations(await get<Location[]>('/api/locations'));
        break;
      } catch {
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    if (this.map) return;
    for (let delay = 1000; ; delay = Math.min(delay * 2, 10_000)) {
      if (gen !== this.generation) return;
      try {
        this.map = await loadMap();
        this.mapStatus = this.map ? 'ready' : 'none';
        this.store.mapDirty = true;
        this.store.version++;
        return;
      } catch (e) {
        console.warn('map load failed', e);
        this.mapStatus = 'error';
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Fetches tasks robots report but we lack, and reloads what events said is stale. */
  private async followUp(): Promise<void> {
    const s = this.store;
    if (s.needRobots) void this.loadRobots().catch(() => undefined);
    if (s.needFleet) void this.loadFleet().catch(() => undefined);
    for (const id of [...s.missingTasks].slice(0, 20)) {
      if (this.fetching.has(id)) continue;
      this.fetching.add(id);
      get<Task>(`/api/tasks/${enc(id)}`)
        .then((t) => s.upsertTask(t))
        .catch(() => s.missingTasks.delete(id))
        .finally(() => this.fetching.delete(id));
    }
  }

  // ---------- operator actions: each needs a role, reports failure in a toast and returns null ----------

  private async act<T>(what: string, role: Role, fn: () => Promise<T>, { force = false } = {}): Promise<T | null> {
    // the controls are disabled for a role that may not act; this catches the rest (map clicks)
    if (!force && !can(role)) {
      roleToast(what, role);
      return null;
    }
    try {
      return await fn();
    } catch (e) {
      if (e instanceof ApiError && e.status === 403) roleToast(what, role);
      else if (e instanceof ApiError && e.status === 429)
        toast(`${what}: too many requests; try again${e.retryAfterS !== null ? ` in ${e.retryAfterS} s` : ' later'}`, 'error');
      else if (!(e instanceof ApiError && e.status === 401)) toast(`${what} failed: ${errorText(e)}`, 'error');
      return null;
    }
  }

  async createTask(target: { x: number; y: number } | string, robotId: string | null, priority: Priority): Promise<Task | null> {
    const body: CreateTask = {
      target: typeof target === 'string' ? target : { x: +target.x.toFixed(3), y: +target.y.toFixed(3) },
      priority,
    };
    if (robotId) body.robot_id = robotId;
    const t = await this.act('Sending a task', 'operator', () => post<CreatedTask>('/api/tasks', body));
    if (t) {
      this.store.upsertTask(t);
      const where = typeof target === 'string' ? target : `(${target.x.toFixed(2)}, ${target.y.toFixed(2)})`;
      toast(`Task ${t.id.slice(0, 8)} → ${where}: ${t.status.toLowerCase()}${t.assigned_robot ? ` on ${t.assigned_robot}` : ''}`, 'ok');
    }
    return t;
  }

  async cancelTask(id: string): Promise<void> {
    const t = await this.act(`Canceling task ${id.slice(0, 8)}`, 'operator', () => post<Task>(`/api/tasks/${enc(id)}/cancel`));
    if (t) {
      this.store.upsertTask(t);
      toast(`Task ${id.slice(0, 8)} ${t.status.toLowerCase()}`);
    }
  }

  async taskDetail(id: string): Promise<Task | null> {
    const t = await this.act('Loading a task', 'viewer', () => get<Task>(`/api/tasks/${enc(id)}`));
    if (t) this.store.upsertTask(t);
    return t;
  }

  async robotCommand(id: string, cmd: 'cancel' | 'emergency-stop' | 'emergency-stop/release'): Promise<void> {
    const label = { cancel: 'Cancel', 'emergency-stop': 'E-stop', 'emergency-stop/release': 'Release' }[cmd];
    const r = await this.act(`${label} ${id}`, 'operator', () => post<Ack | null>(`/api/robots/${enc(id)}/${cmd}`));
    if (r) toast(`${label} sent to ${id}`, cmd === 'emergency-stop' ? 'error' : 'info');
    // sent, but the server could not record it (a full disk): it holds and is retried
    if (r?.warning) toast(`${label} ${id}: ${r.warning}`, 'error');
  }

  /** `force` sends it even when the role may not (the server then answers 403): for the tests. */
  async fleetEstop(engage: boolean, { force = false } = {}): Promise<void> {
    const path = engage ? '/api/fleet/emergency-stop' : '/api/fleet/emergency-stop/release';
    const what = engage ? 'The fleet e-stop' : 'Releasing the fleet e-stop';
    const r = await this.act(what, 'admin', () => post<EstopReply>(path), { force });
    if (r) toast(`Fleet e-stop ${r.engaged ? 'ENGAGED' : 'released'} (${r.robots} robots)`, r.engaged ? 'error' : 'ok');
    if (r?.warning) toast(`Fleet e-stop: ${r.warning}`, 'error');
    await this.loadFleet().catch(() => undefined);
  }
}

export const fleet = new FleetController();
