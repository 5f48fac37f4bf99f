// Unit tests of the reconnect backoff (0.5 s doubling to 10 s, reset).

import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff';

describe('Backoff', () => {
  it('starts at 0.5 s and doubles up to 10 s', () => {
    const b = new Backoff();
    const delays = Array.from({ length: 8 }, () => b.nextDelay());
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 10000, 10000, 10000]);
  });

  it('resets to the initial delay', () => {
    const b = new Backoff();
    b.nextDelay();
    b.nextDelay();
    expect(b.peek()).toBe(2000);
    b.reset();
    expect(b.nextDelay()).toBe(500);
  });

  it('takes other settings', () => {
    const b = new Backoff(100, 250, 3);
    expect([b.nextDelay(), b.nextDelay(), b.nextDelay()]).toEqual([100, 250, 250]);
  });
});
