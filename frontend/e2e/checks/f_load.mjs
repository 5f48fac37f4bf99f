// Check f: 1,000 robots at 10 Hz. An in-page feeder sends 1,000-robot batches (the /ws?batch_ms
// shape) through the same parse -> store -> canvas path as the socket; measure frame pacing, long
// tasks and how fast the panels answer a click.

import { assert } from '../lib/util.mjs';

export const title = 'responsive with 1,000 robots updating at 10 Hz';

const N = 1000;
const SECONDS = 6;

export async function run({ page, shot }) {
  await page.evaluate(() => window.__fms.fit());
  const r = await page.evaluate(
    async ([n, seconds]) => {
      const f = window.__fms;
      const meta = f.mapMeta() ?? { origin: { x: -3, y: -3 }, width: 440, height: 340, resolution: 0.05 };
      const w = meta.width * meta.resolution;
      const h = meta.height * meta.resolution;
      const modes = ['IDLE', 'NAVIGATING', 'NAVIGATING', 'NAVIGATING', 'CHARGING', 'TELEOP'];
      const bots = Array.from({ length: n }, (_, i) => ({
        id: `sim-${String(i).padStart(4, '0')}`,
        // R2 low-discrepancy sequence: evenly spread, deterministic
        cx: meta.origin.x + 1 + ((0.5 + i * 0.7548776662) % 1) * (w - 2),
        cy: meta.origin.y + 1 + ((0.5 + i * 0.5698402910) % 1) * (h - 2),
        r: 0.3 + (i % 5) * 0.15,
        ph: i,
        mode: modes[i % modes.length],
      }));
      const ingestMs = [];
      let tick = 0;
      const feed = () => {
        tick++;
        const now = Date.now();
        const messages = bots.map((b) => {
          const a = b.ph + tick * 0.05;
          return {
            type: 'state_update',
            robot_id: b.id,
            presence: 'ONLINE',
            state: {
              stamp_ms: now,
              pose: { x: b.cx + b.r * Math.cos(a), y: b.cy + b.r * Math.sin(a), yaw: a + Math.PI / 2, frame: 'map' },
              velocity: { linear: 0.5, angular: 0.3 },
              battery: { percentage: 20 + (b.ph % 80), charging: b.mode === 'CHARGING' },
              mode: b.mode,
            },
          };
        });
        const text = JSON.stringify({ type: 'batch', messages });
        const t0 = performance.now();
        f.store.ingestText(text);
        ingestMs.push(performance.now() - t0);
      };
      const longTasks = [];
      const po = new PerformanceObserver((l) => l.getEntries().forEach((e) => longTasks.push(e.duration)));
      po.observe({ type: 'longtask', buffered: false });
      const timer = setInterval(feed, 100);
      // warm-up: the first batches create the robots
      await new Promise((res) => setTimeout(res, 1000));
      longTasks.length = 0;
      const frames0 = f.frames();
      const gaps = [];
      let last = performance.now();
      const until = last + seconds * 1000;
      await new Promise((res) => {
        const step = (t) => {
          gaps.push(t - last);
          last = t;
          if (t < until) requestAnimationFrame(step);
          else res();
        };
        requestAnimationFrame(step);
      });
      // panel responsiveness: switch the task tab and wait until React has re-rendered it
      const clicks = [];
      for (const which of ['history', 'open', 'history', 'open']) {
        const t0 = performance.now();
        document.querySelector(`[data-testid=tab-${which}]`).click();
        await new Promise((res) => {
          const poll = () => (document.querySelector(`[data-testid=tab-${which}]`).getAttribute('aria-selected') === 'true' ? res() : setTimeout(poll, 0));
          poll();
        });
        await new Promise((res) => requestAnimationFrame(() => res()));
        clicks.push(performance.now() - t0);
      }
      const frames = f.frames() - frames0;
      const draws = f.drawMs().slice(-Math.max(1, frames)).sort((a, b) => a - b);
      po.disconnect();
      gaps.sort((a, b) => a - b);
      const q = (p) => gaps[Math.min(gaps.length - 1, Math.floor(p * gaps.length))];
      ingestMs.sort((a, b) => a - b);
      const result = {
        robots: f.robotIds().length,
        fps: gaps.length / seconds,
        p50: q(0.5),
        p95: q(0.95),
        max: gaps[gaps.length - 1],
        redraws: frames / seconds,
        drawP50: draws[Math.floor(draws.length / 2)],
        drawMax: draws[draws.length - 1],
        ingestP50: ingestMs[Math.floor(ingestMs.length / 2)],
        ingestMax: ingestMs[ingestMs.length - 1],
        longTasks: longTasks.length,
        longestTask: Math.max(0, ...longTasks),
        clickMs: Math.max(...clicks),
      };
      window.__e2eFeed = timer;
      return result;
    },
    [N, SECONDS],
  );
  await shot('dashboard-1000', page);
  await page.evaluate(() => clearInterval(window.__e2eFeed));
  const summary = `${r.robots} robots: ${r.fps.toFixed(0)} fps (frame gap p50 ${r.p50.toFixed(0)} ms, p95 ${r.p95.toFixed(0)} ms, max ${r.max.toFixed(0)} ms), canvas redraws ${r.redraws.toFixed(1)}/s taking p50 ${r.drawP50.toFixed(1)} ms max ${r.drawMax.toFixed(1)} ms, batch ingest p50 ${r.ingestP50.toFixed(1)} ms max ${r.ingestMax.toFixed(1)} ms, long tasks ${r.longTasks} (longest ${r.longestTask.toFixed(0)} ms), tab click → rendered ${r.clickMs.toFixed(0)} ms`;
  assert(r.robots >= 1000, `only ${r.robots} robots in the store`);
  assert(r.p95 <= 100, `frame gap p95 ${r.p95.toFixed(0)} ms > 100 ms: ${summary}`);
  assert(r.clickMs <= 250, `a click took ${r.clickMs.toFixed(0)} ms to render: ${summary}`);
  return summary;
}
