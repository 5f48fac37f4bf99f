// Named locations from /api/locations: send the selected robot (or auto-dispatch) there, or show one.

import { num } from '../../shared/format';
import { useObservable, useThrottledVersion } from '../../shared/hooks';
import { fleet } from '../net/controller';
import { can, session } from '../store/sessionStore';
import { focusOn, ui } from '../store/uiStore';

const version = () => fleet.store.version;

export function LocationsPanel() {
  useThrottledVersion(version, 1);
  const { selected, priority } = useObservable(ui);
  useObservable(session);
  const operate = can('operator');
  const locs = fleet.store.locations;
  return (
    <section className="panel locations" data-testid="locations">
      <div className="panel-head">
        <h2>
          Locations <span className="badge">{locs.length}</span>
        </h2>
        <span className="muted small">{operate ? `send ${selected ?? 'auto-dispatch'}` : 'read-only'}</span>
      </div>
      <ul className="loc-list">
        {locs.map((l) => (
          <li key={l.name} data-location={l.name}>
            <button type="button" className="link" onClick={() => focusOn(l.x, l.y)} title="Show on the map">
              <span className={l.charger ? 'loc-icon charger' : 'loc-icon'} />
              {l.name}
            </button>
            <span className="muted mono small">
              {num(l.x, 1)}, {num(l.y, 1)}
            </span>
            <button
              type="button"
              className="btn btn-small"
              disabled={!operate}
              data-action="send"
              onClick={() => void fleet.createTask(l.name, selected, priority)}
              title={operate ? `Send ${selected ?? 'a robot (auto-dispatch)'} to ${l.name}` : 'Sending tasks needs the operator role'}
            >
              Send
            </button>
          </li>
        ))}
        {!locs.length && <li className="muted small">No named locations configured.</li>}
      </ul>
    </section>
  );
}
