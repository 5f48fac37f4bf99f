// fms operator dashboard: plain ES module, no dependencies. Server data reaches the DOM only
// through textContent / attributes, never innerHTML.

const MODE_COLORS = { IDLE: '#38bdf8', NAVIGATING: '#22c55e', PAUSED: '#eab308', CHARGING: '#a855f7',
  ESTOPPED: '#ef4444', ERROR: '#f97316', TELEOP: '#ec4899' };
const STATUSES = ['QUEUED', 'ASSIGNED', 'ACTIVE', 'COMPLETED', 'FAILED', 'CANCELED'];
const OPEN = new Set(['QUEUED', 'ASSIGNED', 'ACTIVE']);
const PRESENCES = ['ONLINE', 'STALE', 'OFFLINE'];
const POLL_MS = 2000, ROBOT_RESYNC_MS = 10000, TASK_LIMIT = 50, TRAIL_LEN = 80, WS_SILENCE_MS = 5000;

const $ = (id) => document.getElementById(id);
const robots = new Map();   // id -> {id, presence, legacy, state, trail: [[x, y]], rx}
const pending = new Map();  // id -> latest unapplied state_update (applied once per frame)
const tasks = new Map();    // id -> task
const taskRx = new Map();   // id -> when we last received that task (local ms)
let selected = null, robotsDirty = true, tasksDirty = true, lastTables = 0;
let view = { cx: 0, cy: 0, scale: 40, auto: true };
let flash = null;           // {x, y, until}: where the last map click sent a task

// ---------- helpers ----------
function setText(node, text) { text = String(text); if (node.textContent !== text) node.textContent = text; }
function el(tag, cls, text) {
  const e = Object.assign(document.createElement(tag), cls ? { className: cls } : {});
  if (text !== undefined) e.textContent = text;
  return e;
}
const num = (v, d = 2) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : '–');
const shortId = (id) => String(id).slice(0, 8);
const fmtTime = (ms) => (ms ? new Date(ms).toLocaleTimeString([], { hour12: false }) : '–');
const isActive = (t) => t.status === 'ASSIGNED' || t.status === 'ACTIVE';
const enc = encodeURIComponent;

function toast(msg, error = false) {
  const t = el('div', error ? 'toast error' : 'toast', msg);
  $('toasts').append(t);
  while ($('toasts').children.length > 5) $('toasts').firstChild.remove();
  setTimeout(() => t.remove(), error ? 8000 : 4000);
}

