// Unit tests of the map image classification (map_server trinary thresholds) and recolouring.

import { describe, expect, it } from 'vitest';
import { Cell, CELL_RGB, classifyAndRecolor, classifyGray } from './occupancy';

describe('classifyGray', () => {
  it('follows map_saver values: 0 occupied, 254 free, 205 unknown', () => {
    expect(classifyGray(0)).toBe(Cell.Occupied);
    expect(classifyGray(254)).toBe(Cell.Free);
    expect(classifyGray(255)).toBe(Cell.Free);
    expect(classifyGray(205)).toBe(Cell.Unknown);
  });

  it('uses the thresholds at their edges', () => {
    expect(classifyGray(89)).toBe(Cell.Occupied); // p = 0.651
    expect(classifyGray(90)).toBe(Cell.Unknown); // p = 0.647
    expect(classifyGray(206)).toBe(Cell.Free); // p = 0.192
  });

  it('treats transparent pixels as unknown', () => {
    expect(classifyGray(255, 0)).toBe(Cell.Unknown);
  });
});

it('classifyAndRecolor returns one cell per pixel and paints theme colours', () => {
  const px = new Uint8ClampedArray([0, 0, 0, 255, 254, 254, 254, 255, 205, 205, 205, 255]);
  const cells = classifyAndRecolor(px);
  expect([...cells]).toEqual([Cell.Occupied, Cell.Free, Cell.Unknown]);
  expect([...px.slice(0, 3)]).toEqual(CELL_RGB[Cell.Occupied]);
  expect([...px.slice(4, 7)]).toEqual(CELL_RGB[Cell.Free]);
});
