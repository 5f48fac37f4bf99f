// The phone server's data: its robot list (GET /api/robots, polled) and speed limits (GET /api/config).

import { get } from '../shared/api';
import { Observable } from '../shared/observable';
import type { Pose } from '../shared/types';

export interface PhoneRobot {
  id: string;
  mode: string;
  battery: number | null;
  pose: Pose | null;
  teleop_operator?: string | null;
}

export interface TeleopConfig {
  max_linear: number;
  max_angular: number;
}

type RawRobot = Omit<PhoneRobot, 'battery'> & { battery?: number | { percentage: number } | null };

/** Accepts `battery` as a percentage or as a Battery object. */
export function normalizeRobot(r: RawRobot): PhoneRobot {
  const b = r.battery;
  return {
    id: r.id,
    mode: r.mode ?? 'UNKNOWN',
    battery: typeof b === 'number' ? b : b && typeof b.percentage === 'number' ? b.percentage : null,
    pose: r.pose ?? null,
    teleop_operator: r.teleop_operator ?? null,
  };
}

export const robots = new Observable<{ list: PhoneRobot[]; ok: boolean }>({ list: [], ok: false });
export const config = new Observable<TeleopConfig | null>(null);

export function startPolling(): void {
  const poll = async () => {
    try {
      const list = (await get<RawRobot[]>('/api/robots')).map(normalizeRobot);
      list.sort((a, b) => a.id.localeCompare(b.id, undefined, { numeric: true }));
      robots.set({ list, ok: true });
    } catch {
      robots.set({ list: robots.get().list, ok: false });
    }
    if (!config.get()) {
      try {
        config.set(await get<TeleopConfig>('/api/config'));
      } catch {
        /* retried next poll */
      }
    }
    setTimeout(poll, 1000);
  };
  void poll();
}
