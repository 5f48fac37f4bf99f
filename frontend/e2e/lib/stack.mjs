// Starts and stops the system under test: fms_server (embedded Zenoh router, temp data dir, the
// built dist, the demo map), mock fms_agent robots, and the `fms_server phone` teleop server.
// `new Stack({ auth: true })` runs them with authentication on (API keys from the CLI, a JWT
// secret for tokens); `stack.api()` then calls the API with its admin key.

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, http, sleep, waitFor } from './util.mjs';

const FRONTEND = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const REPO = resolve(FRONTEND, '..');

export const SERVER_BIN = resolve(FRONTEND, process.env.FMS_SERVER_BIN ?? '../target/debug/fms_server');
export const AGENT_BIN = resolve(FRONTEND, process.env.FMS_AGENT_BIN ?? '../target/debug/fms_agent');
export const DIST = resolve(FRONTEND, 'dist');
export const MAP_YAML = join(REPO, 'config/maps/demo.yaml');
export const LOCATIONS = join(REPO, 'config/locations.toml');

/** State messages per second of the mock robots. */
export const AGENT_RATE_HZ = 10;

export const ROBOTS = [
  { id: 'robot-001', pose: [1.0, 1.0, 0.0] },
  { id: 'robot-002', pose: [4.0, 2.5, 1.5708] },
  { id: 'robot-003', pose: [8.0, 4.0, 3.1416] },
];

function help(args) {
  const r = spawnSync(SERVER_BIN, [...args, '--help'], { encoding: 'utf8', timeout: 10000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`;
}

export class Stack {
  constructor({ auth = false, name = 'e2e' } = {}) {
    this.auth = auth;
    this.dir = mkdtempSync(join(tmpdir(), `fms-${name}-`));
    /** Headers for this harness's own API calls (the admin key, with auth on). */
    this.headers = {};
    this.jwtSecret = auth ? randomBytes(24).toString('hex') : null;
    this.dataDir = join(this.dir, 'data');
    this.procs = new Map(); // name -> child
    this.serverBin = SERVER_BIN;
    const top = help([]);
    this.hasMapFlag = /--map\b/.test(top);
    this.hasPhone = /^\s+phone\b/m.test(top);
  }

  static check() {
    const missing = [];
    for (const [what, p] of [
      ['FMS_SERVER_BIN', SERVER_BIN],
      ['FMS_AGENT_BIN', AGENT_BIN],
      ['built dist (npm run build)', join(DIST, 'index.html')],
    ]) {
      if (!existsSync(p)) missing.push(`${what}: ${p}`);
    }
    return missing;
  }

  async allocate() {
    this.httpPort = await freePort();
    this.zenohPort = await freePort();
    this.phonePort = await freePort();
    this.base = `http://127.0.0.1:${this.httpPort}`;
    this.phoneBase = `http://127.0.0.1:${this.phonePort}`;
    this.zenoh = `tcp/127.0.0.1:${this.zenohPort}`;
  }

  spawn(name, bin, args) {
    const log = createWriteStream(join(this.dir, `${name}.log`), { flags: 'a' });
    const child = spawn(bin, args, { cwd: FRONTEND, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } });
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    child.exited = new Promise((r) => child.on('exit', (code, sig) => r({ code, sig })));
    this.procs.set(name, child);
    return child;
  }

  /** The API with this stack's credentials (see adminKey()). */
  api(method, path, body) {
    return http(this.base, method, path, body, this.headers);
  }

  /** `fms_server keys create` against the stack's data dir: the new key (printed once). */
  createKey(name, role) {
    const r = spawnSync(SERVER_BIN, ['--data-dir', this.dataDir, 'keys', 'create', '--name', name, '--role', role], { encoding: 'utf8', timeout: 30000 });
    const key = (r.stdout ?? '').trim();
    if (r.status !== 0 || !key.startsWith('fms_')) throw new Error(`keys create ${name}: exit ${r.status}: ${r.stderr}`);
    return key;
  }

  /** An admin key for the harness's own calls; with auth on, create it before startServer(). */
  adminKey() {
    const key = this.createKey('e2e-harness', 'admin');
    this.headers = { 'X-API-Key': key };
    return key;
  }

  /** `fms_server token`: a JWT signed with the stack's secret. */
  token(sub, role) {
    const r = spawnSync(SERVER_BIN, ['--jwt-secret', this.jwtSecret, 'token', '--sub', sub, '--role', role], { encoding: 'utf8', timeout: 30000 });
    const t = (r.stdout ?? '').trim();
    if (r.status !== 0 || t.split('.').length !== 3) throw new Error(`token ${sub}: exit ${r.status}: ${r.stderr}`);
    return t;
  }

  logPath(name) {
    return join(this.dir, `${name}.log`);
  }

  serverArgs() {
    const a = [
      '--port', String(this.httpPort),
      '--bind', '127.0.0.1',
      '--zenoh-listen', this.zenoh,
      '--data-dir', this.dataDir,
      '--frontend-dir', DIST,
      '--locations', LOCATIONS,
    ];
    if (this.hasMapFlag) a.push('--map', MAP_YAML);
    if (this.auth) a.push('--auth', 'true', '--jwt-secret', this.jwtSecret);
    return a;
  }

  async startServer() {
    const child = this.spawn('server', SERVER_BIN, this.serverArgs());
    await waitFor('fms_server /healthz', async () => {
      if (child.exitCode !== null) throw new Error(`fms_server exited (${child.exitCode}); see ${this.logPath('server')}`);
      const r = await fetch(`${this.base}/healthz`, { signal: AbortSignal.timeout(1000) });
      return r.ok;
    }, { timeoutMs: 30000 });
  }

  async stopServer(signal = 'SIGTERM') {
    await this.stop('server', signal);
  }

  startAgents() {
    for (const r of ROBOTS) {
      this.spawn(r.id, AGENT_BIN, [
        '--interface', 'mock',
        '--robot-id', r.id,
        '--zenoh-endpoint', this.zenoh,
        '--start-pose', r.pose.join(','),
        // a state every 100 ms (the default is 5 Hz): check e times the dead-man stop by these
        '--rate', String(AGENT_RATE_HZ),
      ]);
    }
  }

  async waitRobotsOnline(timeoutMs = 30000) {
    await waitFor('3 robots ONLINE in /api/robots', async () => {
      const list = await this.api('GET', '/api/robots');
      return ROBOTS.every((r) => list.some((e) => e.id === r.id && e.presence === 'ONLINE' && e.state));
    }, { timeoutMs });
  }

  async startPhone() {
    const child = this.spawn('phone', SERVER_BIN, [
      'phone',
      '--port', String(this.phonePort),
      '--bind', '127.0.0.1',
      '--zenoh-endpoint', this.zenoh,
      '--frontend-dir', DIST,
      ...(this.auth ? ['--auth', 'true', '--jwt-secret', this.jwtSecret] : []),
    ]);
    await waitFor('phone server /api/config', async () => {
      if (child.exitCode !== null) throw new Error(`fms_server phone exited (${child.exitCode}); see ${this.logPath('phone')}`);
      return await http(this.phoneBase, 'GET', '/api/config');
    }, { timeoutMs: 30000 });
  }

  async stop(name, signal = 'SIGTERM') {
    const child = this.procs.get(name);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const done = await Promise.race([child.exited, sleep(5000).then(() => null)]);
    if (!done) {
      child.kill('SIGKILL');
      await child.exited;
    }
  }

  async teardown({ keep = false } = {}) {
    for (const name of [...this.procs.keys()].reverse()) await this.stop(name);
    if (!keep) rmSync(this.dir, { recursive: true, force: true });
  }
}
