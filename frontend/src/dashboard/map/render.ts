// Draws one frame of the map canvas: ROS map image, metric grid, locations, trails, goals, robots.

import { modeColor } from '../../shared/format';
import type { Location, Task } from '../../shared/types';
import type { FleetStore, RobotRec } from '../store/fleetStore';
import { goalPoses } from '../store/fleetStore';
import type { LoadedMap } from './mapLoader';
import { gridStep, imageToScreenMatrix, screenToWorld, worldToScreen, type Point, type View } from './transform';

export const ROBOT_RADIUS_M = 0.25;
/** Above this many robots (and zoomed out), markers are drawn in batches without labels. */
export const DENSE_ROBOTS = 150;
const DENSE_TRAIL_POINTS = 15;
const BG = '#0b1120';
const LABEL_FONT = '600 12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const SMALL_FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';

export interface Scene {
  view: View;
  dpr: number;
  store: FleetStore;
  map: LoadedMap | null;
  selected: string | null;
  /** The last map click (world), drawn as a fading ripple until `untilMs`. */
  flash: { x: number; y: number; untilMs: number } | null;
  nowMs: number;
}

/** On-screen robot radius in CSS px. */
export const robotRadiusPx = (scale: number) => Math.max(ROBOT_RADIUS_M * scale, 8);

export function drawScene(ctx: CanvasRenderingContext2D, s: Scene): void {
  const { view, dpr } = s;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = BG;
  ctx.fillRect(0, 0, view.width, view.height);
  if (s.map) drawMapImage(ctx, s.map, view, dpr);
  drawGrid(ctx, view, !s.map);
  drawLocations(ctx, view, s.store.locations);
  const robots = [...s.store.robots.values()].filter((r) => r.state);
  // a big fleet seen from afar: batched markers, short trails, no labels
  const dense = robots.length > DENSE_ROBOTS && view.scale < 40;
  drawQueuedGoals(ctx, view, s.store);
  drawTrails(ctx, view, robots, dense ? DENSE_TRAIL_POINTS : Infinity);
  drawGoals(ctx, view, s.store, robots);
  if (dense) drawRobotsDense(ctx, view, robots, s.selected);
  else {
    const labels = robots.length <= 80 || view.scale >= 30;
    for (const r of robots) if (r.id !== s.selected) drawRobot(ctx, view, r, false, labels);
  }
  const sel = s.selected ? s.store.robots.get(s.selected) : undefined;
  if (sel?.state) drawRobot(ctx, view, sel, true, true);
  if (s.flash && s.nowMs < s.flash.untilMs) drawFlash(ctx, view, s.flash, s.nowMs);
  drawScaleBar(ctx, view);
  if (!robots.length) {
    ctx.fillStyle = '#8a9bb4';
    ctx.font = '14px system-ui, sans-serif';
    ctx.textAlign = 'center';
    ctx.fillText('No robots reporting yet', view.width / 2, 28);
    ctx.textAlign = 'start';
  }
}

function drawMapImage(ctx: CanvasRenderingContext2D, map: LoadedMap, view: View, dpr: number): void {
  const [a, b, c, d, e, f] = imageToScreenMatrix(map.meta, view);
  ctx.save();
  ctx.setTransform(a * dpr, b * dpr, c * dpr, d * dpr, e * dpr, f * dpr);
  // crisp cells once each is a few pixels wide, smooth when zoomed out
  ctx.imageSmoothingEnabled = view.scale * map.meta.resolution < 3;
  ctx.drawImage(map.canvas, 0, 0);
  ctx.restore();
}

