// Display formatting: numbers, times, ids, mode colours shared by the map and the panels.

import type { RobotMode, TaskStatus } from './types';

export const MODE_COLORS: Record<RobotMode, string> = {
  IDLE: '#38bdf8',
  NAVIGATING: '#22c55e',
  PAUSED: '#eab308',
  CHARGING: '#a78bfa',
  ESTOPPED: '#ef4444',
  ERROR: '#f97316',
  TELEOP: '#ec4899',
};
export const UNKNOWN_COLOR = '#94a3b8';
export const modeColor = (m: string | undefined) => (m && MODE_COLORS[m as RobotMode]) || UNKNOWN_COLOR;

export const STATUS_CLASS: Record<TaskStatus, string> = {
  QUEUED: 'st-queued',
  ASSIGNED: 'st-assigned',
  ACTIVE: 'st-active',
  COMPLETED: 'st-completed',
  FAILED: 'st-failed',
  CANCELED: 'st-canceled',
};

export const num = (v: number | null | undefined, digits = 2) =>
  typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '–';

export const pct = (v: number | null | undefined) => (typeof v === 'number' && Number.isFinite(v) ? `${v.toFixed(0)}%` : '–');

export const shortId = (id: string) => id.slice(0, 8);

export const clockTime = (ms: number | undefined) =>
  ms ? new Date(ms).toLocaleTimeString([], { hour12: false }) : '–';

export const deg = (rad: number) => `${((rad * 180) / Math.PI).toFixed(0)}°`;

/** "3 s ago", "2 min ago". */
export function ago(ms: number, now = Date.now()): string {
  const s = Math.max(0, (now - ms) / 1000);
  if (s < 60) return `${s.toFixed(0)} s ago`;
  if (s < 3600) return `${(s / 60).toFixed(0)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}
