// Reads a ROS map_server map (map.yaml + binary PGM) independently of the app, for checking the canvas.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

function yamlValue(text, key) {
  const m = text.match(new RegExp(`^${key}\\s*:\\s*(.+?)\\s*(#.*)?$`, 'm'));
  return m ? m[1] : undefined;
}

function parsePgm(buf) {
  let pos = 0;
  const token = () => {
    for (;;) {
      while (pos < buf.length && /\s/.test(String.fromCharCode(buf[pos]))) pos++;
      if (buf[pos] === 0x23) {
        while (pos < buf.length && buf[pos] !== 0x0a) pos++;
        continue;
      }
      break;
    }
    const start = pos;
    while (pos < buf.length && !/\s/.test(String.fromCharCode(buf[pos]))) pos++;
    return buf.toString('latin1', start, pos);
  };
  const magic = token();
  if (magic !== 'P5') throw new Error(`only binary PGM (P5) is supported, got ${magic}`);
  const width = Number(token());
  const height = Number(token());
  const maxval = Number(token());
  pos++; // the single whitespace after maxval
  if (maxval > 255) throw new Error('16-bit PGM not supported');
  return { width, height, data: buf.subarray(pos, pos + width * height) };
}

/** { resolution, origin {x, y, yaw}, width, height, cell(col, row) -> 'free' | 'occupied' | 'unknown' } */
export function readRosMap(yamlPath) {
  const y = readFileSync(yamlPath, 'utf8');
  const image = yamlValue(y, 'image').replace(/^["']|["']$/g, '');
  const resolution = Number(yamlValue(y, 'resolution'));
  const [ox, oy, oyaw] = JSON.parse(yamlValue(y, 'origin'));
  const negate = Number(yamlValue(y, 'negate') ?? 0);
  const occ = Number(yamlValue(y, 'occupied_thresh') ?? 0.65);
  const free = Number(yamlValue(y, 'free_thresh') ?? 0.196);
  const pgm = parsePgm(readFileSync(resolve(dirname(yamlPath), image)));
  const cell = (col, row) => {
    const v = pgm.data[row * pgm.width + col];
    const p = negate ? v / 255 : (255 - v) / 255;
    return p > occ ? 'occupied' : p < free ? 'free' : 'unknown';
  };
  return { resolution, origin: { x: ox, y: oy, yaw: oyaw }, width: pgm.width, height: pgm.height, cell };
}