function drawGrid(ctx: CanvasRenderingContext2D, view: View, prominent: boolean): void {
  const tl = screenToWorld(view, 0, 0);
  const br = screenToWorld(view, view.width, view.height);
  const step = gridStep(view.scale, prominent ? 20 : 40);
  const major = step * (String(step)[0] === '5' ? 2 : 5);
  const labels: [string, number, number][] = [];
  ctx.lineWidth = 1;
  const line = (v: number, vertical: boolean) => {
    const p = vertical ? worldToScreen(view, v, 0).x : worldToScreen(view, 0, v).y;
    const sp = Math.round(p) + 0.5;
    const isMajor = Math.abs(v / major - Math.round(v / major)) < 1e-6;
    const isAxis = Math.abs(v) < step / 1000;
    ctx.strokeStyle = isAxis ? 'rgba(148,163,184,0.45)' : isMajor ? 'rgba(148,163,184,0.22)' : 'rgba(148,163,184,0.09)';
    if (!prominent && !isMajor && !isAxis) ctx.strokeStyle = 'rgba(148,163,184,0.06)';
    ctx.beginPath();
    if (vertical) {
      ctx.moveTo(sp, 0);
      ctx.lineTo(sp, view.height);
    } else {
      ctx.moveTo(0, sp);
      ctx.lineTo(view.width, sp);
    }
    ctx.stroke();
    if (isMajor) labels.push([`${+v.toFixed(3)}`, vertical ? sp + 3 : 4, vertical ? view.height - 6 : sp - 3]);
  };
  for (let x = Math.ceil(tl.x / step) * step; x <= br.x; x += step) line(x, true);
  for (let y = Math.ceil(br.y / step) * step; y <= tl.y; y += step) line(y, false);
  ctx.font = SMALL_FONT;
  ctx.fillStyle = 'rgba(148,163,184,0.75)';
  for (const [t, x, y] of labels) ctx.fillText(t, x, y);
}

function drawLocations(ctx: CanvasRenderingContext2D, view: View, locations: Location[]): void {
  ctx.font = SMALL_FONT;
  ctx.textAlign = 'center';
  for (const l of locations) {
    const p = worldToScreen(view, l.x, l.y);
    const r = 7;
    ctx.beginPath();
    ctx.moveTo(p.x, p.y - r);
    ctx.lineTo(p.x + r, p.y);
    ctx.lineTo(p.x, p.y + r);
    ctx.lineTo(p.x - r, p.y);
    ctx.closePath();
    ctx.fillStyle = l.charger ? 'rgba(250,204,21,0.25)' : 'rgba(56,189,248,0.18)';
    ctx.strokeStyle = l.charger ? '#facc15' : '#7dd3fc';
    ctx.lineWidth = 1.5;
    ctx.fill();
    ctx.stroke();
    if (l.charger) drawBolt(ctx, p.x, p.y, '#facc15');
    ctx.fillStyle = l.charger ? '#fde68a' : '#bae6fd';
    ctx.fillText(l.name, p.x, p.y + r + 12);
  }
  ctx.textAlign = 'start';
}

function drawBolt(ctx: CanvasRenderingContext2D, x: number, y: number, color: string): void {
  ctx.beginPath();
  ctx.moveTo(x + 1, y - 5);
  ctx.lineTo(x - 3, y + 1);
  ctx.lineTo(x, y + 1);
  ctx.lineTo(x - 1, y + 5);
  ctx.lineTo(x + 3, y - 1);
  ctx.lineTo(x, y - 1);
  ctx.closePath();
  ctx.fillStyle = color;
  ctx.fill();
}

function drawTrails(ctx: CanvasRenderingContext2D, view: View, robots: RobotRec[], maxPoints: number): void {
  // one path per colour keeps 1,000 trails cheap
  const byColor = new Map<string, RobotRec[]>();
  for (const r of robots) {
    if (r.trail.length < 4) continue;
    const c = modeColor(r.state!.mode);
    let list = byColor.get(c);
    if (!list) byColor.set(c, (list = []));
    list.push(r);
  }
  ctx.save();
  ctx.lineWidth = 2;
  ctx.lineJoin = 'round';
  ctx.globalAlpha = 0.5;
  for (const [color, list] of byColor) {
    ctx.strokeStyle = color;
    ctx.beginPath();
    for (const r of list) {
      const t = r.trail;
      const from = Math.max(0, t.length - 2 * maxPoints);
      for (let i = from; i < t.length; i += 2) {
        const p = worldToScreen(view, t[i], t[i + 1]);
        if (i === from) ctx.moveTo(p.x, p.y);
        else ctx.lineTo(p.x, p.y);
      }
      const cur = worldToScreen(view, r.state!.pose.x, r.state!.pose.y);
      ctx.lineTo(cur.x, cur.y);
    }
    ctx.stroke();
  }
  ctx.restore();
}

function drawCross(ctx: CanvasRenderingContext2D, p: Point, size: number): void {
  ctx.moveTo(p.x - size, p.y - size);
  ctx.lineTo(p.x + size, p.y + size);
  ctx.moveTo(p.x + size, p.y - size);
  ctx.lineTo(p.x - size, p.y + size);
}

