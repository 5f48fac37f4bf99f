// Check d: kill the server, see the indicator leave "live", restart it on the same ports and data
// dir, and see live data again (resynced) without reloading the page.

import { ROBOTS } from '../lib/stack.mjs';
import { assert, secs, sleep, waitFor } from '../lib/util.mjs';

export const title = 'page recovers when the server restarts (no reload)';

const connState = (page) => page.getAttribute('[data-testid=conn]', 'data-state');

export async function run({ stack, page, shot }) {
  await waitFor('indicator live before the restart', async () => (await connState(page)) === 'live', { timeoutMs: 5000 });
  await page.evaluate(() => {
    window.__e2eNoReload = 'still here';
  });
  const resyncs0 = await page.evaluate(() => window.__fms.resyncs());

  const tKill = Date.now();
  await stack.stopServer('SIGKILL');
  const gone = await waitFor('indicator not live', async () => {
    const s = await connState(page);
    return s !== 'live' && s;
  }, { timeoutMs: 10000, intervalMs: 50 });
  const goneMs = Date.now() - tKill;
  await waitFor('indicator disconnected', async () => (await connState(page)) === 'disconnected', { timeoutMs: 10000 });
  await page.waitForSelector('[data-testid=conn-overlay]', { timeout: 3000 });
  await sleep(1500);
  await shot('disconnected', page);
  const downText = await page.textContent('[data-testid=conn]');

  const tStart = Date.now();
  await stack.startServer();
  const upMs = Date.now() - tStart;
  await waitFor('indicator live again', async () => (await connState(page)) === 'live', { timeoutMs: 30000, intervalMs: 50 });
  const liveMs = Date.now() - tStart;
  await page.waitForSelector('[data-testid=conn-overlay]', { state: 'detached', timeout: 3000 });
  await waitFor('a REST resync after reconnecting', () => page.evaluate((n) => window.__fms.resyncs() > n, resyncs0), { timeoutMs: 10000 });
  await waitFor('fresh robot states (stamped after the restart) for every robot', () =>
    page.evaluate(
      ([ids, t]) => ids.every((id) => {
        const r = window.__fms.store.robots.get(id);
        return r && r.presence === 'ONLINE' && r.state.stamp_ms > t;
      }),
      [ROBOTS.map((r) => r.id), tStart],
    ), { timeoutMs: 30000 });
  const dataMs = Date.now() - tStart;
  const mark = await page.evaluate(() => window.__e2eNoReload);
  assert(mark === 'still here', 'the page was reloaded');
  return `indicator left "live" (${gone}) ${secs(goneMs)} after kill ("${downText.trim()}"); server up in ${secs(upMs)}; live again ${secs(liveMs)} and all robots fresh ${secs(dataMs)} after restart`;
}
