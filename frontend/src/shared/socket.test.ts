// Unit tests of the reconnecting socket: backoff between attempts, reset on data, silence detection.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ReconnectingSocket } from './socket';

class FakeWs {
  static all: FakeWs[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;
  onerror: (() => void) | null = null;
  closed = false;
  sent: string[] = [];
  constructor(readonly url: string) {
    FakeWs.all.push(this);
  }
  send(d: string) {
    this.sent.push(d);
  }
  close() {
    if (this.closed) return;
    this.closed = true;
    this.onclose?.();
  }
  open() {
    this.onopen?.();
  }
  message(d: string) {
    this.onmessage?.({ data: d });
  }
}

const last = () => FakeWs.all[FakeWs.all.length - 1];

beforeEach(() => {
  FakeWs.all = [];
  vi.useFakeTimers();
  vi.stubGlobal('WebSocket', FakeWs);
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('ReconnectingSocket', () => {
  it('retries after 0.5, 1, 2, 4 s while the server is down, then resets after data', () => {
    const s = new ReconnectingSocket({ url: () => 'ws://x/ws', onMessage: () => {} });
    s.start();
    const attemptsAt: number[] = [];
    const t0 = Date.now();
    for (let i = 0; i < 5; i++) {
      last().close(); // refused
      const n = FakeWs.all.length;
      while (FakeWs.all.length === n) vi.advanceTimersByTime(50);
      attemptsAt.push(Date.now() - t0);
    }
    const gaps = attemptsAt.map((t, i) => t - (i ? attemptsAt[i - 1] : 0));
    expect(gaps).toEqual([500, 1000, 2000, 4000, 8000]);
    last().open();
    last().message('{}');
    last().close();
    vi.advanceTimersByTime(499);
    const n = FakeWs.all.length;
    vi.advanceTimersByTime(1);
    expect(FakeWs.all.length).toBe(n + 1); // back to 0.5 s
    s.stop();
  });

  it('reports reconnects to onOpen and passes messages through', () => {
    const opens: boolean[] = [];
    const msgs: string[] = [];
    const s = new ReconnectingSocket({ url: () => 'ws://x/ws', onMessage: (m) => msgs.push(m), onOpen: (r) => opens.push(r) });
    s.start();
    last().open();
    last().message('a');
    last().close();
    vi.advanceTimersByTime(500);
    last().open();
    expect(opens).toEqual([false, true]);
    expect(msgs).toEqual(['a']);
    expect(s.phase).toBe('open');
    expect(s.send({ type: 'x' })).toBe(true);
    expect(last().sent).toEqual(['{"type":"x"}']);
    s.stop();
  });

  it('drops a socket that falls silent and reconnects', () => {
    const s = new ReconnectingSocket({ url: () => 'ws://x/ws', onMessage: () => {}, silenceMs: 3000 });
    s.start();
    last().open();
    const first = last();
    vi.advanceTimersByTime(4000);
    expect(first.closed).toBe(true);
    expect(s.phase).not.toBe('open');
    vi.advanceTimersByTime(1000);
    expect(FakeWs.all.length).toBe(2);
    s.stop();
  });

  it('counts attempts that close before opening, and tells onClose whether it had opened', () => {
    const closes: boolean[] = [];
    const s = new ReconnectingSocket({ url: () => 'ws://x/ws', onMessage: () => {}, onClose: (opened) => closes.push(opened) });
    s.start();
    last().close(); // refused (e.g. 401 on the upgrade)
    vi.advanceTimersByTime(500);
    last().close();
    expect(s.failedConnects).toBe(2);
    vi.advanceTimersByTime(1000);
    last().open();
    expect(s.failedConnects).toBe(0);
    last().close();
    expect(closes).toEqual([false, false, true]);
    s.stop();
  });

  it('does not send while disconnected', () => {
    const s = new ReconnectingSocket({ url: () => 'ws://x/ws', onMessage: () => {} });
    s.start();
    expect(s.send('x')).toBe(false);
    s.stop();
  });
});