function drawGoalPath(ctx: CanvasRenderingContext2D, view: View, from: Point | null, task: Task, color: string): void {
  const pts = goalPoses(task).map((g) => worldToScreen(view, g.x, g.y));
  if (!pts.length) return;
  ctx.strokeStyle = color;
  ctx.lineWidth = 1.5;
  ctx.setLineDash([6, 5]);
  ctx.beginPath();
  const start = from ?? pts[0];
  ctx.moveTo(start.x, start.y);
  for (const p of pts) ctx.lineTo(p.x, p.y);
  ctx.stroke();
  ctx.setLineDash([]);
  ctx.lineWidth = 2.5;
  ctx.beginPath();
  pts.forEach((p, i) => drawCross(ctx, p, i === pts.length - 1 ? 7 : 4));
  ctx.stroke();
  const last = pts[pts.length - 1];
  ctx.beginPath();
  ctx.arc(last.x, last.y, 11, 0, Math.PI * 2);
  ctx.lineWidth = 1.5;
  ctx.stroke();
}

function drawQueuedGoals(ctx: CanvasRenderingContext2D, view: View, store: FleetStore): void {
  ctx.save();
  ctx.globalAlpha = 0.8;
  for (const t of store.tasks.values()) if (t.status === 'QUEUED') drawGoalPath(ctx, view, null, t, '#94a3b8');
  ctx.restore();
}

function drawGoals(ctx: CanvasRenderingContext2D, view: View, store: FleetStore, robots: RobotRec[]): void {
  ctx.save();
  for (const r of robots) {
    const t = store.taskOf(r.id);
    if (!t || (t.status !== 'ASSIGNED' && t.status !== 'ACTIVE')) continue;
    drawGoalPath(ctx, view, worldToScreen(view, r.state!.pose.x, r.state!.pose.y), t, modeColor(r.state!.mode));
  }
  ctx.restore();
}

/** Many robots at once: one path per colour for the bodies, one for every heading tick. */
function drawRobotsDense(ctx: CanvasRenderingContext2D, view: View, robots: RobotRec[], selected: string | null): void {
  const rad = Math.max(ROBOT_RADIUS_M * view.scale, 4);
  const byColor = new Map<string, RobotRec[]>();
  for (const r of robots) {
    if (r.id === selected) continue;
    const c = modeColor(r.state!.mode);
    let list = byColor.get(c);
    if (!list) byColor.set(c, (list = []));
    list.push(r);
  }
  const visible = (p: Point) => p.x > -20 && p.y > -20 && p.x < view.width + 20 && p.y < view.height + 20;
  ctx.save();
  for (const [color, list] of byColor) {
    ctx.beginPath();
    for (const r of list) {
      const p = worldToScreen(view, r.state!.pose.x, r.state!.pose.y);
      if (!visible(p)) continue;
      ctx.moveTo(p.x + rad, p.y);
      ctx.arc(p.x, p.y, rad, 0, Math.PI * 2);
    }
    ctx.fillStyle = color;
    ctx.fill();
  }
  ctx.beginPath();
  for (const r of robots) {
    if (r.id === selected) continue;
    const st = r.state!;
    const p = worldToScreen(view, st.pose.x, st.pose.y);
    if (!visible(p)) continue;
    ctx.moveTo(p.x, p.y);
    const yaw = st.pose.yaw ?? 0;
    ctx.lineTo(p.x + Math.cos(yaw) * rad * 1.8, p.y - Math.sin(yaw) * rad * 1.8);
  }
  ctx.strokeStyle = '#f8fafc';
  ctx.lineWidth = 1.5;
  ctx.stroke();
  ctx.restore();
}

function batteryColor(p: number): string {
  return p < 20 ? '#ef4444' : p < 40 ? '#eab308' : '#22c55e';
}

