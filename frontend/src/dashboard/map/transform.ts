// Pure coordinate transforms: world (metres, map frame) <-> ROS map image pixels <-> screen (CSS px).
//
// ROS map_server convention: image row 0 is the TOP (largest y). Cell (col, row) covers
// world x = origin.x + col*res .. +res and y = origin.y + (height-1-row)*res .. +res (before the
// origin's yaw, which rotates the grid about the origin). Continuous image coordinates (u, v)
// run from (0, 0) at the top-left corner of the image to (width, height) at its bottom-right.

export interface MapGeometry {
  resolution: number;
  origin: { x: number; y: number; yaw: number };
  width: number;
  height: number;
}

/** The screen view: world point (cx, cy) at the canvas centre, `scale` CSS px per metre. */
export interface View {
  cx: number;
  cy: number;
  scale: number;
  width: number;
  height: number;
}

export interface Point {
  x: number;
  y: number;
}

export interface Bounds {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
}

export const MIN_SCALE = 0.5;
export const MAX_SCALE = 800;

/** World -> map-local metres (the grid's own axes, origin at the map origin). */
function toLocal(g: MapGeometry, x: number, y: number): Point {
  const dx = x - g.origin.x;
  const dy = y - g.origin.y;
  const c = Math.cos(g.origin.yaw);
  const s = Math.sin(g.origin.yaw);
  return { x: c * dx + s * dy, y: -s * dx + c * dy };
}

function fromLocal(g: MapGeometry, lx: number, ly: number): Point {
  const c = Math.cos(g.origin.yaw);
  const s = Math.sin(g.origin.yaw);
  return { x: g.origin.x + c * lx - s * ly, y: g.origin.y + s * lx + c * ly };
}

/** World -> continuous image coordinates (u right, v down). */
export function worldToPixel(g: MapGeometry, x: number, y: number): { u: number; v: number } {
  const l = toLocal(g, x, y);
  return { u: l.x / g.resolution, v: g.height - l.y / g.resolution };
}

/** Continuous image coordinates -> world. */
export function pixelToWorld(g: MapGeometry, u: number, v: number): Point {
  return fromLocal(g, u * g.resolution, (g.height - v) * g.resolution);
}

/** The image cell holding a world point, or null outside the map. */
export function worldToCell(g: MapGeometry, x: number, y: number): { col: number; row: number } | null {
  const l = toLocal(g, x, y);
  const col = Math.floor(l.x / g.resolution);
  const row = g.height - 1 - Math.floor(l.y / g.resolution);
  if (col < 0 || row < 0 || col >= g.width || row >= g.height) return null;
  return { col, row };
}

/** The world centre of an image cell. */
export function cellToWorld(g: MapGeometry, col: number, row: number): Point {
  return pixelToWorld(g, col + 0.5, row + 0.5);
}

/** The world bounding box of the whole map image. */
export function mapBounds(g: MapGeometry): Bounds {
  const corners = [
    pixelToWorld(g, 0, 0),
    pixelToWorld(g, g.width, 0),
    pixelToWorld(g, 0, g.height),
    pixelToWorld(g, g.width, g.height),
  ];
  return {
    minX: Math.min(...corners.map((p) => p.x)),
    maxX: Math.max(...corners.map((p) => p.x)),
    minY: Math.min(...corners.map((p) => p.y)),
    maxY: Math.max(...corners.map((p) => p.y)),
  };
}

export function worldToScreen(view: View, x: number, y: number): Point {
  return { x: view.width / 2 + (x - view.cx) * view.scale, y: view.height / 2 - (y - view.cy) * view.scale };
}

export function screenToWorld(view: View, sx: number, sy: number): Point {
  return { x: view.cx + (sx - view.width / 2) / view.scale, y: view.cy - (sy - view.height / 2) / view.scale };
}

/** The canvas transform [a, b, c, d, e, f] that draws image pixel (u, v) at its screen position. */
export function imageToScreenMatrix(g: MapGeometry, view: View): [number, number, number, number, number, number] {
  const s = view.scale;
  const r = g.resolution;
  const cos = Math.cos(g.origin.yaw);
  const sin = Math.sin(g.origin.yaw);
  const hm = g.height * r;
  return [
    s * cos * r,
    -s * sin * r,
    s * sin * r,
    s * cos * r,
    view.width / 2 + s * (g.origin.x - view.cx - sin * hm),
    view.height / 2 - s * (g.origin.y - view.cy + cos * hm),
  ];
}

/** Zooms by `factor` keeping the world point under (sx, sy) fixed on screen. */
export function zoomAt(view: View, sx: number, sy: number, factor: number): View {
  const anchor = screenToWorld(view, sx, sy);
  const scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, view.scale * factor));
  return {
    ...view,
    scale,
    cx: anchor.x - (sx - view.width / 2) / scale,
    cy: anchor.y + (sy - view.height / 2) / scale,
  };
}

/** Moves the view so that the content follows a drag of (dx, dy) screen pixels. */
export function panBy(view: View, dx: number, dy: number): View {
  return { ...view, cx: view.cx - dx / view.scale, cy: view.cy + dy / view.scale };
}

/** A view showing `b` whole, centred, with `marginPx` on each side. */
export function fitBounds(b: Bounds, width: number, height: number, marginPx = 24): View {
  const spanX = Math.max(b.maxX - b.minX, 1);
  const spanY = Math.max(b.maxY - b.minY, 1);
  const scale = Math.min(
    MAX_SCALE,
    Math.max(MIN_SCALE, Math.min((width - 2 * marginPx) / spanX, (height - 2 * marginPx) / spanY)),
  );
  return { cx: (b.minX + b.maxX) / 2, cy: (b.minY + b.maxY) / 2, scale, width, height };
}

/** The union of bounds (null entries ignored). */
export function unionBounds(...list: (Bounds | null)[]): Bounds | null {
  let out: Bounds | null = null;
  for (const b of list) {
    if (!b) continue;
    out = out
      ? {
          minX: Math.min(out.minX, b.minX),
          minY: Math.min(out.minY, b.minY),
          maxX: Math.max(out.maxX, b.maxX),
          maxY: Math.max(out.maxY, b.maxY),
        }
      : { ...b };
  }
  return out;
}

/** A "nice" grid step in metres: the smallest of 1-2-5 x 10^k that is at least minPx on screen. */
export function gridStep(scale: number, minPx = 24): number {
  for (let k = -2; k <= 5; k++) {
    for (const m of [1, 2, 5]) {
      const step = m * 10 ** k;
      if (step * scale >= minPx) return step;
    }
  }
  return 1e6;
}
