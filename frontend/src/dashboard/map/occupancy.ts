// Occupancy of the ROS map image (map_server trinary thresholds) and its recolouring for the dark theme.

export const Cell = { Free: 0, Occupied: 1, Unknown: 2 } as const;
export type Cell = (typeof Cell)[keyof typeof Cell];

/** map_server defaults: occupied_thresh 0.65, free_thresh 0.196, negate 0 (p = (255 - v) / 255). */
export function classifyGray(v: number, alpha = 255, occupiedThresh = 0.65, freeThresh = 0.196): Cell {
  if (alpha < 128) return Cell.Unknown;
  const p = (255 - v) / 255;
  if (p > occupiedThresh) return Cell.Occupied;
  if (p < freeThresh) return Cell.Free;
  return Cell.Unknown;
}

/** Theme colours (r, g, b) per cell class. */
export const CELL_RGB: Record<Cell, [number, number, number]> = {
  [Cell.Free]: [30, 41, 59],
  [Cell.Occupied]: [203, 213, 225],
  [Cell.Unknown]: [13, 19, 33],
};

/**
 * Classifies RGBA pixels (the map image's data) into cells and rewrites them in theme colours.
 * Returns one Cell per pixel, row-major from the top-left.
 */
export function classifyAndRecolor(rgba: Uint8ClampedArray): Uint8Array {
  const n = rgba.length / 4;
  const cells = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const o = 4 * i;
    // grey level: the map is greyscale, but average in case it was saved in colour
    const v = (rgba[o] + rgba[o + 1] + rgba[o + 2]) / 3;
    const c = classifyGray(v, rgba[o + 3]);
    cells[i] = c;
    const rgb = CELL_RGB[c];
    rgba[o] = rgb[0];
    rgba[o + 1] = rgb[1];
    rgba[o + 2] = rgb[2];
    rgba[o + 3] = 255;
  }
  return cells;
}
