// Check g: authentication in the browser. The open stack shows the demo-mode banner. A second stack
// with --auth true (keys made with `fms_server keys create`, tokens with `fms_server token`): the
// sign-in panel; a viewer key shows the fleet read-only (task controls disabled, fleet e-stop
// answered with the role toast, also when the server's 403 comes back); an admin key can send
// a task and stop and release the fleet; a revoked key (401) returns to the sign-in panel; the
// API explorer (/api/docs) lists the operations and "Try it out" carries the stored key; the
// phone page asks for an operator token and drives as its subject.

import { newPage } from '../lib/browser.mjs';
import { clickWorld, freePointNear, robotModes, waitDashboard, waitToast } from '../lib/dashboard.mjs';
import { ROBOTS, Stack } from '../lib/stack.mjs';
import { assert, http, secs, waitFor } from '../lib/util.mjs';

export const title = 'auth: sign-in, viewer read-only + role toasts, admin, 401 → sign-in, API docs, phone token; open banner';

const OPEN_TEXT = 'Demo mode: the API is open — anyone on the network can command the fleet';

async function signIn(page, key, role) {
  await page.waitForSelector('[data-testid=signin]', { timeout: 10000 });
  await page.fill('[data-testid=signin-input]', key);
  await page.click('[data-testid=signin-submit]');
  await page.waitForSelector(`[data-testid=user-role]:text-is("${role}")`, { timeout: 10000 });
}

const ariaDisabled = (page, sel) => page.getAttribute(sel, 'aria-disabled');

