// Browser end-to-end tests: starts fms_server (+ 3 mock robots, + the phone server) on free
// loopback ports, drives the built dashboard and phone page in Debian's Chromium, prints
// PASS/FAIL per check with timings, saves screenshots to docs/screenshots/.
//
//   node e2e/run.mjs            all checks          node e2e/run.mjs a c     only a and c
//   env: FMS_SERVER_BIN, FMS_AGENT_BIN (default ../target/debug/...), CHROMIUM_BIN,
//        E2E_KEEP=1 keeps the temp dir (logs, data), E2E_SHOTS=dir (default ../docs/screenshots)

import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as a from './checks/a_map.mjs';
import * as b from './checks/b_task.mjs';
import * as c from './checks/c_cancel_estop.mjs';
import * as d from './checks/d_restart.mjs';
import * as e from './checks/e_phone.mjs';
import * as f from './checks/f_load.mjs';
import * as g from './checks/g_auth.mjs';
import { launchBrowser, newPage } from './lib/browser.mjs';
import { openDashboard } from './lib/dashboard.mjs';
import { Stack } from './lib/stack.mjs';
import { secs } from './lib/util.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const SHOTS = resolve(HERE, process.env.E2E_SHOTS ?? '../../docs/screenshots');
// e (phone) and g (auth, on a second stack) run before d (restart), f (synthetic load) last
const CHECKS = { a, b, c, e, g, d, f };
const CHECK_TIMEOUT_MS = 120_000;

const wanted = process.argv.slice(2);
const results = [];
const log = (s) => console.log(s);

const missing = Stack.check();
if (missing.length) {
  log(`e2e: missing ${missing.join('; ')}`);
  log('Build the binaries (cargo build) and the frontend (npm run build) first.');
  log('0 passed, 1 failed');
  process.exit(1);
}

mkdirSync(SHOTS, { recursive: true });
const stack = new Stack();
let browser;
let failed = false;
try {
  await stack.allocate();
  log(`e2e: fms_server ${stack.base} (zenoh ${stack.zenoh}), temp dir ${stack.dir}`);
  if (!stack.hasMapFlag) log('e2e: this fms_server has no --map flag: running without a map');
  const t0 = Date.now();
  await stack.startServer();
  stack.startAgents();
  await stack.waitRobotsOnline();
  log(`e2e: server + 3 robots up in ${secs(Date.now() - t0)}`);
  browser = await launchBrowser();
  log(`e2e: ${browser.version()} (${process.env.CHROMIUM_BIN ?? '/usr/bin/chromium'})`);
  const page = await newPage(browser);
  await openDashboard(page, stack.base, { mapExpected: stack.hasMapFlag });
  const shot = async (name, p) => {
    const path = join(SHOTS, `${name}.png`);
    await p.screenshot({ path });
    log(`      screenshot ${path}`);
  };
  const ctx = { stack, browser, page, shot };

  for (const [id, check] of Object.entries(CHECKS)) {
    if (wanted.length && !wanted.includes(id)) continue;
    const started = Date.now();
    let timer;
    try {
      const out = await Promise.race([
        check.run(ctx),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`check timed out after ${CHECK_TIMEOUT_MS / 1000} s`)), CHECK_TIMEOUT_MS);
        }),
      ]);
      if (out && typeof out === 'object' && out.skip) {
        results.push({ id, status: 'SKIP' });
        log(`SKIP ${id}. ${check.title}: ${out.skip}`);
      } else {
        results.push({ id, status: 'PASS' });
        log(`PASS ${id}. ${check.title} (${secs(Date.now() - started)})\n      ${out}`);
      }
    } catch (err) {
      failed = true;
      results.push({ id, status: 'FAIL' });
      log(`FAIL ${id}. ${check.title} (${secs(Date.now() - started)})\n      ${err.stack ?? err}`);
      const path = join(stack.dir, `failure-${id}.png`);
      await page.screenshot({ path }).catch(() => {});
      log(`      page at failure: ${path}; logs in ${stack.dir}`);
    } finally {
      clearTimeout(timer);
    }
  }
  const errors = page.errors.filter((m) => !/WebSocket|Failed to load resource|ERR_CONNECTION_REFUSED/.test(m));
  if (errors.length) log(`e2e: dashboard console errors:\n  ${errors.slice(0, 10).join('\n  ')}`);
} catch (err) {
  failed = true;
  results.push({ id: 'setup', status: 'FAIL' });
  log(`FAIL setup: ${err.stack ?? err}\n      logs in ${stack.dir}`);
} finally {
  await browser?.close().catch(() => {});
  await stack.teardown({ keep: failed || process.env.E2E_KEEP === '1' });
}
const count = (s) => results.filter((r) => r.status === s).length;
log(`${count('PASS')} passed, ${count('FAIL')} failed, ${count('SKIP')} skipped`);
process.exit(count('FAIL') ? 1 : 0);
