// The phone's teleop link: /ws/teleop socket, 10 Hz teleop commands while the dead-man is held,
// a stop on release, and the lease status the server reports. With authentication on, the phone
// server takes an operator token (JWT) as ?access_token= and refuses the upgrade (401/403)
// without a good one; a browser only sees the socket close, so a failed connect to a server that
// answers /healthz is taken as "a token is needed" (or "the token was refused").

import { wsUrl } from '../shared/api';
import { withAccessToken } from '../shared/auth';
import { ReconnectingSocket } from '../shared/socket';
import { toast } from '../shared/toasts';
import type { Twist } from './joystick';

export const SEND_HZ = 10;

/** An operator name the phone server accepts: 1-64 letters, digits, `_ . -`. */
export const validOperator = (s: string) => /^[A-Za-z0-9_.-]{1,64}$/.test(s);

/**
 * What the page knows of authentication: `unknown` before the first connect; `open` connected
 * without a token (the server drives for anybody); `token` connected with one; `needed` refused
 * without a token; `refused` refused with the token we have.
 */
export type AuthState = 'unknown' | 'open' | 'token' | 'needed' | 'refused';

export interface LeaseStatus {
  robot_id: string;
  holder: string | null;
  yours: boolean;
  mode: string;
  /** Local time it arrived. */
  atMs: number;
}

type ServerMessage =
  | { type: 'hello'; operator: string }
  | { type: 'teleop_status'; robot_id: string; holder: string | null; yours: boolean; mode: string }
  | { type: 'error'; message: string };

export class TeleopClient {
  operator: string | null = null;
  status: LeaseStatus | null = null;
  driving = false;
  robotId: string | null = null;
  twist: Twist = { linear: 0, angular: 0 };
  sent = 0;
  /** Local time (ms) the last teleop command went out. */
  lastSentMs = 0;
  version = 0;
  auth: AuthState = 'unknown';
  readonly socket: ReconnectingSocket;
  private timer: ReturnType<typeof setInterval> | null = null;
  /** The token the current (or last) connection attempt carried. */
  private attemptToken: string | null = null;

  constructor(
    private readonly requestedOperator: () => string,
    private readonly token: () => string | null = () => null,
  ) {
    this.socket = new ReconnectingSocket({
      url: () => {
        const op = this.requestedOperator().trim();
        const tok = this.token()?.trim() || null;
        this.attemptToken = tok;
        return wsUrl(withAccessToken(op && validOperator(op) ? `/ws/teleop?operator=${encodeURIComponent(op)}` : '/ws/teleop', tok));
      },
      onMessage: (text) => this.onMessage(text),
      onOpen: () => {
        this.auth = this.attemptToken ? 'token' : 'open';
        this.bump();
      },
      onClose: (opened) => {
        // commands cannot reach the robot: its dead-man stops it; show that we are not driving
        if (!opened) void this.diagnose(this.attemptToken);
        this.bump();
      },
      silenceMs: 8000,
    });
  }

  /** After a refused connect: if the server itself answers, the refusal is about the token. */
  private async diagnose(token: string | null): Promise<void> {
    try {
      const r = await fetch('/healthz', { cache: 'no-store', signal: AbortSignal.timeout(3000) });
      if (!r.ok || this.socket.phase === 'open') return;
      this.auth = token ? 'refused' : 'needed';
    } catch {
      /* the server is down: not a token problem */
    }
    this.bump();
  }

  start(): void {
    this.socket.start();
  }

  /** Reconnects, e.g. after the operator name changed. */
  restart(): void {
    this.release();
    this.socket.stop();
    this.socket.start();
  }

  private bump(): void {
    this.version++;
  }

  private onMessage(text: string): void {
    let m: ServerMessage;
    try {
      m = JSON.parse(text) as ServerMessage;
    } catch {
      return;
    }
    if (m.type === 'hello') this.operator = m.operator;
    else if (m.type === 'teleop_status') this.status = { ...m, atMs: Date.now() };
    else if (m.type === 'error') toast(m.message, 'error');
    this.bump();
  }

  /** The dead-man is pressed: send now, then every 100 ms until release(). */
  hold(robotId: string): void {
    this.robotId = robotId;
    if (this.driving) return;
    this.driving = true;
    this.sendTeleop();
    this.timer = setInterval(() => this.sendTeleop(), 1000 / SEND_HZ);
    this.bump();
  }

  setTwist(t: Twist): void {
    this.twist = t;
  }

  /** The dead-man was released (or the page hidden, or the pointer cancelled): stop now. */
  release(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.driving && this.robotId) this.socket.send({ type: 'stop', robot_id: this.robotId });
    this.driving = false;
    this.bump();
  }

  private sendTeleop(): void {
    if (!this.robotId) return;
    const ok = this.socket.send({ type: 'teleop', robot_id: this.robotId, linear: this.twist.linear, angular: this.twist.angular });
    if (ok) {
      this.sent++;
      this.lastSentMs = Date.now();
    }
  }

  /** The lease as last reported for this robot (null when unknown or older than 2 s). */
  leaseFor(robotId: string | null): LeaseStatus | null {
    const s = this.status;
    return s && robotId && s.robot_id === robotId && Date.now() - s.atMs < 2000 ? s : null;
  }
}
