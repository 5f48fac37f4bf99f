// Check b: select a robot on the map, click a free point, and the new task runs to COMPLETED in the table.

import { clickRobot, clickWorld, freePointNear, waitRowStatus } from '../lib/dashboard.mjs';
import { assert, http, secs, waitFor } from '../lib/util.mjs';

export const title = 'map click creates a task that completes';

export async function run({ stack, page, shot }) {
  // other robots get work too, so the screenshot shows motion, goals and trails
  await http(stack.base, 'POST', '/api/tasks', { target: 'pick_b', robot_id: 'robot-002' });
  await http(stack.base, 'POST', '/api/tasks', { target: 'drop', robot_id: 'robot-003' });

  await clickRobot(page, 'robot-001');
  await page.waitForSelector('[data-testid=robot-detail][data-robot-id=robot-001]', { timeout: 3000 });
  const mode = await page.textContent('[data-testid=click-mode]');
  assert(mode.includes('send robot-001'), `click mode reads "${mode}"`);

  const start = (await page.evaluate(() => window.__fms.robotScreenPos('robot-001'))).pose;
  const target = await freePointNear(page, start.x + 3.0, start.y + 1.0, 1.2);
  assert(target, 'no free map point near robot-001');
  const before = new Set((await http(stack.base, 'GET', '/api/tasks?robot=robot-001&limit=20')).map((t) => t.id));
  const t0 = Date.now();
  await clickWorld(page, target.x, target.y);
  const task = await waitFor('the new task in /api/tasks', async () => {
    const list = await http(stack.base, 'GET', '/api/tasks?robot=robot-001&limit=20');
    return list.find((t) => !before.has(t.id));
  }, { timeoutMs: 5000 });
  assert(task.assigned_robot === 'robot-001' || task.robot_id === 'robot-001', `task went to ${task.assigned_robot}`);
  const g = task.goal.pose;
  assert(Math.hypot(g.x - target.x, g.y - target.y) < 0.02, `task goal (${g.x}, ${g.y}) is not the clicked point (${target.x}, ${target.y})`);
  await page.waitForSelector(`tr[data-task-id="${task.id}"]`, { timeout: 5000 });
  const rowMs = Date.now() - t0;

  // mid-flight: robots moving along their trails toward their goals
  await waitFor('robot-001 under way', () => page.evaluate(() => (window.__fms.store.robots.get('robot-001').state.task?.progress ?? 0) > 0.45), { timeoutMs: 15000 });
  await shot('dashboard', page);

  await waitRowStatus(page, task.id, 'COMPLETED', 'history', 30000);
  const doneMs = Date.now() - t0;
  const end = (await http(stack.base, 'GET', '/api/robots/robot-001')).state.pose;
  const miss = Math.hypot(end.x - target.x, end.y - target.y);
  assert(miss < 0.3, `robot-001 ended ${miss.toFixed(2)} m from the target`);
  await page.click('[data-testid=tab-open]');
  return `task ${task.id.slice(0, 8)} to (${target.x}, ${target.y}): row after ${secs(rowMs)}, COMPLETED after ${secs(doneMs)}, robot ${miss.toFixed(2)} m from target`;
}
