// Unit tests of the phone server's robot list normalisation.

import { expect, it } from 'vitest';
import { normalizeRobot } from './phoneData';

it('accepts battery as a number or an object', () => {
  const pose = { x: 1, y: 2, yaw: 0, frame: 'map' };
  expect(normalizeRobot({ id: 'a', mode: 'IDLE', battery: 80, pose }).battery).toBe(80);
  expect(normalizeRobot({ id: 'a', mode: 'IDLE', battery: { percentage: 55 }, pose }).battery).toBe(55);
  expect(normalizeRobot({ id: 'a', mode: 'IDLE', battery: null, pose }).battery).toBeNull();
  expect(normalizeRobot({ id: 'a', mode: 'TELEOP', battery: 1, pose, teleop_operator: 'ann' }).teleop_operator).toBe('ann');
});
