// Loads the ROS map (GET /api/map + its PNG) into a theme-coloured canvas and an occupancy grid.

import { ApiError, get, getBlob } from '../../shared/api';
import type { MapMeta } from '../../shared/types';
import { Cell, classifyAndRecolor } from './occupancy';
import { worldToCell } from './transform';

export interface LoadedMap {
  meta: MapMeta;
  /** The recoloured image, drawn with imageToScreenMatrix. */
  canvas: HTMLCanvasElement;
  cells: Uint8Array;
}

/** The map, or null when the server has none (404). */
export async function loadMap(): Promise<LoadedMap | null> {
  let meta: MapMeta;
  try {
    meta = await get<MapMeta>('/api/map');
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
  // fetched (not <img src>) so that the request carries the credential
  const img = await createImageBitmap(await getBlob(meta.image || '/api/map/image'), { colorSpaceConversion: 'none' });
  const canvas = document.createElement('canvas');
  canvas.width = img.width;
  canvas.height = img.height;
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  ctx.drawImage(img, 0, 0);
  img.close();
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const cells = classifyAndRecolor(data.data);
  ctx.putImageData(data, 0, 0);
  // The image is the truth for its size; the metadata may disagree if the map was edited.
  return { meta: { ...meta, width: canvas.width, height: canvas.height }, canvas, cells };
}

/** The occupancy of a world point; Unknown outside the map. */
export function cellAt(map: LoadedMap, x: number, y: number): Cell {
  const c = worldToCell(map.meta, x, y);
  return c ? (map.cells[c.row * map.meta.width + c.col] as Cell) : Cell.Unknown;
}