export async function run({ browser, page: openPage, shot }) {
  const notes = [];

  // --- the open stack: its banner is always there (and in its screenshots)
  const banner = openPage.locator('[data-testid=open-banner]');
  await banner.waitFor({ timeout: 3000 });
  const bannerText = (await banner.textContent()).replace(/\s+/g, ' ').trim();
  assert(bannerText.includes(OPEN_TEXT), `open banner reads "${bannerText}"`);
  const box = await banner.boundingBox();
  assert(box && box.y < 120 && box.height >= 16, `open banner not at the top: ${JSON.stringify(box)}`);
  const openUser = await openPage.textContent('[data-testid=user]');
  notes.push(`open stack: banner shown at y=${box.y.toFixed(0)} ("${openUser.trim()}")`);

  // --- a second stack with authentication on
  const stack = new Stack({ auth: true, name: 'e2e-auth' });
  let page;
  let phone;
  let failed = true;
  try {
    const t0 = Date.now();
    await stack.allocate();
    stack.adminKey();
    const viewerKey = stack.createKey('viewer-vic', 'viewer');
    const adminKey = stack.createKey('admin-ada', 'admin');
    await stack.startServer();
    stack.startAgents();
    await stack.waitRobotsOnline();
    const info = await http(stack.base, 'GET', '/api/info');
    assert(info.auth_required === true, `/api/info says ${JSON.stringify(info)}`);
    const anon = await fetch(`${stack.base}/api/robots`).then((r) => r.status);
    assert(anon === 401, `GET /api/robots without a key: ${anon}`);
    notes.push(`auth stack + 3 robots up in ${secs(Date.now() - t0)} (keys from the CLI)`);

    // sign-in panel; a wrong key is refused on the panel
    page = await newPage(browser);
    await page.goto(stack.base + '/');
    await page.waitForSelector('[data-testid=signin]', { timeout: 10000 });
    assert((await page.locator('[data-testid=open-banner]').count()) === 0, 'open banner shown on a server with auth');
    await shot('signin', page);
    await page.fill('[data-testid=signin-input]', 'fms_0123456789ab_wrong');
    await page.click('[data-testid=signin-submit]');
    const wrong = await page.textContent('[data-testid=signin-message]', { timeout: 5000 });
    assert(/refused/i.test(wrong), `wrong key message: "${wrong}"`);

    // viewer: the fleet, read-only
    const t1 = Date.now();
    await signIn(page, viewerKey, 'viewer');
    await waitDashboard(page, { mapExpected: stack.hasMapFlag });
    await page.waitForSelector('[data-testid=conn][data-state=live]', { timeout: 10000 }); // /ws took ?access_token=
    const who = `${await page.textContent('[data-testid=user] .user-name')}, ${await page.textContent('[data-testid=user-role]')}`;
    assert((await page.getAttribute('[data-testid=click-mode]', 'data-readonly')) === '1', 'viewer: map clicks not read-only');
    assert(await page.isDisabled('[data-testid=priority]'), 'viewer: priority enabled');
    await page.click('[data-testid=side-locations]');
    const sends = page.locator('[data-location] button[data-action=send]');
    const nSend = await sends.count();
    assert(nSend > 0, 'no locations listed');
    for (let i = 0; i < nSend; i++) assert(await sends.nth(i).isDisabled(), `viewer: location Send ${i} enabled`);
    await page.click('[data-testid=side-robots]');
    await page.click('tr[data-robot-id=robot-001]');
    await page.waitForSelector('[data-testid=robot-detail][data-robot-id=robot-001]', { timeout: 3000 });
    assert(await page.isDisabled('[data-testid=robot-estop]'), 'viewer: robot E-stop enabled');
    assert(await page.isDisabled('[data-testid=robot-cancel]'), 'viewer: robot Cancel enabled');
    assert((await ariaDisabled(page, '[data-testid=fleet-estop]')) === 'true', 'viewer: fleet e-stop not locked');
    // a map click sends nothing and says why
    const tasksBefore = (await stack.api('GET', '/api/tasks?limit=200')).length;
    const free = await freePointNear(page, 6, 6, 1.0);
    assert(free, 'no free map point');
    await clickWorld(page, free.x, free.y);
    const taskToast = await waitToast(page, 'needs the operator role');
    // the fleet e-stop: locked in the page, and refused by the server (403) when sent anyway
    await page.click('[data-testid=fleet-estop]', { force: true }); // aria-disabled: playwright would wait
    const estopToast = await waitToast(page, 'needs the admin role');
    assert((await page.locator('[data-testid=estop-dialog]').count()) === 0, 'viewer: e-stop dialog opened');
    const forbidden = await fetch(`${stack.base}/api/fleet/emergency-stop`, { method: 'POST', headers: { 'X-API-Key': viewerKey } }).then((r) => r.status);
    assert(forbidden === 403, `viewer fleet e-stop: HTTP ${forbidden}`);
    await page.evaluate(() => window.__fms.forceFleetEstop());
    await waitFor('two role toasts (page + server 403)', async () => (await page.locator('.toast', { hasText: 'needs the admin role' }).count()) >= 2, { timeoutMs: 5000 });
    assert(!(await stack.api('GET', '/api/fleet/status')).estop_engaged, 'fleet e-stop engaged by a viewer');
    assert((await stack.api('GET', '/api/tasks?limit=200')).length === tasksBefore, 'a viewer created a task');
    notes.push(`viewer (${who}) read-only in ${secs(Date.now() - t1)}: ${nSend} Send disabled; "${taskToast}"; "${estopToast}"; server 403`);

    // sign out; admin: everything
    await page.click('[data-testid=sign-out]');
    await page.waitForSelector('[data-testid=signin]', { timeout: 5000 });
    assert(!(await page.evaluate(() => localStorage.getItem('fms.credential'))), 'credential kept after sign-out');
    const t2 = Date.now();
    await signIn(page, adminKey, 'admin');
    await waitDashboard(page, { mapExpected: stack.hasMapFlag });
    assert((await page.getAttribute('[data-testid=click-mode]', 'data-readonly')) === '0', 'admin: map read-only');
    assert((await ariaDisabled(page, '[data-testid=fleet-estop]')) === 'false', 'admin: fleet e-stop locked');
    const before = new Set((await stack.api('GET', '/api/tasks?limit=200')).map((t) => t.id));
    const target = await freePointNear(page, 6, 6, 1.0);
    await clickWorld(page, target.x, target.y);
    const task = await waitFor('the admin\'s task', async () => (await stack.api('GET', '/api/tasks?limit=200')).find((t) => !before.has(t.id)), { timeoutMs: 5000 });
    await page.waitForSelector(`tr[data-task-id="${task.id}"]`, { timeout: 5000 });
    await page.click('[data-testid=fleet-estop]');
    await page.click('[data-testid=estop-confirm]');
    await waitFor('every robot ESTOPPED', async () => {
      const m = await robotModes(page);
      return ROBOTS.every((r) => m[r.id] === 'ESTOPPED');
    }, { timeoutMs: 10000 });
    await page.click('[data-testid=fleet-release]');
    await waitFor('no robot ESTOPPED', async () => {
      const m = await robotModes(page);
      return ROBOTS.every((r) => m[r.id] && m[r.id] !== 'ESTOPPED');
    }, { timeoutMs: 10000 });
    const audit = await stack.api('GET', '/api/audit?limit=20');
    const byAda = audit.filter((e) => JSON.stringify(e).includes('admin-ada')).length;
    notes.push(`admin: task ${task.id.slice(0, 8)} by map click, fleet e-stop + release in ${secs(Date.now() - t2)} (${byAda} audit entries by admin-ada)`);

    // an operator key revoked while in use: the next 401 returns to the sign-in panel
    const temp = await stack.api('POST', '/api/keys', { name: 'op-temp', role: 'operator' });
    await page.click('[data-testid=sign-out]');
    await signIn(page, temp.key, 'operator');
    await waitDashboard(page, { mapExpected: stack.hasMapFlag });
    assert((await ariaDisabled(page, '[data-testid=fleet-estop]')) === 'true', 'operator: fleet e-stop not locked');
    assert((await page.getAttribute('[data-testid=click-mode]', 'data-readonly')) === '0', 'operator: map read-only');
    const t3 = Date.now();
    await stack.api('DELETE', `/api/keys/${temp.id}`);
    const gone = await page.textContent('[data-testid=signin-message]', { timeout: 10000 });
    assert(/401/.test(gone), `after revocation: "${gone}"`);
    notes.push(`operator: fleet e-stop locked; key revoked → sign-in panel in ${secs(Date.now() - t3)}`);

    // the API explorer, with the admin key remembered by the dashboard
    const t4 = Date.now();
    await page.evaluate((k) => localStorage.setItem('fms.credential', k), adminKey);
    await page.goto(stack.base + '/api/docs');
    await page.waitForSelector('.opblock-post .opblock-summary-path[data-path="/api/tasks"]', { timeout: 15000 });
    const ops = await page.locator('.opblock').count();
    assert(ops >= 15, `only ${ops} operations listed`);
    const postTasks = (await page.locator('.opblock-post', { has: page.locator('.opblock-summary-path[data-path="/api/tasks"]') }).first().textContent()).replace(/\s+/g, ' ');
    assert(/POST/.test(postTasks) && postTasks.includes('/api/tasks'), `POST /api/tasks block: ${postTasks}`);
    await shot('api-docs', page);
    await page.click('.opblock-get .opblock-summary-path[data-path="/api/whoami"]');
    await page.click('.opblock-get.is-open .try-out__btn');
    await page.click('.opblock-get.is-open .execute');
    let answer = '';
    await waitFor('whoami answered 200 with admin-ada', async () => {
      answer = ((await page.textContent('.opblock-get.is-open .responses-wrapper').catch(() => '')) ?? '').replace(/\s+/g, ' ');
      return /(^|\D)200(\D|$)/.test(answer) && answer.includes('admin-ada');
    }, { timeoutMs: 10000 }).catch((e) => {
      throw new Error(`${e.message}; the response section reads: ${answer.slice(0, 600)}`);
    });
    const docErrors = page.errors.filter((e) => !/WebSocket|Failed to load resource/.test(e));
    assert(!docErrors.length, `API docs errors: ${docErrors.join(' | ')}`);
    notes.push(`/api/docs: ${ops} operations incl. "POST /api/tasks"; Try it out GET /api/whoami → 200 admin-ada (stored key sent) in ${secs(Date.now() - t4)}`);

    // the phone page on an authenticating phone server: asks for a token, refuses a viewer's
    if (stack.hasPhone) {
      const t5 = Date.now();
      await stack.startPhone();
      phone = await newPage(browser, { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, hasTouch: true, isMobile: true });
      await phone.goto(stack.phoneBase + '/');
      await phone.waitForSelector('[data-testid=token-panel][data-auth=needed]', { timeout: 10000 });
      await phone.fill('[data-testid=token-input]', stack.token('vic-phone', 'viewer'));
      await phone.click('[data-testid=token-save]');
      await phone.waitForSelector('[data-testid=token-panel][data-auth=refused]', { timeout: 10000 });
      await phone.fill('[data-testid=token-input]', stack.token('olga-op', 'operator'));
      await phone.click('[data-testid=token-save]');
      await phone.waitForSelector('[data-testid=phone-conn][data-state=open]', { timeout: 10000 });
      await phone.waitForSelector('[data-testid=operator]:text-is("olga-op")', { timeout: 5000 });
      assert((await phone.locator('[data-testid=phone-open-banner]').count()) === 0, 'phone: open banner with auth on');
      // hold the dead-man (Space): the robot's teleop lease goes to the token's subject
      const rid = await phone.inputValue('[data-testid=robot-select]');
      await phone.keyboard.down('Space');
      await phone.waitForSelector('[data-testid=lease][data-lease=yours]', { timeout: 5000 });
      const holder = await waitFor('the lease in the fleet server', async () => (await stack.api('GET', `/api/robots/${rid}`)).state?.teleop_operator, { timeoutMs: 5000 });
      await phone.keyboard.up('Space');
      assert(holder === 'olga-op', `teleop lease held by ${holder}`);
      notes.push(`phone: token field after the refused connect, viewer token refused, operator token took ${rid}'s lease as olga-op (${secs(Date.now() - t5)})`);
    }
    failed = false;
  } catch (e) {
    if (page) await page.screenshot({ path: `${stack.dir}/failure-g-dashboard.png` }).catch(() => {});
    if (phone) await phone.screenshot({ path: `${stack.dir}/failure-g-phone.png` }).catch(() => {});
    e.message += ` (auth stack logs and screenshots in ${stack.dir})`;
    throw e;
  } finally {
    await phone?.context().close().catch(() => {});
    await page?.context().close().catch(() => {});
    await stack.teardown({ keep: failed || process.env.E2E_KEEP === '1' });
  }
  return notes.join('; ');
}
