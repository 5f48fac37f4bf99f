// A WebSocket that reconnects with exponential backoff and drops connections that fall silent.

import { Backoff } from './backoff';

export type SocketPhase = 'connecting' | 'open' | 'waiting';

export interface SocketOptions {
  /** Called before every attempt, so the URL may change (e.g. a new operator name). */
  url: () => string;
  onMessage: (data: string) => void;
  /** `reconnected` is true for every open after the first one. */
  onOpen?: (reconnected: boolean) => void;
  /** `opened` is false when the attempt closed before it opened (refused, unreachable, or 401/403). */
  onClose?: (opened: boolean) => void;
  /** An open socket with no message for this long is treated as dead (server heartbeats are 1 s). */
  silenceMs?: number;
  /** A connection attempt that has not opened after this long is abandoned. */
  connectTimeoutMs?: number;
  backoff?: Backoff;
}

export class ReconnectingSocket {
  phase: SocketPhase = 'waiting';
  /** Attempts that closed before they opened since the last open (refused, unreachable, 401). */
  failedConnects = 0;
  /** Local time (ms) of the last message received, 0 before the first. */
  lastMessageMs = 0;
  /** When the next attempt starts, while phase is 'waiting'. */
  retryAtMs = 0;
  opens = 0;
  private ws: WebSocket | null = null;
  private startedMs = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private watchdog: ReturnType<typeof setInterval> | null = null;
  private stopped = false;
  private readonly backoff: Backoff;

  constructor(private readonly opts: SocketOptions) {
    this.backoff = opts.backoff ?? new Backoff();
  }

  start(): void {
    this.stopped = false;
    this.backoff.reset();
    this.connect();
    this.watchdog ??= setInterval(() => this.checkSilence(), 1000);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.watchdog) clearInterval(this.watchdog);
    this.timer = this.watchdog = null;
    const ws = this.ws;
    this.ws = null;
    ws?.close();
    this.phase = 'waiting';
  }

  send(data: unknown): boolean {
    if (this.phase !== 'open' || !this.ws) return false;
    this.ws.send(typeof data === 'string' ? data : JSON.stringify(data));
    return true;
  }

  private connect(): void {
    this.timer = null;
    if (this.stopped) return;
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.opts.url());
    } catch {
      this.schedule();
      return;
    }
    this.ws = ws;
    this.phase = 'connecting';
    this.startedMs = Date.now();
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.phase = 'open';
      this.failedConnects = 0;
      this.lastMessageMs = Date.now();
      this.opens += 1;
      this.opts.onOpen?.(this.opens > 1);
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.lastMessageMs = Date.now();
      this.backoff.reset();
      this.opts.onMessage(typeof ev.data === 'string' ? ev.data : '');
    };
    ws.onclose = () => this.drop(ws);
    ws.onerror = () => ws.close();
  }

  /** Forgets a socket and schedules the next attempt. */
  private drop(ws: WebSocket): void {
    if (this.ws !== ws) return;
    this.ws = null;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close();
    } catch {
      /* already closed */
    }
    const opened = this.phase !== 'connecting';
    if (!opened) this.failedConnects += 1;
    this.opts.onClose?.(opened);
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    const delay = this.backoff.nextDelay();
    this.phase = 'waiting';
    this.retryAtMs = Date.now() + delay;
    this.timer = setTimeout(() => this.connect(), delay);
  }

  private checkSilence(): void {
    const ws = this.ws;
    if (!ws) return;
    const now = Date.now();
    if (this.phase === 'open' && now - this.lastMessageMs > (this.opts.silenceMs ?? 5000)) this.drop(ws);
    else if (this.phase === 'connecting' && now - this.startedMs > (this.opts.connectTimeoutMs ?? 10_000)) this.drop(ws);
  }
}
