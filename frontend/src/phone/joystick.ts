// Pure joystick maths: pointer offset -> unit-disc stick -> (linear, angular) within the speed limits.

export interface Stick {
  /** -1 (left) .. 1 (right) */
  x: number;
  /** -1 (back) .. 1 (forward) */
  y: number;
}

export interface Limits {
  maxLinear: number;
  maxAngular: number;
}

export interface Twist {
  linear: number;
  angular: number;
}

export const DEADZONE = 0.1;

/** A pointer offset from the stick's centre (screen px, y down) as a point in the unit disc (y up). */
export function offsetToStick(dx: number, dy: number, radiusPx: number): Stick {
  if (!(radiusPx > 0)) return { x: 0, y: 0 };
  let x = dx / radiusPx;
  let y = -dy / radiusPx;
  const r = Math.hypot(x, y);
  if (r > 1) {
    x /= r;
    y /= r;
  }
  return { x: x || 0, y: y || 0 };
}

const round3 = (v: number) => Math.round(v * 1000) / 1000 || 0; // || 0 turns -0 into 0
const clamp = (v: number, lim: number) => Math.max(-lim, Math.min(lim, v));

/**
 * The velocity for a stick position: forward/back is linear, left/right is angular (left = CCW =
 * positive, as ROS). A dead zone around the centre gives exactly zero; beyond it the response is
 * rescaled so that it still reaches the limits at the rim.
 */
export function stickToTwist(s: Stick, limits: Limits, deadzone = DEADZONE): Twist {
  const r = Math.hypot(s.x, s.y);
  if (!(r > deadzone) || !Number.isFinite(r)) return { linear: 0, angular: 0 };
  const k = Math.min(1, (r - deadzone) / (1 - deadzone)) / r;
  return {
    linear: round3(clamp(s.y * k * limits.maxLinear, Math.abs(limits.maxLinear))),
    angular: round3(clamp(-s.x * k * limits.maxAngular, Math.abs(limits.maxAngular))),
  };
}

/** The limits for a chosen top speed: never above the server's, angular scaled in proportion. */
export function limitsFor(serverMax: { max_linear: number; max_angular: number }, chosenLinear: number): Limits {
  const maxLinear = Math.max(0, Math.min(chosenLinear, serverMax.max_linear));
  const f = serverMax.max_linear > 0 ? maxLinear / serverMax.max_linear : 0;
  return { maxLinear, maxAngular: serverMax.max_angular * f };
}
