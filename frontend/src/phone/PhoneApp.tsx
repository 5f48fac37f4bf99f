// The phone teleop page: pick a robot, see its mode, battery and lease; drive it with the joystick
// while holding the dead-man button, under a speed limit. A server that requires an operator token
// gets one pasted here (kept in localStorage); an open server gets a compact warning.

import { useCallback, useEffect, useRef, useState } from 'react';
import { cleanCredential, jwtClaims, PHONE_TOKEN_KEY, storage } from '../shared/auth';
import { pct } from '../shared/format';
import { useObservable, useThrottledVersion } from '../shared/hooks';
import { Toasts } from '../shared/Toasts';
import { DeadmanButton } from './DeadmanButton';
import { Joystick } from './Joystick';
import { limitsFor, stickToTwist, type Stick } from './joystick';
import { config, robots } from './phoneData';
import { toast } from '../shared/toasts';
import { TeleopClient, validOperator, type AuthState } from './teleopClient';

const OPERATOR_KEY = 'fms.operator';
const ROBOT_KEY = 'fms.phone.robot';
const SPEED_KEY = 'fms.phone.speed';
export const client = new TeleopClient(
  () => storage.get(OPERATOR_KEY) ?? '',
  () => storage.get(PHONE_TOKEN_KEY),
);
const clientVersion = () => client.version;

export function PhoneApp() {
  useThrottledVersion(clientVersion, 10);
  const { list, ok } = useObservable(robots);
  const cfg = useObservable(config);
  const [robotId, setRobotId] = useState<string | null>(() => localStorage.getItem(ROBOT_KEY));
  const [speed, setSpeed] = useState<number>(() => Number(localStorage.getItem(SPEED_KEY)) || 0.3);
  const [tokenOpen, setTokenOpen] = useState(false);
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
  const auth = client.auth;
  const showToken = tokenOpen || auth === 'needed' || auth === 'refused';

  return (
    <div className="phone">
      <header className="phone-head">
        <span className="logo">fms</span>
        <span className="phone-title">teleop</span>
        <span className={`conn-dot ${connected ? 'on' : ''}`} data-testid="phone-conn" data-state={connected ? 'open' : client.socket.phase} title={connected ? 'connected' : 'not connected'} />
        <button
          type="button"
          className="link operator"
          title={auth === 'token' ? 'Signed in with an operator token' : 'Change the operator name'}
          onClick={() => {
            // with a token, the server names the operator after it: the token panel instead
            if (auth === 'token' || auth === 'needed' || auth === 'refused') return setTokenOpen(!tokenOpen);
            const name = window.prompt('Operator name (letters, digits, _ . -)', client.operator ?? '');
            if (name === null) return;
            if (name.trim() && !validOperator(name.trim())) return toast('Operator names are 1-64 letters, digits, _ . -', 'error');
            storage.set(OPERATOR_KEY, name.trim());
            client.restart();
          }}
          data-testid="operator"
        >
          {auth === 'needed' || auth === 'refused' ? 'sign in' : (client.operator ?? '…')}
        </button>
      </header>
      {auth === 'open' && connected && (
        <div className="phone-open" role="status" data-testid="phone-open-banner">
          <b>Demo mode:</b> open server — anyone on this network can drive.
        </div>
      )}
      {showToken && <TokenPanel auth={auth} onClose={() => setTokenOpen(false)} />}

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
        {robot?.pose ? `x ${robot.pose.x.toFixed(2)} m · y ${robot.pose.y.toFixed(2)} m · heading ${(((robot.pose.yaw ?? 0) * 180) / Math.PI).toFixed(0)}°` : 'pose unknown'}
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

/** The operator token (JWT) field: shown when the server refused the connection, or on demand. */
function TokenPanel({ auth, onClose }: { auth: AuthState; onClose: () => void }) {
  const [text, setText] = useState('');
  const stored = storage.get(PHONE_TOKEN_KEY);
  const claims = stored ? jwtClaims(stored) : null;
  const save = () => {
    const t = cleanCredential(text);
    if (!t) return;
    storage.set(PHONE_TOKEN_KEY, t);
    setText('');
    onClose();
    client.restart();
  };
  return (
    <section className="phone-token" data-testid="token-panel" data-auth={auth}>
      {auth === 'needed' && (
        <p data-testid="token-why">
          This teleop server refused the connection: it requires an <b>operator token</b>. Paste a JWT with the operator or
          admin role (an admin makes one with <code>fms_server token --sub NAME --role operator</code>).
        </p>
      )}
      {auth === 'refused' && (
        <p data-testid="token-why">
          The server refused the connection with this token (401/403): it may have expired, be signed with another secret,
          or lack the operator role. Paste a new one.
        </p>
      )}
      {auth === 'token' && (
        <p>
          Driving as <b>{client.operator ?? claims?.sub ?? '?'}</b> with an operator token
          {claims?.exp ? `, valid until ${new Date(claims.exp * 1000).toLocaleString([], { hour12: false })}` : ''}.
        </p>
      )}
      <form
        className="token-row"
        onSubmit={(e) => {
          e.preventDefault();
          save();
        }}
      >
        <input
          type="password"
          autoComplete="off"
          spellCheck={false}
          placeholder="operator token (eyJ…)"
          value={text}
          onChange={(e) => setText(e.target.value)}
          data-testid="token-input"
        />
        <button type="submit" className="btn" disabled={!text.trim()} data-testid="token-save">
          Use
        </button>
      </form>
      {stored && (
        <button
          type="button"
          className="link small"
          onClick={() => {
            storage.remove(PHONE_TOKEN_KEY);
            onClose();
            client.restart();
          }}
          data-testid="token-forget"
        >
          Forget the token
        </button>
      )}
    </section>
  );
}
