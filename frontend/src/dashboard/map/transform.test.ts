// Unit tests of the map transforms: world <-> image pixel <-> screen, origin, resolution, y-flip.

import { describe, expect, it } from 'vitest';
import {
  cellToWorld,
  fitBounds,
  gridStep,
  imageToScreenMatrix,
  mapBounds,
  panBy,
  pixelToWorld,
  screenToWorld,
  worldToCell,
  worldToPixel,
  worldToScreen,
  zoomAt,
  type MapGeometry,
  type View,
} from './transform';

const demo: MapGeometry = { resolution: 0.05, origin: { x: -3, y: -3, yaw: 0 }, width: 440, height: 340 };
const view: View = { cx: 8, cy: 5.5, scale: 40, width: 1000, height: 600 };

describe('world <-> image pixels', () => {
  it('puts the origin at the bottom-left corner of the image (row 0 is the top)', () => {
    expect(worldToPixel(demo, -3, -3)).toEqual({ u: 0, v: 340 });
    const top = worldToPixel(demo, -3, -3 + 340 * 0.05);
    expect(top.u).toBeCloseTo(0);
    expect(top.v).toBeCloseTo(0);
  });

  it('maps world (0, 0) to column 60 and row 279 of the demo map', () => {
    const p = worldToPixel(demo, 0, 0);
    expect(p.u).toBeCloseTo(60);
    expect(p.v).toBeCloseTo(280);
    expect(worldToCell(demo, 0.01, 0.01)).toEqual({ col: 60, row: 279 });
    expect(worldToCell(demo, -0.01, -0.01)).toEqual({ col: 59, row: 280 });
  });

  it('flips y: a larger y is a smaller row', () => {
    expect(worldToCell(demo, 1, 5)!.row).toBeLessThan(worldToCell(demo, 1, 4)!.row);
  });

  it('cell (col, row) covers x = ox + col*res .. +res and y = oy + (h-1-row)*res .. +res', () => {
    const res = demo.resolution;
    for (const [col, row] of [
      [0, 0],
      [0, 339],
      [439, 0],
      [123, 45],
    ]) {
      const x0 = demo.origin.x + col * res;
      const y0 = demo.origin.y + (demo.height - 1 - row) * res;
      expect(worldToCell(demo, x0 + 0.001, y0 + 0.001)).toEqual({ col, row });
      expect(worldToCell(demo, x0 + res - 0.001, y0 + res - 0.001)).toEqual({ col, row });
      const c = cellToWorld(demo, col, row);
      expect(c.x).toBeCloseTo(x0 + res / 2);
      expect(c.y).toBeCloseTo(y0 + res / 2);
    }
  });

  it('is null outside the map', () => {
    expect(worldToCell(demo, -3.01, 0)).toBeNull();
    expect(worldToCell(demo, 0, 14.01)).toBeNull();
    expect(worldToCell(demo, 19.01, 0)).toBeNull();
  });

  it('round-trips, also with a rotated origin and another resolution', () => {
    const rotated: MapGeometry = { resolution: 0.1, origin: { x: 2, y: -1, yaw: 0.5 }, width: 100, height: 50 };
    for (const g of [demo, rotated]) {
      for (const [x, y] of [
        [0, 0],
        [3.3, -1.7],
        [10, 4],
      ]) {
        const p = worldToPixel(g, x, y);
        const w = pixelToWorld(g, p.u, p.v);
        expect(w.x).toBeCloseTo(x, 9);
        expect(w.y).toBeCloseTo(y, 9);
      }
    }
    // with yaw 90°, the image's +u axis points along world +y
    const r90: MapGeometry = { resolution: 1, origin: { x: 0, y: 0, yaw: Math.PI / 2 }, width: 10, height: 10 };
    const p = pixelToWorld(r90, 5, 10);
    expect(p.x).toBeCloseTo(0);
    expect(p.y).toBeCloseTo(5);
  });

  it('bounds cover the whole image', () => {
    expect(mapBounds(demo)).toEqual({ minX: -3, minY: -3, maxX: 19, maxY: 14 });
  });
});

describe('world <-> screen', () => {
  it('puts the view centre at the canvas centre and flips y', () => {
    expect(worldToScreen(view, 8, 5.5)).toEqual({ x: 500, y: 300 });
    expect(worldToScreen(view, 9, 5.5)).toEqual({ x: 540, y: 300 });
    expect(worldToScreen(view, 8, 6.5)).toEqual({ x: 500, y: 260 });
  });

  it('round-trips', () => {
    const s = worldToScreen(view, -2.25, 11.5);
    const w = screenToWorld(view, s.x, s.y);
    expect(w.x).toBeCloseTo(-2.25);
    expect(w.y).toBeCloseTo(11.5);
  });

  it('draws the image where the world transform puts each pixel (matrix agrees with the two transforms)', () => {
    for (const g of [demo, { ...demo, origin: { x: 1, y: 2, yaw: 0.3 } }]) {
      const [a, b, c, d, e, f] = imageToScreenMatrix(g, view);
      for (const [u, v] of [
        [0, 0],
        [440, 340],
        [60, 280],
        [17.5, 99.25],
      ]) {
        const w = pixelToWorld(g, u, v);
        const s = worldToScreen(view, w.x, w.y);
        expect(a * u + c * v + e).toBeCloseTo(s.x, 6);
        expect(b * u + d * v + f).toBeCloseTo(s.y, 6);
      }
    }
  });
});

describe('pan, zoom, fit', () => {
  it('zooms about the pointer: the world point under it stays put', () => {
    const before = screenToWorld(view, 200, 450);
    const z = zoomAt(view, 200, 450, 2.5);
    expect(z.scale).toBe(100);
    const after = screenToWorld(z, 200, 450);
    expect(after.x).toBeCloseTo(before.x);
    expect(after.y).toBeCloseTo(before.y);
  });

  it('clamps the zoom', () => {
    expect(zoomAt(view, 0, 0, 1e9).scale).toBe(800);
    expect(zoomAt(view, 0, 0, 1e-9).scale).toBe(0.5);
  });

  it('pans with the drag (content follows the pointer)', () => {
    const p = panBy(view, 40, -80);
    expect(worldToScreen(p, 8, 5.5)).toEqual({ x: 540, y: 220 });
  });

  it('fits bounds inside the canvas with a margin, centred', () => {
    const f = fitBounds({ minX: -3, minY: -3, maxX: 19, maxY: 14 }, 1000, 600, 20);
    expect(f.cx).toBe(8);
    expect(f.cy).toBe(5.5);
    expect(f.scale).toBeCloseTo(Math.min(960 / 22, 560 / 17));
    const tl = worldToScreen(f, -3, 14);
    expect(tl.y).toBeCloseTo(20);
    expect(tl.x).toBeGreaterThanOrEqual(20);
  });

  it('picks 1-2-5 grid steps at least minPx apart', () => {
    expect(gridStep(40, 24)).toBe(1);
    expect(gridStep(10, 24)).toBe(5);
    expect(gridStep(200, 24)).toBe(0.2);
  });
});
