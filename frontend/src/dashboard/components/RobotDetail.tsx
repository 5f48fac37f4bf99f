// The selected robot: state, battery sparkline, last events; cancel, e-stop / release, follow.

import { ago, deg, modeColor, num, pct, shortId } from '../../shared/format';
import { useObservable, useThrottledVersion } from '../../shared/hooks';
import { fleet } from '../net/controller';
import { can, session } from '../store/sessionStore';
import { select, setViewMode, ui } from '../store/uiStore';
import { EventList } from './EventList';
import { ProgressBar } from './ProgressBar';
import { Sparkline } from './Sparkline';

const version = () => fleet.store.version;

export function RobotDetail() {
  useThrottledVersion(version, 4);
  const { selected, viewMode } = useObservable(ui);
  useObservable(session);
  const operate = can('operator');
  const noRole = operate ? undefined : 'Needs the operator role';
  const r = selected ? fleet.store.robots.get(selected) : undefined;
  if (!selected || !r) return null;
  const s = r.state;
  const task = fleet.store.taskOf(r.id);
  const estopped = s?.mode === 'ESTOPPED';
  return (
    <section className="panel robot-detail" data-testid="robot-detail" data-robot-id={r.id}>
      <div className="panel-head">
        <h2>
          <span className={`dot dot-${r.presence.toLowerCase()}`} />
          {r.id}
        </h2>
        <span className="mode-chip" style={{ background: modeColor(s?.mode) }} data-testid="detail-mode">
          {s?.mode ?? 'NO STATE'}
        </span>
        <button type="button" className="btn btn-small btn-ghost" onClick={() => select(null)} title="Close (Esc)">
          ✕
        </button>
      </div>
      <div className="detail-body">
        <dl className="kv">
          <dt>presence</dt>
          <dd className={`presence-${r.presence.toLowerCase()}`}>{r.presence}</dd>
          <dt>pose</dt>
          <dd className="mono">{s ? `${num(s.pose.x)}, ${num(s.pose.y)}, ${deg(s.pose.yaw ?? 0)}` : '–'}</dd>
          <dt>velocity</dt>
          <dd className="mono">{s ? `${num(s.velocity.linear)} m/s, ${num(s.velocity.angular)} rad/s` : '–'}</dd>
          <dt>battery</dt>
          <dd>
            {pct(s?.battery.percentage)}
            {s?.battery.voltage !== undefined && ` · ${num(s?.battery.voltage, 1)} V`}
            {s?.battery.charging && ' · charging'}
          </dd>
          <dt>task</dt>
          <dd>
            {s?.task ? (
              <>
                <span className="mono">{shortId(s.task.task_id)}</span> {task?.status.toLowerCase()} <ProgressBar value={s.task.progress} />
              </>
            ) : (
              <span className="muted">none</span>
            )}
          </dd>
          {s?.teleop_operator && (
            <>
              <dt>teleop</dt>
              <dd>{s.teleop_operator}</dd>
            </>
          )}
          <dt>last update</dt>
          <dd className="muted">{r.rxMs ? ago(r.rxMs) : '–'}</dd>
        </dl>
        <div className="detail-actions">
          <button type="button" className="btn" disabled={!operate} title={noRole} onClick={() => void fleet.robotCommand(r.id, 'cancel')} data-testid="robot-cancel">
            Cancel task
          </button>
          {estopped ? (
            <button type="button" className="btn btn-release attention" disabled={!operate} title={noRole} onClick={() => void fleet.robotCommand(r.id, 'emergency-stop/release')} data-testid="robot-release">
              Release e-stop
            </button>
          ) : (
            <button type="button" className="btn btn-estop" disabled={!operate} title={noRole} onClick={() => void fleet.robotCommand(r.id, 'emergency-stop')} data-testid="robot-estop">
              E-stop
            </button>
          )}
          <button type="button" className={`btn ${viewMode === 'follow' ? 'on' : ''}`} onClick={() => setViewMode(viewMode === 'follow' ? 'free' : 'follow')}>
            {viewMode === 'follow' ? 'Following' : 'Follow'}
          </button>
        </div>
        <h3>Battery</h3>
        <Sparkline points={r.battery} />
        <h3>Last events</h3>
        <EventList events={r.events} max={8} />
      </div>
    </section>
  );
}