function drawRobot(ctx: CanvasRenderingContext2D, view: View, r: RobotRec, selected: boolean, label: boolean): void {
  const st = r.state!;
  const p = worldToScreen(view, st.pose.x, st.pose.y);
  if (p.x < -60 || p.y < -60 || p.x > view.width + 60 || p.y > view.height + 60) return;
  const color = modeColor(st.mode);
  const rad = robotRadiusPx(view.scale);
  ctx.save();
  ctx.globalAlpha = r.presence === 'OFFLINE' ? 0.35 : r.presence === 'STALE' ? 0.7 : 1;
  if (selected) {
    ctx.beginPath();
    ctx.arc(p.x, p.y, rad + 6, 0, Math.PI * 2);
    ctx.fillStyle = 'rgba(255,255,255,0.15)';
    ctx.fill();
    ctx.strokeStyle = '#f8fafc';
    ctx.lineWidth = 2;
    ctx.stroke();
  }
  ctx.beginPath();
  ctx.arc(p.x, p.y, rad, 0, Math.PI * 2);
  ctx.fillStyle = color;
  ctx.fill();
  ctx.strokeStyle = '#0b1120';
  ctx.lineWidth = 2;
  if (r.presence === 'STALE') ctx.setLineDash([3, 3]);
  ctx.stroke();
  ctx.setLineDash([]);
  // heading: a white arrow from the centre past the rim (yaw CCW from +x; screen y is down)
  const dx = Math.cos(st.pose.yaw ?? 0);
  const dy = -Math.sin(st.pose.yaw ?? 0);
  const len = rad + Math.max(0.3 * view.scale, 8);
  const tx = p.x + dx * len;
  const ty = p.y + dy * len;
  const hs = Math.max(5, rad * 0.55);
  ctx.strokeStyle = '#f8fafc';
  ctx.fillStyle = '#f8fafc';
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.moveTo(p.x, p.y);
  ctx.lineTo(tx - dx * hs * 0.5, ty - dy * hs * 0.5);
  ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(tx, ty);
  ctx.lineTo(tx - dx * hs - dy * hs * 0.6, ty - dy * hs + dx * hs * 0.6);
  ctx.lineTo(tx - dx * hs + dy * hs * 0.6, ty - dy * hs - dx * hs * 0.6);
  ctx.closePath();
  ctx.fill();
  // battery bar under the body
  const bat = st.battery?.percentage ?? 0;
  const bw = Math.max(2 * rad + 6, 22);
  const by = p.y + rad + 5;
  ctx.fillStyle = 'rgba(15,23,42,0.85)';
  ctx.fillRect(p.x - bw / 2 - 1, by - 1, bw + 2, 6);
  ctx.fillStyle = batteryColor(bat);
  ctx.fillRect(p.x - bw / 2, by, (bw * Math.max(0, Math.min(100, bat))) / 100, 4);
  if (label) {
    ctx.font = LABEL_FONT;
    ctx.textAlign = 'center';
    const text = st.teleop_operator ? `${r.id} · ${st.teleop_operator}` : r.id;
    const ly = p.y - rad - 7;
    ctx.lineWidth = 3;
    ctx.strokeStyle = 'rgba(11,17,32,0.9)';
    ctx.strokeText(text, p.x, ly);
    ctx.fillStyle = '#f8fafc';
    ctx.fillText(text, p.x, ly);
  }
  if (label && (selected || view.scale >= 60)) {
    ctx.font = SMALL_FONT;
    ctx.textAlign = 'center';
    ctx.lineWidth = 3;
    ctx.strokeStyle = 'rgba(11,17,32,0.9)';
    const bt = `${bat.toFixed(0)}%${st.battery?.charging ? ' charging' : ''}`;
    ctx.strokeText(bt, p.x, by + 16);
    ctx.fillStyle = bat < 20 ? '#fca5a5' : '#cbd5e1';
    ctx.fillText(bt, p.x, by + 16);
  }
  ctx.restore();
}

function drawFlash(ctx: CanvasRenderingContext2D, view: View, f: { x: number; y: number; untilMs: number }, now: number): void {
  const p = worldToScreen(view, f.x, f.y);
  const k = 1 - (f.untilMs - now) / 1500;
  ctx.save();
  ctx.globalAlpha = Math.max(0, 1 - k);
  ctx.strokeStyle = '#38bdf8';
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.arc(p.x, p.y, 6 + k * 24, 0, Math.PI * 2);
  ctx.stroke();
  ctx.restore();
}

function drawScaleBar(ctx: CanvasRenderingContext2D, view: View): void {
  const step = gridStep(view.scale, 60);
  const w = step * view.scale;
  const x = 14;
  const y = view.height - 30;
  ctx.fillStyle = 'rgba(11,17,32,0.75)';
  ctx.fillRect(x - 6, y - 16, w + 12, 26);
  ctx.strokeStyle = '#e2e8f0';
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.moveTo(x, y - 4);
  ctx.lineTo(x, y + 2);
  ctx.lineTo(x + w, y + 2);
  ctx.lineTo(x + w, y - 4);
  ctx.stroke();
  ctx.font = SMALL_FONT;
  ctx.fillStyle = '#e2e8f0';
  ctx.textAlign = 'center';
  ctx.fillText(step >= 1 ? `${step} m` : `${step * 100} cm`, x + w / 2, y - 4);
  ctx.textAlign = 'start';
}
