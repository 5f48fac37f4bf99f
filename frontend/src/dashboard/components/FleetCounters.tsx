// Fleet totals from /api/fleet/status: online, busy, idle, offline, battery, tasks.

import { useThrottledVersion } from '../../shared/hooks';
import { pct } from '../../shared/format';
import { fleet } from '../net/controller';

const version = () => fleet.store.version;

export function FleetCounters() {
  useThrottledVersion(version, 2);
  const f = fleet.store.fleet;
  const items: [string, string | number, string?][] = [
    ['online', f?.online ?? '–', 'ok'],
    ['busy', f?.busy ?? '–'],
    ['idle', f?.idle ?? '–'],
    ['stale', f?.stale ?? '–', f?.stale ? 'warn' : undefined],
    ['offline', f?.offline ?? '–', f?.offline ? 'bad' : undefined],
    ['e-stopped', f?.estopped ?? '–', f?.estopped ? 'bad' : undefined],
    ['avg battery', pct(f?.average_battery)],
    ['active tasks', f?.active_tasks ?? '–'],
    ['queued', f?.queued_tasks ?? '–'],
    ['done today', f?.completed_today ?? '–'],
  ];
  return (
    <div className="counters" data-testid="counters">
      {items.map(([label, value, tone]) => (
        <div key={label} className={`counter ${tone ? `counter-${tone}` : ''}`} data-k={label}>
          <b>{value}</b>
          <span>{label}</span>
        </div>
      ))}
    </div>
  );
}
