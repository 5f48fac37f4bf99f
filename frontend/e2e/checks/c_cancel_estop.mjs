// Check c: cancel from the task table (CANCELED), and the fleet e-stop with its confirmation dialog
// (all robots ESTOPPED in the UI), then release.

import { clickWorld, freePointNear, robotModes, waitRowStatus } from '../lib/dashboard.mjs';
import { ROBOTS } from '../lib/stack.mjs';
import { assert, http, secs, waitFor } from '../lib/util.mjs';

export const title = 'cancel (CANCELED) and fleet e-stop with confirm (ESTOPPED), release';

export async function run({ stack, page, shot }) {
  const notes = [];
  // --- cancel: a long task for robot-002, cancelled from its row
  await waitFor('robot-002 idle again', async () => (await http(stack.base, 'GET', '/api/robots/robot-002')).state.mode === 'IDLE', { timeoutMs: 30000 });
  await page.click('[data-testid=side-robots]');
  await page.click('tr[data-robot-id=robot-002]');
  await page.waitForSelector('[data-testid=robot-detail][data-robot-id=robot-002]', { timeout: 3000 });
  const far = await freePointNear(page, 14.5, 10.5, 1.2);
  assert(far, 'no free far point');
  const before = new Set((await http(stack.base, 'GET', '/api/tasks?robot=robot-002&limit=50')).map((t) => t.id));
  await clickWorld(page, far.x, far.y);
  const task = await waitFor('the long task', async () => (await http(stack.base, 'GET', '/api/tasks?robot=robot-002&limit=50')).find((t) => !before.has(t.id)), { timeoutMs: 5000 });
  await waitRowStatus(page, task.id, 'ACTIVE', 'open', 10000);
  const t0 = Date.now();
  await page.click(`tr[data-task-id="${task.id}"] button[data-action=cancel]`);
  const cancelMs = await waitRowStatus(page, task.id, 'CANCELED', 'history', 10000).then(() => Date.now() - t0);
  await waitFor('robot-002 no longer navigating', async () => (await robotModes(page))['robot-002'] !== 'NAVIGATING', { timeoutMs: 5000 });
  notes.push(`CANCELED ${secs(cancelMs)} after clicking Cancel`);

  // --- fleet e-stop with confirmation
  await page.click('[data-testid=fleet-estop]');
  await page.waitForSelector('[data-testid=estop-dialog]', { timeout: 2000 });
  await shot('estop-dialog', page);
  const t1 = Date.now();
  await page.click('[data-testid=estop-confirm]');
  await waitFor('every robot ESTOPPED in the robot list', async () => {
    const modes = await robotModes(page);
    return ROBOTS.every((r) => modes[r.id] === 'ESTOPPED');
  }, { timeoutMs: 10000 });
  const estopMs = Date.now() - t1;
  await page.waitForSelector('[data-testid=estop-banner]', { timeout: 5000 });
  const status = await http(stack.base, 'GET', '/api/fleet/status');
  assert(status.estop_engaged, 'server does not report estop_engaged');
  notes.push(`all ESTOPPED ${secs(estopMs)} after confirm`);

  // a task is refused or waits while e-stopped; the detail panel shows it all
  await page.click('tr[data-robot-id=robot-001]');
  await page.waitForSelector('[data-testid=robot-detail][data-robot-id=robot-001] [data-testid=robot-release]', { timeout: 3000 });
  await page.waitForTimeout(600);
  await shot('robot-detail', page);

  const t2 = Date.now();
  await page.click('[data-testid=fleet-release]');
  await waitFor('no robot ESTOPPED after release', async () => {
    const modes = await robotModes(page);
    return ROBOTS.every((r) => modes[r.id] && modes[r.id] !== 'ESTOPPED');
  }, { timeoutMs: 10000 });
  await page.waitForSelector('[data-testid=estop-banner]', { state: 'detached', timeout: 5000 });
  notes.push(`released ${secs(Date.now() - t2)} after Release`);
  await page.evaluate(() => window.__fms.select(null));
  return notes.join('; ');
}
