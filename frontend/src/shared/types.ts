// Wire types of the fms REST and WebSocket API: aliases of the types generated from the server's
// OpenAPI document (./openapi/schema.d.ts, written by scripts/gen_api_types.sh; never edit it by
// hand). Only the WebSocket frames, which the document does not describe, are written here, from
// fms_server/src/hub.rs (`LiveMessage`) and fms_msgs/src/system.rs (`SystemEvent`).

import type { components } from './openapi/schema';

type Schemas = components['schemas'];

export type Presence = Schemas['Presence'];
export type RobotMode = Schemas['RobotMode'];
export type TaskStatus = Schemas['TaskStatus'];
export type Priority = Schemas['Priority'];
export type Pose = Schemas['Pose'];
export type Battery = Schemas['Battery'];
export type RobotState = Schemas['RobotState'];
export type RobotEntry = Schemas['RobotEntry'];
export type Goal = Schemas['Goal'];
export type HistoryEntry = Schemas['HistoryEntry'];
export type Task = Schemas['Task'];
export type FleetStatus = Schemas['FleetStatus'];
export type Location = Schemas['LocationOut'];
export type MapMeta = Schemas['MapMeta'];
export type ErrorBody = Schemas['ErrorBody'];
/** `POST /api/tasks`: the body, and the answer (the task plus `task_id`, the same as `id`). */
export type CreateTask = Schemas['CreateTask'];
export type CreatedTask = Schemas['CreatedTask'];
/** The answer to a robot's cancel, e-stop and release. */
export type Ack = Schemas['Ack'];
/** The answer to the fleet e-stop and its release. */
export type EstopReply = Schemas['EstopReply'];
/** `GET /api/whoami`. */
export type Principal = Schemas['Principal'];
export type Role = Schemas['Role'];

export type SystemEventName = 'robot_online' | 'robot_stale' | 'robot_offline' | 'estop';

export type LiveMessage =
  | { type: 'state_update'; robot_id: string; presence: Presence; state: RobotState }
  | { type: 'task_update'; task: Task }
  | { type: 'system_event'; event: SystemEventName | string; stamp_ms: number; robot_id?: string; engaged?: boolean }
  | { type: 'heartbeat'; stamp_ms: number }
  | { type: 'batch'; messages: LiveMessage[] }
  | { type: 'error'; error: ErrorBody };
