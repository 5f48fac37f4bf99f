// The robot list: filter, mode, battery, task progress; click a row to select; capped for big fleets.

import { useState } from 'react';
import { modeColor, pct } from '../../shared/format';
import { useObservable, useThrottledVersion } from '../../shared/hooks';
import { fleet } from '../net/controller';
import { select, ui } from '../store/uiStore';
import { ProgressBar } from './ProgressBar';

const version = () => fleet.store.version;
const SHOW_MAX = 150;

export function RobotList() {
  useThrottledVersion(version, 3);
  const { selected } = useObservable(ui);
  const [filter, setFilter] = useState('');
  const store = fleet.store;
  const f = filter.trim().toLowerCase();
  const ids = store.robotIds().filter((id) => {
    if (!f) return true;
    const r = store.robots.get(id)!;
    return id.toLowerCase().includes(f) || (r.state?.mode ?? '').toLowerCase().includes(f) || r.presence.toLowerCase().includes(f);
  });
  return (
    <section className="panel robot-list" data-testid="robots">
      <div className="panel-head">
        <h2>
          Robots <span className="badge">{store.robots.size}</span>
        </h2>
        <input className="filter" placeholder="filter id / mode / presence" value={filter} onChange={(e) => setFilter(e.target.value)} />
      </div>
      <div className="table-scroll">
        <table className="table compact">
          <thead>
            <tr>
              <th>Robot</th>
              <th>Mode</th>
              <th>Battery</th>
              <th>Task</th>
            </tr>
          </thead>
          <tbody>
            {ids.slice(0, SHOW_MAX).map((id) => {
              const r = store.robots.get(id)!;
              const s = r.state;
              return (
                <tr
                  key={id}
                  data-robot-id={id}
                  data-mode={s?.mode ?? ''}
                  data-presence={r.presence}
                  className={`${id === selected ? 'sel' : ''} presence-${r.presence.toLowerCase()}`}
                  onClick={() => select(id === selected ? null : id)}
                >
                  <td>
                    <span className={`dot dot-${r.presence.toLowerCase()}`} title={r.presence} />
                    {id}
                    {r.legacy && <span className="tag">legacy</span>}
                  </td>
                  <td>
                    <span className="mode" style={{ color: modeColor(s?.mode) }}>
                      {s?.mode ?? '–'}
                    </span>
                  </td>
                  <td className={s && s.battery.percentage < 20 ? 'low' : ''}>
                    {pct(s?.battery.percentage)}
                    {s?.battery.charging ? ' ⚡' : ''}
                  </td>
                  <td>{s?.task ? <ProgressBar value={s.task.progress} /> : <span className="muted">–</span>}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
        {ids.length > SHOW_MAX && (
          <div className="muted small pad">
            showing {SHOW_MAX} of {ids.length}: filter to narrow
          </div>
        )}
      </div>
    </section>
  );
}