async function api(method, path, body) {
  const opts = { method, signal: AbortSignal.timeout(8000) };
  if (body !== undefined) Object.assign(opts, { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const res = await fetch(path, opts), text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  const e = data && data.error;
  if (!res.ok) throw new Error(e ? `${e.code}: ${e.message}` : `HTTP ${res.status} ${res.statusText}`);
  return data;
}
// Run an operator action and report failures in a toast.
async function act(what, method, path, body) {
  try { return await api(method, path, body); } catch (e) { toast(`${what} failed: ${e.message}`, true); return null; }
}

// ---------- state ----------
function applyState(id, presence, state) {
  let r = robots.get(id);
  if (!r) { r = { id, presence, legacy: false, state: null, trail: [], rx: 0 }; robots.set(id, r); }
  if (presence) r.presence = presence;
  if (state && (!r.state || state.stamp_ms >= r.state.stamp_ms)) {
    r.state = state;
    const p = state.pose, last = r.trail[r.trail.length - 1];
    if (p && (!last || Math.hypot(p.x - last[0], p.y - last[1]) > 0.05)) {
      r.trail.push([p.x, p.y]);
      if (r.trail.length > TRAIL_LEN) r.trail.shift();
    }
  }
  r.rx = Date.now();
  robotsDirty = true;
}

async function loadRobots() {
  const started = Date.now(), list = await api('GET', '/api/robots'), seen = new Set();
  for (const e of list) { seen.add(e.id); applyState(e.id, e.presence, e.state); robots.get(e.id).legacy = !!e.legacy; }
  for (const id of robots.keys()) if (!seen.has(id) && robots.get(id).rx < started) robots.delete(id);
  if (selected && !robots.has(selected)) select(null);
  robotsDirty = true;
}

function upsertTask(t) {
  const old = tasks.get(t.id);
  if (old && old.updated_ms > t.updated_ms) return;
  tasks.set(t.id, t); taskRx.set(t.id, Date.now());
  tasksDirty = true;
}

// The REST list is the truth, except for tasks that arrived live while it was in flight.
async function loadTasks() {
  const started = Date.now(), list = await api('GET', `/api/tasks?limit=${TASK_LIMIT}`);
  const fresh = new Set(list.map((t) => t.id));
  for (const id of tasks.keys()) if (!fresh.has(id) && taskRx.get(id) < started) { tasks.delete(id); taskRx.delete(id); }
  list.forEach(upsertTask);
  const keep = new Set([...tasks.values()].sort((a, b) => b.created_ms - a.created_ms).slice(0, TASK_LIMIT).map((t) => t.id));
  for (const id of tasks.keys()) if (!keep.has(id)) { tasks.delete(id); taskRx.delete(id); }
  tasksDirty = true;
}

async function loadStatus() {
  let fleet;
  try { fleet = await api('GET', '/api/fleet/status'); } catch { $('stats').classList.add('stale'); return; }
  $('stats').classList.remove('stale');
  for (const b of $('stats').querySelectorAll('b[data-k]')) {
    const v = fleet[b.dataset.k];
    setText(b, b.dataset.k === 'average_battery' ? (typeof v === 'number' ? `${v.toFixed(0)}%` : '–') : (v ?? '–'));
  }
  $('banner').hidden = !fleet.estop_engaged;
}

// Polls never overlap: each waits for the previous to finish.
function poll(fn, ms) {
  const run = async () => { try { await fn(); } catch (e) { console.warn(e); } setTimeout(run, ms); };
  run();
}

// ---------- WebSocket ----------
const conn = { ws: null, open: false, last: 0, started: 0, backoff: 500, retryAt: 0, everOpen: false };
function connect() {
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
  conn.ws = ws; conn.started = Date.now();
  ws.onopen = () => {
    conn.open = true; conn.last = Date.now();
    if (conn.everOpen) { loadRobots().catch(console.warn); loadTasks().catch(console.warn); loadStatus(); }
    conn.everOpen = true;
  };
  ws.onmessage = (ev) => {
    conn.last = Date.now(); conn.backoff = 500;
    let m;
    try { m = JSON.parse(ev.data); } catch { return; }
    switch (m.type) {
      case 'state_update': pending.set(m.robot_id, m); break;
      case 'task_update': if (m.task) upsertTask(m.task); break;
      case 'system_event': onSystemEvent(m); break;
      case 'heartbeat': break;
      default: console.warn('ws message', m);
    }
  };
  ws.onclose = () => drop(ws);
  ws.onerror = () => ws.close();
}
// Forget a socket and schedule the next attempt (0.5 s doubling to 10 s; reset by any message).
function drop(ws) {
  if (conn.ws !== ws) return;
  conn.ws = null; conn.open = false;
  conn.retryAt = Date.now() + conn.backoff;
  setTimeout(connect, conn.backoff);
  conn.backoff = Math.min(conn.backoff * 2, 10000);
}
// A silent socket (heartbeats are 1 s apart) or a hung connection attempt is treated as dead.
setInterval(() => {
  const ws = conn.ws;
  if (ws && Date.now() - Math.max(conn.last, conn.started) > (conn.open ? WS_SILENCE_MS : 10000)) { drop(ws); ws.close(); }
}, 1000);

function flushPending() {
  for (const m of pending.values()) applyState(m.robot_id, m.presence, m.state);
  pending.clear();
}

function onSystemEvent(m) {
  flushPending(); // keep the order: a queued state_update must not overwrite this presence
  const presence = { robot_online: 'ONLINE', robot_stale: 'STALE', robot_offline: 'OFFLINE' }[m.event];
  if (presence && m.robot_id) {
    const r = robots.get(m.robot_id);
    if (r) { r.presence = presence; robotsDirty = true; } else loadRobots().catch(console.warn);
  }
  if (m.event === 'estop') {
    loadStatus();
    if (!m.robot_id) toast(`Fleet e-stop ${m.engaged ? 'ENGAGED' : 'released'}`, m.engaged);
  }
}

// ---------- map ----------
const canvas = $('map'), ctx = canvas.getContext('2d');
let W = 0, H = 0;
new ResizeObserver(() => {
  const dpr = window.devicePixelRatio || 1, rect = canvas.getBoundingClientRect();
  W = rect.width; H = rect.height;
  canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  drawMap(performance.now()); // resizing clears the canvas; don't wait for the next frame
}).observe(canvas);
const toScreen = (x, y) => [W / 2 + (x - view.cx) * view.scale, H / 2 - (y - view.cy) * view.scale];
const toWorld = (sx, sy) => [view.cx + (sx - W / 2) / view.scale, view.cy - (sy - H / 2) / view.scale];

function goalPoints(t) {
  const g = (t && t.goal) || {};
  return g.pose ? [g.pose] : Array.isArray(g.waypoints) ? g.waypoints : [];
}
// The task a robot is working on: the one it reports, else an ASSIGNED/ACTIVE one assigned to it.
function taskOf(r, byRobot) {
  const id = r.state && r.state.task && r.state.task.task_id;
  return (id && tasks.get(id)) || byRobot.get(r.id) || null;
}

function fitView() {
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  const add = (p) => { minX = Math.min(minX, p.x); maxX = Math.max(maxX, p.x); minY = Math.min(minY, p.y); maxY = Math.max(maxY, p.y); };
  for (const r of robots.values()) if (r.state) add(r.state.pose);
  for (const t of tasks.values()) if (OPEN.has(t.status)) goalPoints(t).forEach(add);
  if (minX === Infinity) { minX = maxX = 0; minY = maxY = 0; }
  // 1 m margin plus 30 px for labels on each side; never less than 10 m x 10 m
  const spanX = Math.max(maxX - minX + 2, 10), spanY = Math.max(maxY - minY + 2, 10);
  view.cx = (minX + maxX) / 2; view.cy = (minY + maxY) / 2;
  view.scale = Math.max(0.5, Math.min((W - 60) / spanX, (H - 60) / spanY));
}

function drawGrid() {
  const [x0, y1] = toWorld(0, 0), [x1, y0] = toWorld(W, H);
  const step = [1, 2, 5, 10, 20, 50, 100, 200, 500].find((s) => s * view.scale >= 12) || 1000;
  const major = step * (String(step)[0] === '5' ? 2 : 5);
  ctx.lineWidth = 1; ctx.font = '10px system-ui, sans-serif'; ctx.fillStyle = '#6b7d99';
  const labels = []; // drawn after every line so no line crosses them
  const lines = (from, to, vertical) => {
    for (let v = Math.ceil(from / step) * step; v <= to; v += step) {
      const s = Math.round(vertical ? toScreen(v, 0)[0] : toScreen(0, v)[1]) + 0.5;
      const isMajor = Math.abs(v / major - Math.round(v / major)) < 1e-6;
      ctx.strokeStyle = Math.abs(v) < 1e-9 ? '#4b6286' : isMajor ? '#24344d' : '#172338';
      ctx.beginPath(); ctx.moveTo(vertical ? s : 0, vertical ? 0 : s); ctx.lineTo(vertical ? s : W, vertical ? H : s); ctx.stroke();
      if (isMajor) labels.push([`${+v.toFixed(3)}`, vertical ? s + 1.5 : 3, vertical ? Math.floor(H) - 3 : s - 2.5]);
    }
  };
  lines(x0, x1, true); lines(y0, y1, false);
  labels.forEach((l) => ctx.fillText(...l));
  ctx.fillText(`grid ${step} m`, W - 60, 12);
}

function drawGoal(from, pts, color, dashed) {
  if (!pts.length) return;
  ctx.save();
  ctx.strokeStyle = color; ctx.fillStyle = color; ctx.lineWidth = 1.5;
  if (dashed) ctx.setLineDash([6, 4]);
  ctx.beginPath();
  if (from) ctx.moveTo(...toScreen(from.x, from.y)); else ctx.moveTo(...toScreen(pts[0].x, pts[0].y));
  for (const p of pts) ctx.lineTo(...toScreen(p.x, p.y));
  ctx.stroke();
  ctx.setLineDash([]);
  pts.forEach((p, i) => {
    const [sx, sy] = toScreen(p.x, p.y), s = i === pts.length - 1 ? 6 : 3;
    ctx.beginPath(); ctx.moveTo(sx - s, sy - s); ctx.lineTo(sx + s, sy + s); ctx.moveTo(sx + s, sy - s); ctx.lineTo(sx - s, sy + s); ctx.stroke();
  });
  ctx.restore();
}

function drawRobot(r) {
  const p = r.state.pose, color = MODE_COLORS[r.state.mode] || '#94a3b8';
  const [sx, sy] = toScreen(p.x, p.y), rad = Math.max(0.4 * view.scale, 6);
  ctx.save();
  ctx.globalAlpha = r.presence === 'OFFLINE' ? 0.35 : r.presence === 'STALE' ? 0.65 : 1;
  if (r.trail.length > 1) {
    ctx.strokeStyle = color; ctx.globalAlpha *= 0.45; ctx.lineWidth = 2;
    ctx.beginPath(); r.trail.forEach(([x, y], i) => (i ? ctx.lineTo : ctx.moveTo).call(ctx, ...toScreen(x, y))); ctx.stroke();
    ctx.globalAlpha /= 0.45;
  }
  if (r.id === selected) {
    ctx.strokeStyle = '#fff'; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.arc(sx, sy, rad + 5, 0, Math.PI * 2); ctx.stroke();
  }
  ctx.fillStyle = color; ctx.strokeStyle = '#0b1222'; ctx.lineWidth = 2;
  if (r.presence === 'STALE') ctx.setLineDash([3, 3]);
  ctx.beginPath(); ctx.arc(sx, sy, rad, 0, Math.PI * 2); ctx.fill(); ctx.stroke();
  ctx.setLineDash([]);
  // heading arrow (yaw CCW from +x; screen y points down)
  const len = rad + Math.max(0.35 * view.scale, 8), dx = Math.cos(p.yaw), dy = -Math.sin(p.yaw);
  const tx = sx + dx * len, ty = sy + dy * len, hs = Math.max(4, rad * 0.5);
  ctx.strokeStyle = '#f8fafc'; ctx.fillStyle = '#f8fafc'; ctx.lineWidth = 2;
  ctx.beginPath(); ctx.moveTo(sx, sy); ctx.lineTo(tx, ty); ctx.stroke();
  ctx.beginPath(); ctx.moveTo(tx, ty);
  ctx.lineTo(tx - dx * hs - dy * hs * 0.6, ty - dy * hs + dx * hs * 0.6);
  ctx.lineTo(tx - dx * hs + dy * hs * 0.6, ty - dy * hs - dx * hs * 0.6); ctx.fill();
  ctx.font = '600 12px system-ui, sans-serif'; ctx.textAlign = 'center';
  ctx.fillStyle = '#f8fafc'; ctx.fillText(r.id, sx, sy - rad - 6);
  const bat = r.state.battery && r.state.battery.percentage;
  ctx.font = '11px system-ui, sans-serif'; ctx.fillStyle = bat < 20 ? '#f87171' : '#a5b4c8';
  ctx.fillText(`${num(bat, 0)}%${r.state.battery && r.state.battery.charging ? ' chg' : ''}`, sx, sy + rad + 13);
  ctx.restore();
}

function drawMap(now) {
  if (!W || !H) return;
  if (view.auto) fitView();
  ctx.clearRect(0, 0, W, H);
  drawGrid();
  const list = [...robots.values()].filter((r) => r.state), byRobot = new Map();
  for (const t of tasks.values()) {
    if (t.status === 'QUEUED') drawGoal(null, goalPoints(t), '#94a3b8', true);
    else if (isActive(t) && t.assigned_robot) byRobot.set(t.assigned_robot, t);
  }
  for (const r of list) {
    const t = taskOf(r, byRobot);
    if (t) drawGoal(r.state.pose, goalPoints(t), MODE_COLORS[r.state.mode] || '#94a3b8', true);
  }
  list.sort((a, b) => (a.id === selected) - (b.id === selected)).forEach(drawRobot);
  if (flash && now < flash.until) {
    const [sx, sy] = toScreen(flash.x, flash.y);
    ctx.strokeStyle = '#38bdf8'; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.arc(sx, sy, 6 + (1 - (flash.until - now) / 1500) * 20, 0, Math.PI * 2); ctx.stroke();
  }
  if (!list.length) {
    ctx.fillStyle = '#8a9bb4'; ctx.font = '14px system-ui, sans-serif'; ctx.textAlign = 'center';
    ctx.fillText('No robots reporting yet', W / 2, H / 2); ctx.textAlign = 'start';
  }
}

function robotAt(sx, sy) {
  let best = null, bestD = Math.max(0.5 * view.scale, 12);
  for (const r of robots.values()) {
    if (!r.state) continue;
    const [x, y] = toScreen(r.state.pose.x, r.state.pose.y), d = Math.hypot(sx - x, sy - y);
    if (d <= bestD) { best = r.id; bestD = d; }
  }
  return best;
}

async function sendTo(x, y) {
  const body = { target: { x: +x.toFixed(3), y: +y.toFixed(3) }, priority: $('priority').value };
  if (selected) body.robot_id = selected;
  flash = { x, y, until: performance.now() + 1500 };
  const t = await act('Create task', 'POST', '/api/tasks', body);
  if (t) {
    upsertTask(t);
    toast(`Task ${shortId(t.id)} to (${x.toFixed(2)}, ${y.toFixed(2)}) ${t.status.toLowerCase()}${t.assigned_robot ? ` → ${t.assigned_robot}` : ''}`);
  }
}

let drag = null;
canvas.addEventListener('pointerdown', (e) => {
  if (e.button !== 0) return;
  drag = { x: e.offsetX, y: e.offsetY, cx: view.cx, cy: view.cy, moved: false };
  canvas.setPointerCapture(e.pointerId);
});
canvas.addEventListener('pointermove', (e) => {
  const [wx, wy] = toWorld(e.offsetX, e.offsetY);
  setText($('cursor'), `x ${wx.toFixed(2)}  y ${wy.toFixed(2)}`);
  if (!drag) return;
  const dx = e.offsetX - drag.x, dy = e.offsetY - drag.y;
  if (!drag.moved && Math.hypot(dx, dy) > 4) drag.moved = true;
  if (drag.moved) { view.auto = false; view.cx = drag.cx - dx / view.scale; view.cy = drag.cy + dy / view.scale; }
});
canvas.addEventListener('pointerup', (e) => {
  const d = drag; drag = null;
  if (!d || d.moved) return;
  const hit = robotAt(e.offsetX, e.offsetY);
  if (hit) select(hit === selected ? null : hit);
  else sendTo(...toWorld(e.offsetX, e.offsetY));
});
canvas.addEventListener('pointercancel', () => { drag = null; });
canvas.addEventListener('pointerleave', () => setText($('cursor'), ''));
canvas.addEventListener('wheel', (e) => {
  e.preventDefault();
  const [wx, wy] = toWorld(e.offsetX, e.offsetY);
  view.auto = false;
  view.scale = Math.min(400, Math.max(0.5, view.scale * Math.exp(-e.deltaY * 0.0015)));
  view.cx = wx - (e.offsetX - W / 2) / view.scale; view.cy = wy + (e.offsetY - H / 2) / view.scale;
}, { passive: false });
$('fit').addEventListener('click', () => { view.auto = true; });

function select(id) {
  selected = id;
  setText($('dispatch-target'), id ? `send ${id}` : 'auto-dispatch');
  $('deselect').hidden = !id;
  renderRobots();
}
$('deselect').addEventListener('click', () => select(null));
document.addEventListener('keydown', (e) => { if (e.key === 'Escape') select(null); });

// ---------- tables ----------
// Keyed rows: existing rows (and their buttons) are updated in place, so clicks survive refreshes.
function syncRows(tbody, keys, make, update) {
  const rows = tbody._rows || (tbody._rows = new Map()), want = new Set(keys);
  for (const [k, tr] of rows) if (!want.has(k)) { tr.remove(); rows.delete(k); }
  let prev = null;
  for (const k of keys) {
    let tr = rows.get(k);
    if (!tr) { tr = make(k); tr.dataset.id = k; rows.set(k, tr); }
    update(tr, k);
    const at = prev ? prev.nextSibling : tbody.firstChild;
    if (at !== tr) tbody.insertBefore(tr, at);
    prev = tr;
  }
}
function makeRow(n, buttons) {
  const tr = el('tr'), td = el('td', 'actions');
  for (let i = 0; i < n; i++) tr.append(el('td'));
  for (const [action, label] of buttons) { const b = el('button', '', label); b.type = 'button'; b.dataset.action = action; td.append(b); }
  tr.append(td);
  return tr;
}
function progressCell(td, p) {
  if (!td.firstChild) { const bar = el('span', 'bar'); bar.append(el('i')); td.append(bar, el('span')); }
  const f = Math.max(0, Math.min(1, Number(p) || 0));
  td.firstChild.firstChild.style.width = `${(f * 100).toFixed(0)}%`;
  setText(td.lastChild, `${(f * 100).toFixed(0)}%`);
}

function renderRobots() {
  const ids = [...robots.keys()].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  setText($('robot-count'), `(${ids.length})`);
  syncRows($('robots'), ids, () => makeRow(6, [['cancel', 'Cancel'], ['estop', 'E-stop']]), (tr, id) => {
    const r = robots.get(id), s = r.state, c = tr.cells;
    tr.classList.toggle('sel', id === selected);
    if (!c[0].firstChild) c[0].append(el('span', '', id));
    const tag = c[0].querySelector('.tag');
    if (r.legacy && !tag) c[0].append(el('span', 'tag', 'legacy')); else if (!r.legacy && tag) tag.remove();
    setText(c[1], r.presence || '–');
    c[1].className = PRESENCES.includes(r.presence) ? `p-${r.presence}` : '';
    setText(c[2], s ? s.mode : '–');
    c[2].style.color = (s && MODE_COLORS[s.mode]) || '';
    const bat = s && s.battery ? s.battery.percentage : null;
    setText(c[3], s ? `${num(bat, 0)}%${s.battery.charging ? ' chg' : ''}` : '–');
    c[3].className = bat !== null && bat < 20 ? 'low' : '';
    setText(c[4], s ? `${num(s.pose.x, 1)}, ${num(s.pose.y, 1)}, ${num((s.pose.yaw * 180) / Math.PI, 0)}°` : '–');
    const task = s && s.task;
    setText(c[5], task ? `${String(task.task_id).slice(0, 6)} ${num(100 * task.progress, 0)}%` : '–');
    c[5].title = task ? task.task_id : '';
    const estopped = s && s.mode === 'ESTOPPED', b = c[6].lastChild;
    setText(b, estopped ? 'Release' : 'E-stop');
    b.dataset.action = estopped ? 'release' : 'estop';
    b.className = estopped ? '' : 'estop';
  });
}

function renderTasks() {
  const list = [...tasks.values()].sort((a, b) => b.created_ms - a.created_ms).slice(0, TASK_LIMIT);
  syncRows($('tasks'), list.map((t) => t.id), () => makeRow(8, [['cancel', 'Cancel']]), (tr, id) => {
    const t = tasks.get(id), c = tr.cells;
    setText(c[0], shortId(id)); c[0].title = id;
    if (!c[1].firstChild) c[1].append(el('span'));
    setText(c[1].firstChild, t.status);
    c[1].firstChild.className = STATUSES.includes(t.status) ? `st st-${t.status}` : 'st';
    setText(c[2], t.assigned_robot || (t.robot_id ? `${t.robot_id} (req)` : 'auto'));
    setText(c[3], t.priority || '');
    const pts = goalPoints(t);
    setText(c[4], t.goal && t.goal.pose ? `${num(t.goal.pose.x)}, ${num(t.goal.pose.y)}` : `${pts.length} waypoints`);
    progressCell(c[5], t.progress);
    setText(c[6], fmtTime(t.created_ms)); c[6].title = t.created_ms ? new Date(t.created_ms).toLocaleString() : '';
    setText(c[7], t.error || ''); c[7].className = 'err';
    const b = c[8].firstChild;
    b.hidden = !OPEN.has(t.status);
  });
}

$('robots').addEventListener('click', async (e) => {
  const tr = e.target.closest('tr'), b = e.target.closest('button');
  if (!tr) return;
  const id = tr.dataset.id;
  if (!b) { select(id === selected ? null : id); return; }
  const action = b.dataset.action, [what, suffix, done] = { cancel: ['Cancel', 'cancel', 'Cancel sent to'],
    estop: ['E-stop', 'emergency-stop', 'E-stop sent to'], release: ['Release', 'emergency-stop/release', 'E-stop released on'] }[action];
  b.disabled = true;
  if (await act(`${what} ${id}`, 'POST', `/api/robots/${enc(id)}/${suffix}`)) toast(`${done} ${id}`, action === 'estop');
  b.disabled = false;
});
$('tasks').addEventListener('click', async (e) => {
  const b = e.target.closest('button[data-action="cancel"]');
  if (!b) return;
  const id = b.closest('tr').dataset.id;
  b.disabled = true;
  const t = await act(`Cancel task ${shortId(id)}`, 'POST', `/api/tasks/${enc(id)}/cancel`);
  if (t) { upsertTask(t); toast(`Task ${shortId(id)} ${String(t.status).toLowerCase()}`); }
  b.disabled = false;
});

$('fleet-estop').addEventListener('click', async () => {
  if (!confirm('Engage the FLEET EMERGENCY STOP? Every robot will halt.')) return;
  await act('Fleet e-stop', 'POST', '/api/fleet/emergency-stop'); // the WS estop event toasts
  loadStatus();
});
$('fleet-release').addEventListener('click', async () => {
  await act('Fleet release', 'POST', '/api/fleet/emergency-stop/release');
  loadStatus();
});

// ---------- frame loop ----------
function updateConn(now) {
  const age = (now - conn.last) / 1000, node = $('conn');
  let cls = 'bad', text;
  if (conn.open) { cls = age < 2 ? 'ok' : 'warn'; text = `live · ${age.toFixed(1)} s`; }
  else text = conn.ws ? 'connecting…' : `disconnected · retry ${Math.max(0, (conn.retryAt - now) / 1000).toFixed(0)} s`;
  if (!conn.open && conn.last) text += ` · data ${age.toFixed(0)} s old`;
  node.className = `conn ${cls}`;
  document.body.classList.toggle('disconnected', !conn.open);
  setText($('conn-text'), text);
}

function frame(t) {
  flushPending();
  const now = Date.now();
  updateConn(now);
  if ((robotsDirty || tasksDirty) && now - lastTables > 250) {
    if (robotsDirty) renderRobots();
    if (tasksDirty) renderTasks();
    robotsDirty = tasksDirty = false; lastTables = now;
  }
  drawMap(t);
  requestAnimationFrame(frame);
}

$('legend').replaceChildren(...Object.entries(MODE_COLORS).map(([m, c]) => {
  const s = el('span'), i = el('i'); i.style.background = c; s.append(i, m.toLowerCase()); return s;
}));
poll(loadStatus, POLL_MS);
poll(loadTasks, POLL_MS);
poll(loadRobots, ROBOT_RESYNC_MS);
connect();
requestAnimationFrame(frame);
