// Fleet-wide recent events (presence, e-stops, task outcomes).

import { useThrottledVersion } from '../../shared/hooks';
import { fleet } from '../net/controller';
import { EventList } from './EventList';

const version = () => fleet.store.version;

export function EventsPanel() {
  useThrottledVersion(version, 2);
  return (
    <section className="panel events-panel">
      <div className="panel-head">
        <h2>Events</h2>
      </div>
      <div className="table-scroll">
        <EventList events={fleet.store.events} max={40} showRobot />
      </div>
    </section>
  );
}
