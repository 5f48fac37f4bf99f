// The map toolbar: what a click does (selected robot vs auto-dispatch), priority, view controls, cursor.

import { useObservable, useThrottledVersion } from '../../shared/hooks';
import type { Priority } from '../../shared/types';
import { cursor } from '../map/mapCanvas';
import { mapRef } from '../map/mapRef';
import { fleet } from '../net/controller';
import { can, session } from '../store/sessionStore';
import { select, setViewMode, ui } from '../store/uiStore';

const PRIORITIES: Priority[] = ['low', 'normal', 'high', 'urgent'];

export function MapToolbar() {
  const s = useObservable(ui);
  useObservable(session);
  const operate = can('operator');
  return (
    <div className="toolbar">
      <div className={`click-mode ${!operate ? 'click-readonly' : s.selected ? 'click-robot' : 'click-auto'}`} data-testid="click-mode" data-readonly={operate ? '0' : '1'}>
        <span className="muted">Click map →</span>
        {!operate ? (
          <b title="Sending tasks needs the operator role">read-only: selects robots</b>
        ) : s.selected ? (
          <>
            <b>send {s.selected}</b>
            <button type="button" className="btn btn-small" onClick={() => select(null)} title="Clear the selection (Esc)">
              use auto-dispatch
            </button>
          </>
        ) : (
          <b>auto-dispatch</b>
        )}
      </div>
      <label className="field">
        priority
        <select value={s.priority} disabled={!operate} data-testid="priority" onChange={(e) => ui.update({ priority: e.target.value as Priority })}>
          {PRIORITIES.map((p) => (
            <option key={p}>{p}</option>
          ))}
        </select>
      </label>
      <div className="btn-group" role="group" aria-label="View">
        <button type="button" className={`btn btn-small ${s.viewMode === 'fit' ? 'on' : ''}`} onClick={() => setViewMode('fit')} title="Fit the map">
          Fit
        </button>
        <button
          type="button"
          className={`btn btn-small ${s.viewMode === 'follow' ? 'on' : ''}`}
          disabled={!s.selected}
          onClick={() => setViewMode(s.viewMode === 'follow' ? 'free' : 'follow')}
          title="Keep the selected robot centred"
          data-testid="follow"
        >
          Follow
        </button>
        <button type="button" className="btn btn-small" onClick={() => mapRef.current?.zoomBy(1.4)} title="Zoom in">
          +
        </button>
        <button type="button" className="btn btn-small" onClick={() => mapRef.current?.zoomBy(1 / 1.4)} title="Zoom out">
          −
        </button>
      </div>
      <MapStatus />
    </div>
  );
}

const version = () => fleet.store.version;

function MapStatus() {
  useThrottledVersion(version, 1);
  const st = fleet.mapStatus;
  const m = fleet.map?.meta;
  const text = st === 'ready' && m ? `map ${m.name} · ${m.resolution} m/px` : st === 'none' ? 'no map: metric grid' : st === 'error' ? 'map failed to load' : 'loading map…';
  return (
    <span className="muted map-status" data-testid="map-status" data-status={st}>
      {text}
    </span>
  );
}

export function Cursor() {
  const c = useObservable(cursor);
  return c ? <span className="cursor-readout">{`x ${c.x.toFixed(2)}  y ${c.y.toFixed(2)} m`}</span> : null;
}
