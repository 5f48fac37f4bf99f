// The phone teleop page: pick a robot, see its mode, battery and lease; drive it with the joystick
// while holding the dead-man button, under a speed limit.

import { useCallback, useEffect, useRef, useState } from 'react';
import { pct } from '../shared/format';
import { useObservable, useThrottledVersion } from '../shared/hooks';
import { Toasts } from '../shared/Toasts';
import { DeadmanButton } from './DeadmanButton';
import { Joystick } from './Joystick';
import { limitsFor, stickToTwist, type Stick } from './joystick';
import { config, robots } from './phoneData';
import { TeleopClient } from './teleopClient';

const OPERATOR_KEY = 'fms.operator';
const ROBOT_KEY = 'fms.phone.robot';
const SPEED_KEY = 'fms.phone.speed';
export const client = new TeleopClient(() => localStorage.getItem(OPERATOR_KEY) ?? '');
const clientVersion = () => client.version;

export function PhoneApp() {
  useThrottledVersion(clientVersion, 10);
  const { list, ok } = useObservable(robots);
  const cfg = useObservable(config);
  const [robotId, setRobotId] = useState<string | null>(() => localStorage.getItem(ROBOT_KEY));
  const [speed, setSpeed] = useState<number>(() => Number(localStorage.getItem(SPEED_KEY)) || 0.3);
  const stick = useRef<Stick>({ x: 0, y: 0 });
  const robot = list.find((r) => r.id === robotId) ?? null;
  const limits = cfg ? limitsFor(cfg, speed) : { maxLinear: 0, maxAngular: 0 };
  const limitsRef = useRef(limits);
  limitsRef.current = limits;

  // choose the first robot when none (or a vanished one) is chosen
  useEffect(() => {
    if (list.length && !list.some((r) => r.id === robotId)) setRobotId(list[0].id);
  }, [list, robotId]);

  // stop when the page is hidden or loses focus: a hidden page cannot hold a dead-man
  useEffect(() => {
    const stop = () => client.release();
    const onVis = () => document.visibilityState === 'hidden' && stop();
    document.addEventListener('visibilitychange', onVis);
    window.addEventListener('pagehide', stop);
    window.addEventListener('blur', stop);
    return () => {
      document.removeEventListener('visibilitychange', onVis);
      window.removeEventListener('pagehide', stop);
      window.removeEventListener('blur', stop);
    };
  }, []);

  const onStick = useCallback((s: Stick) => {
    stick.current = s;
    client.setTwist(stickToTwist(s, limitsRef.current));
  }, []);

  // a new speed limit applies to the stick as it is held now
  useEffect(() => {
    client.setTwist(stickToTwist(stick.current, limitsRef.current));
  }, [limits.maxLinear, limits.maxAngular]);

  const pickRobot = (id: string) => {
    client.release();
    setRobotId(id);
    localStorage.setItem(ROBOT_KEY, id);
  };

  const lease = client.leaseFor(robotId);
  const holder = lease ? lease.holder : (robot?.teleop_operator ?? null);
  const yours = lease ? lease.yours : !!holder && holder === client.operator;
  const leaseState = yours ? 'yours' : holder ? 'other' : 'free';
  const mode = lease?.mode ?? robot?.mode ?? '–';
  const connected = client.socket.phase === 'open';

  return (
    <div className="phone">
      <header className="phone-head">
        <span className="logo">fms</span>
        <span className="phone-title">teleop</span>
        <span className={`conn-dot ${connected ? 'on' : ''}`} data-testid="phone-conn" data-state={connected ? 'open' : client.socket.phase} title={connected ? 'connected' : 'not connected'} />
        <button
          type="button"
          className="link operator"
          onClick={() => {
            const name = window.prompt('Operator name', client.operator ?? '');
            if (name !== null) {
              localStorage.setItem(OPERATOR_KEY, name.trim());
              client.restart();
            }
          }}
          data-testid="operator"
        >
          {client.operator ?? '…'}
        </button>
      </header>

      <label className="phone-field">
        <span>Robot</span>
        <select value={robotId ?? ''} onChange={(e) => pickRobot(e.target.value)} data-testid="robot-select">
          {!list.length && <option value="">{ok ? 'no robots online' : 'loading robots…'}</option>}
          {list.map((r) => (
            <option key={r.id} value={r.id}>
              {r.id} · {r.mode}
            </option>
          ))}
        </select>
      </label>

      <section className="phone-status" data-testid="phone-status">
        <div>
          <span className="k">mode</span>
          <b data-testid="phone-mode">{mode}</b>
        </div>
        <div>
          <span className="k">battery</span>
          <b>{pct(robot?.battery)}</b>
        </div>
        <div className={`lease lease-${leaseState}`} data-testid="lease" data-lease={leaseState}>
          <span className="k">lease</span>
          <b>{leaseState === 'yours' ? 'yours' : leaseState === 'other' ? `held by ${holder}` : 'free'}</b>
        </div>
      </section>
      <div className="pose mono muted" data-testid="phone-pose">
        {robot?.pose ? `x ${robot.pose.x.toFixed(2)} m · y ${robot.pose.y.toFixed(2)} m · heading ${((robot.pose.yaw * 180) / Math.PI).toFixed(0)}°` : 'pose unknown'}
      </div>

      <label className="phone-field speed">
        <span>
          Speed limit <b>{speed.toFixed(2)} m/s</b>
          <span className="muted"> / {cfg ? cfg.max_linear.toFixed(2) : '–'}</span>
        </span>
        <input
          type="range"
          min={0.05}
          max={cfg?.max_linear ?? 1}
          step={0.05}
          value={Math.min(speed, cfg?.max_linear ?? speed)}
          onChange={(e) => {
            setSpeed(Number(e.target.value));
            localStorage.setItem(SPEED_KEY, e.target.value);
          }}
          data-testid="speed"
        />
      </label>

      <p className="hint">Hold the button with one thumb and steer with the other. Let go to stop.</p>
      <div className="drive">
        <DeadmanButton held={client.driving} disabled={!robotId || !connected || !cfg} onHold={() => robotId && client.hold(robotId)} onRelease={() => client.release()} />
        <Joystick onChange={onStick} />
      </div>

      <div className="readout mono" data-testid="readout">
        {client.driving ? 'sending' : 'idle'} · v {client.twist.linear.toFixed(2)} m/s · ω {client.twist.angular.toFixed(2)} rad/s
      </div>
      <Toasts />
    </div>
  );
}
