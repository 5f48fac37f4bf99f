// Check a: the robots appear on the map where their poses say, and the map image is drawn true to scale.

import { MAP_YAML, ROBOTS } from '../lib/stack.mjs';
import { readRosMap } from '../lib/rosmap.mjs';
import { assert, http } from '../lib/util.mjs';

export const title = 'robots on the map at their poses; map at metric scale; pan, zoom, follow';

const THEME = { free: [30, 41, 59], occupied: [203, 213, 225], unknown: [13, 19, 33] };
const IDLE = [56, 189, 248];

const dist3 = (a, b) => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
const nearest = (rgb) => Object.entries(THEME).sort((a, b) => dist3(rgb, a[1]) - dist3(rgb, b[1]))[0][0];

export async function run({ stack, page }) {
  const notes = [];
  const rest = await http(stack.base, 'GET', '/api/robots');
  const meta = stack.hasMapFlag ? await page.evaluate(() => window.__fms.mapMeta()) : null;
  // The marker's pixel against the pose, two ways: the view's metric transform, and the map
  // image's pixel grid. Read together; a layout change between the reads (a banner appearing,
  // the canvas resizing) is re-measured, but the settled layout must be exact.
  const measure = async (id) => {
    const img = meta ? await page.evaluate(() => window.__fms.imageRect()) : null;
    const view = await page.evaluate(() => window.__fms.view());
    const canvasBox = await page.locator('[data-testid=map]').boundingBox();
    const pos = await page.evaluate((i) => window.__fms.robotScreenPos(i), id);
    const exp = { x: canvasBox.x + view.width / 2 + (pos.pose.x - view.cx) * view.scale, y: canvasBox.y + view.height / 2 - (pos.pose.y - view.cy) * view.scale };
    let err = Math.hypot(pos.x - exp.x, pos.y - exp.y);
    if (meta) {
      const u = (pos.pose.x - meta.origin.x) / meta.resolution;
      const v = meta.height - (pos.pose.y - meta.origin.y) / meta.resolution;
      const fromImage = { x: img.left + u * img.pxPerCell, y: img.top + v * img.pxPerCell };
      err = Math.max(err, Math.hypot(pos.x - fromImage.x, pos.y - fromImage.y));
    }
    return { pos, err };
  };
  let maxErr = 0;
  let remeasured = 0;
  for (const r of ROBOTS) {
    let { pos, err } = await measure(r.id);
    for (let tries = 0; err >= 1 && tries < 20; tries++) {
      remeasured++;
      await new Promise((resolve) => setTimeout(resolve, 100));
      ({ pos, err } = await measure(r.id));
    }
    const truth = rest.find((e) => e.id === r.id).state.pose;
    assert(Math.hypot(pos.pose.x - truth.x, pos.pose.y - truth.y) < 0.05, `${r.id}: UI pose ${JSON.stringify(pos.pose)} differs from REST ${JSON.stringify(truth)}`);
    maxErr = Math.max(maxErr, err);
    assert(err < 1, `${r.id}: marker at (${pos.x.toFixed(1)}, ${pos.y.toFixed(1)}) is ${err.toFixed(1)} px from the expected pixel`);
    // the marker is really painted there: sample the body behind the heading arrow
    const back = { x: pos.x - Math.cos(pos.pose.yaw) * 4, y: pos.y + Math.sin(pos.pose.yaw) * 4 };
    const rgb = await page.evaluate(([x, y]) => window.__fms.pixelAt(x, y), [back.x, back.y]);
    assert(dist3(rgb, IDLE) < 60, `${r.id}: canvas at the marker is rgb(${rgb}), not the IDLE colour`);
  }
  notes.push(`3 markers within ${maxErr.toFixed(2)} px of their poses${remeasured ? ` (layout settled after ${remeasured} re-measurements)` : ''}`);
  // The settled layout, for the checks below.
  const img = meta ? await page.evaluate(() => window.__fms.imageRect()) : null;
  const view = await page.evaluate(() => window.__fms.view());
  const canvasBox = await page.locator('[data-testid=map]').boundingBox();

  if (meta) {
    // The map image itself: sample cells well inside free / occupied regions of the PGM (read here,
    // independently of the app) and compare the canvas colour there.
    const map = readRosMap(MAP_YAML);
    assert(meta.width === map.width && meta.height === map.height && meta.resolution === map.resolution, `map size ${meta.width}x${meta.height}@${meta.resolution} differs from the yaml/pgm`);
    const uniform = (c, r, k) => {
      for (let dr = -2; dr <= 2; dr++) for (let dc = -2; dc <= 2; dc++) if (map.cell(c + dc, r + dr) !== k) return false;
      return true;
    };
    const samples = [];
    let seed = 7;
    const rand = (n) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const avoid = [...ROBOTS.map((r) => r.pose), ...(await http(stack.base, 'GET', '/api/locations')).map((l) => [l.x, l.y])];
    for (let tries = 0; samples.length < 40 && tries < 200000; tries++) {
      const c = 2 + rand(map.width - 4);
      const r = 2 + rand(map.height - 4);
      const k = map.cell(c, r);
      if (k === 'unknown' || !uniform(c, r, k)) continue;
      if (samples.filter((s) => s.k === k).length >= 20) continue;
      const x = map.origin.x + (c + 0.5) * map.resolution;
      const y = map.origin.y + (map.height - 1 - r + 0.5) * map.resolution;
      if (avoid.some(([ax, ay]) => Math.hypot(ax - x, ay - y) < 1.2)) continue;
      // keep clear of the scale bar (bottom left) and the grid labels along the edges
      const sx = view.width / 2 + (x - view.cx) * view.scale;
      const sy = view.height / 2 - (y - view.cy) * view.scale;
      if (sx < 40 || sy > view.height - 60 || sx > view.width - 10 || sy < 10) continue;
      samples.push({ c, r, k, x, y });
    }
    let wrong = 0;
    for (const s of samples) {
      const p = await page.evaluate(([x, y]) => window.__fms.worldToClient(x, y), [s.x, s.y]);
      const rgb = await page.evaluate(([x, y]) => window.__fms.pixelAt(x, y), [p.x, p.y]);
      if (nearest(rgb) !== s.k) wrong++;
    }
    assert(samples.length >= 30, `found only ${samples.length} sample cells`);
    assert(wrong <= 2, `${wrong} of ${samples.length} sampled map cells are drawn in the wrong place (y-flip/origin?)`);
    notes.push(`${samples.length - wrong}/${samples.length} sampled PGM cells match the canvas`);
    const metres = (img.pxPerCell / map.resolution).toFixed(1);
    notes.push(`${metres} px/m`);
  } else {
    notes.push('server has no --map: metric grid only');
  }
  notes.push(await panZoomFollow(page, canvasBox));
  return notes.join('; ');
}

