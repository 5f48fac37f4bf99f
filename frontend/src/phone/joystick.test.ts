// Unit tests of the joystick mapping: pointer offset -> stick -> (linear, angular) within limits.

import { describe, expect, it } from 'vitest';
import { DEADZONE, limitsFor, offsetToStick, stickToTwist } from './joystick';

const limits = { maxLinear: 0.5, maxAngular: 1.0 };

describe('offsetToStick', () => {
  it('turns screen px (y down) into the unit disc (y up)', () => {
    expect(offsetToStick(0, -50, 100)).toEqual({ x: 0, y: 0.5 });
    expect(offsetToStick(100, 0, 100)).toEqual({ x: 1, y: 0 });
  });

  it('clamps to the rim', () => {
    const s = offsetToStick(300, -400, 100);
    expect(Math.hypot(s.x, s.y)).toBeCloseTo(1);
    expect(s.x).toBeCloseTo(0.6);
    expect(s.y).toBeCloseTo(0.8);
  });

  it('is zero for a zero radius', () => {
    expect(offsetToStick(10, 10, 0)).toEqual({ x: 0, y: 0 });
  });
});

describe('stickToTwist', () => {
  it('full forward is max linear, no turn', () => {
    expect(stickToTwist({ x: 0, y: 1 }, limits)).toEqual({ linear: 0.5, angular: 0 });
  });

  it('full back is minus max linear', () => {
    expect(stickToTwist({ x: 0, y: -1 }, limits)).toEqual({ linear: -0.5, angular: 0 });
  });

  it('left turns counter-clockwise (positive), right clockwise', () => {
    expect(stickToTwist({ x: -1, y: 0 }, limits)).toEqual({ linear: 0, angular: 1 });
    expect(stickToTwist({ x: 1, y: 0 }, limits)).toEqual({ linear: 0, angular: -1 });
  });

  it('is exactly zero inside the dead zone', () => {
    expect(stickToTwist({ x: 0.05, y: 0.05 }, limits)).toEqual({ linear: 0, angular: 0 });
    expect(stickToTwist({ x: 0, y: DEADZONE }, limits)).toEqual({ linear: 0, angular: 0 });
  });

  it('rescales beyond the dead zone: halfway out of it is half speed', () => {
    const t = stickToTwist({ x: 0, y: DEADZONE + (1 - DEADZONE) / 2 }, limits);
    expect(t.linear).toBeCloseTo(0.25, 3);
  });

  it('never exceeds the limits, even for a stick off the disc', () => {
    const t = stickToTwist({ x: -5, y: 5 }, limits);
    expect(Math.abs(t.linear)).toBeLessThanOrEqual(0.5);
    expect(Math.abs(t.angular)).toBeLessThanOrEqual(1);
  });

  it('ignores NaN', () => {
    expect(stickToTwist({ x: Number.NaN, y: 1 }, limits)).toEqual({ linear: 0, angular: 0 });
  });
});

describe('limitsFor', () => {
  const server = { max_linear: 0.5, max_angular: 1.0 };

  it('caps the chosen speed at the server maximum', () => {
    expect(limitsFor(server, 2)).toEqual({ maxLinear: 0.5, maxAngular: 1 });
  });

  it('scales the turn rate with the chosen speed', () => {
    expect(limitsFor(server, 0.25)).toEqual({ maxLinear: 0.25, maxAngular: 0.5 });
  });

  it('maps a full stick to the chosen limit', () => {
    expect(stickToTwist({ x: 0, y: 1 }, limitsFor(server, 0.2)).linear).toBeCloseTo(0.2);
  });
});
