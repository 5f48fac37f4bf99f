// A list of recent events (presence, e-stop, mode and task changes), newest first.

import { clockTime } from '../../shared/format';
import type { EventEntry } from '../store/fleetStore';

export function EventList({ events, max = 12, showRobot = false }: { events: EventEntry[]; max?: number; showRobot?: boolean }) {
  if (!events.length) return <div className="muted small">No events yet.</div>;
  return (
    <ul className="events">
      {events.slice(0, max).map((e, i) => (
        <li key={`${e.t}-${i}`} className={`ev ev-${e.level}`}>
          <span className="mono muted">{clockTime(e.t)}</span>
          {showRobot && e.robotId && <b>{e.robotId}</b>}
          <span>{e.text}</span>
        </li>
      ))}
    </ul>
  );
}
