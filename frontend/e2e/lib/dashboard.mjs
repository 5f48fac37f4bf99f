// Dashboard page helpers for the checks: open it, read window.__fms, click the map, find task rows.

import { ROBOTS } from './stack.mjs';
import { waitFor } from './util.mjs';

export async function openDashboard(page, base, { mapExpected }) {
  await page.goto(base + '/');
  await waitDashboard(page, { mapExpected });
}

/** Waits for the dashboard (already loaded, and signed in if need be) to show the map and 3 robots. */
export async function waitDashboard(page, { mapExpected }) {
  await waitFor('dashboard ready (first frame, map loaded or absent)', () => page.evaluate(() => window.__fms?.ready()), { timeoutMs: 20000 });
  if (mapExpected) {
    await waitFor('map status ready', () => page.evaluate(() => window.__fms.mapStatus() === 'ready'), { timeoutMs: 15000 });
  }
  await waitFor('3 robots with state in the dashboard', () =>
    page.evaluate((ids) => ids.every((id) => window.__fms.robotScreenPos(id)), ROBOTS.map((r) => r.id)),
  );
}

export const robotPos = (page, id) => page.evaluate((i) => window.__fms.robotScreenPos(i), id);

export const worldToClient = (page, x, y) => page.evaluate(([a, b]) => window.__fms.worldToClient(a, b), [x, y]);

/** Clicks the map at a world point (a real mouse click on the canvas). */
export async function clickWorld(page, x, y) {
  const p = await worldToClient(page, x, y);
  await page.mouse.click(p.x, p.y);
  return p;
}

/** Clicks a robot's marker on the canvas. */
export async function clickRobot(page, id) {
  const p = await robotPos(page, id);
  await page.mouse.click(p.x, p.y);
}

export async function tab(page, which) {
  await page.click(`[data-testid=tab-${which}]`);
}

/** The status of a task row in the task table (either tab), or null. */
export async function rowStatus(page, taskId) {
  for (const t of ['open', 'history']) {
    await tab(page, t);
    const s = await page.getAttribute(`tr[data-task-id="${taskId}"]`, 'data-status', { timeout: 200 }).catch(() => null);
    if (s) return s;
  }
  return null;
}

/** Waits for a task row to show `status` in the given tab; returns ms waited. */
export async function waitRowStatus(page, taskId, status, tabName, timeoutMs = 30000) {
  const t0 = Date.now();
  await tab(page, tabName);
  await page.waitForSelector(`tr[data-task-id="${taskId}"][data-status="${status}"]`, { timeout: timeoutMs });
  return Date.now() - t0;
}

export async function robotModes(page) {
  return page.evaluate(() => Object.fromEntries([...document.querySelectorAll('tr[data-robot-id]')].map((tr) => [tr.dataset.robotId, tr.dataset.mode])));
}

/** A free map point (per the page's own occupancy) at least `clear` m from every robot, near (x, y). */
export async function freePointNear(page, x, y, clear = 1.0) {
  return page.evaluate(
    ([x0, y0, c]) => {
      const f = window.__fms;
      const robots = f.robotIds().map((id) => f.robotScreenPos(id).pose);
      for (let r = 0; r < 6; r += 0.25) {
        for (let a = 0; a < Math.PI * 2; a += Math.PI / 8) {
          const x = x0 + r * Math.cos(a);
          const y = y0 + r * Math.sin(a);
          const ok = (f.cellAt(x, y) ?? 0) === 0 && [-0.3, 0.3].every((d) => (f.cellAt(x + d, y) ?? 0) === 0 && (f.cellAt(x, y + d) ?? 0) === 0);
          if (ok && robots.every((p) => Math.hypot(p.x - x, p.y - y) >= c)) return { x: +x.toFixed(2), y: +y.toFixed(2) };
          if (r === 0) break;
        }
      }
      return null;
    },
    [x, y, clear],
  );
}

/** Waits for a toast containing `text`; returns its text. */
export async function waitToast(page, text, timeoutMs = 5000) {
  const t = page.locator('.toast', { hasText: text }).first();
  await t.waitFor({ timeout: timeoutMs });
  return (await t.textContent()).trim();
}
