// Wire types of the fms REST and WebSocket API (mirrors fms_msgs and fms_server/src/http).

export type Presence = 'ONLINE' | 'STALE' | 'OFFLINE';
export type RobotMode = 'IDLE' | 'NAVIGATING' | 'PAUSED' | 'CHARGING' | 'ESTOPPED' | 'ERROR' | 'TELEOP';
export type TaskStatus = 'QUEUED' | 'ASSIGNED' | 'ACTIVE' | 'COMPLETED' | 'FAILED' | 'CANCELED';
export type Priority = 'low' | 'normal' | 'high' | 'urgent';

export interface Pose {
  x: number;
  y: number;
  yaw: number;
  frame?: string;
}

export interface Battery {
  percentage: number;
  voltage?: number;
  charging: boolean;
}

export interface RobotState {
  protocol?: number;
  seq?: number;
  stamp_ms: number;
  pose: Pose;
  velocity: { linear: number; angular: number };
  battery: Battery;
  mode: RobotMode;
  task?: { task_id: string; progress: number };
  teleop_operator?: string;
}

export interface RobotEntry {
  id: string;
  presence: Presence;
  legacy?: boolean;
  first_seen_ms?: number;
  last_seen_ms?: number;
  state: RobotState | null;
}

export type Goal = { pose: Pose } | { waypoints: Pose[] };

export interface HistoryEntry {
  status: TaskStatus;
  at_ms: number;
  robot_id?: string;
  note?: string;
}

export interface Task {
  id: string;
  robot_id: string | null;
  assigned_robot: string | null;
  goal: Goal;
  priority: Priority;
  status: TaskStatus;
  progress: number;
  attempts?: number;
  location?: string | null;
  error?: string | null;
  created_ms: number;
  updated_ms: number;
  history?: HistoryEntry[];
}

export interface FleetStatus {
  total: number;
  online: number;
  stale: number;
  offline: number;
  busy: number;
  idle: number;
  estopped: number;
  average_battery: number | null;
  active_tasks: number;
  queued_tasks: number;
  completed_today: number;
  estop_engaged: boolean;
}

export interface Location {
  name: string;
  x: number;
  y: number;
  yaw: number;
  charger: boolean;
}

export interface MapMeta {
  name: string;
  resolution: number;
  origin: { x: number; y: number; yaw: number };
  width: number;
  height: number;
  image: string;
}

export type SystemEventName = 'robot_online' | 'robot_stale' | 'robot_offline' | 'estop';

export type LiveMessage =
  | { type: 'state_update'; robot_id: string; presence: Presence; state: RobotState }
  | { type: 'task_update'; task: Task }
  | { type: 'system_event'; event: SystemEventName | string; stamp_ms: number; robot_id?: string; engaged?: boolean }
  | { type: 'heartbeat'; stamp_ms: number }
  | { type: 'batch'; messages: LiveMessage[] }
  | { type: 'error'; error: { code: string; message: string } };