/** Wheel zoom keeps the point under the pointer; a drag moves the map with the pointer; Follow centres the robot. */
async function panZoomFollow(page, box) {
  const at = { x: box.x + box.width * 0.3, y: box.y + box.height * 0.6 };
  const w0 = await page.evaluate(([x, y]) => window.__fms.clientToWorld(x, y), [at.x, at.y]);
  const s0 = (await page.evaluate(() => window.__fms.view())).scale;
  await page.mouse.move(at.x, at.y);
  await page.mouse.wheel(0, -300);
  await page.waitForFunction((s) => window.__fms.view().scale > s * 1.2, s0, { timeout: 2000 });
  const w1 = await page.evaluate(([x, y]) => window.__fms.clientToWorld(x, y), [at.x, at.y]);
  assert(Math.hypot(w1.x - w0.x, w1.y - w0.y) < 0.05, `wheel zoom moved the point under the pointer by ${Math.hypot(w1.x - w0.x, w1.y - w0.y).toFixed(3)} m`);
  const zoom = (await page.evaluate(() => window.__fms.view())).scale / s0;

  await page.mouse.down();
  await page.mouse.move(at.x + 60, at.y - 40, { steps: 6 });
  await page.mouse.move(at.x + 120, at.y - 80, { steps: 6 });
  await page.mouse.up();
  const w2 = await page.evaluate(([x, y]) => window.__fms.clientToWorld(x, y), [at.x + 120, at.y - 80]);
  assert(Math.hypot(w2.x - w0.x, w2.y - w0.y) < 0.05, 'after a drag, the dragged world point is not under the pointer');

  await page.click('tr[data-robot-id=robot-002]');
  await page.click('[data-testid=follow]');
  await page.waitForFunction(() => {
    const v = window.__fms.view();
    const p = window.__fms.robotScreenPos('robot-002').pose;
    return Math.hypot(v.cx - p.x, v.cy - p.y) < 0.01;
  }, null, { timeout: 3000 });
  await page.click('[data-testid=follow]');
  await page.evaluate(() => {
    window.__fms.select(null);
    window.__fms.fit();
  });
  return `wheel zoom x${zoom.toFixed(2)} kept the pointed point (<5 cm), drag pans 1:1, Follow centres robot-002`;
}
