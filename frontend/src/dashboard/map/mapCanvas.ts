// The map canvas behind React: requestAnimationFrame loop (redraws only when something changed),
// fit / follow / free view, drag to pan, wheel to zoom, click to select or send a task, test hook.

import { Observable } from '../../shared/observable';
import { toast } from '../../shared/toasts';
import type { FleetController } from '../net/controller';
import { can, roleToast } from '../store/sessionStore';
import { select, ui, type UiState } from '../store/uiStore';
import { cellAt } from './mapLoader';
import { Cell } from './occupancy';
import { drawScene, robotRadiusPx } from './render';
import {
  fitBounds,
  imageToScreenMatrix,
  mapBounds,
  panBy,
  screenToWorld,
  unionBounds,
  worldToScreen,
  zoomAt,
  type Bounds,
  type Point,
  type View,
} from './transform';

/** World position under the pointer, for the toolbar readout. */
export const cursor = new Observable<Point | null>(null);

const DRAG_PX = 5;

export class MapCanvas {
  view: View = { cx: 0, cy: 0, scale: 40, width: 0, height: 0 };
  frames = 0;
  /** Duration of recent draws (ms), newest last, for the load test. */
  readonly drawMs: number[] = [];
  private dpr = 1;
  private raf = 0;
  private dirty = true;
  private flash: { x: number; y: number; untilMs: number } | null = null;
  private drag: { x: number; y: number; view: View; moved: boolean; id: number } | null = null;
  private lastUi: UiState = ui.get();
  private lastFocusN = 0;
  private readonly ctx: CanvasRenderingContext2D;
  private readonly ro: ResizeObserver;
  private readonly unsub: () => void;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly fleet: FleetController,
  ) {
    this.ctx = canvas.getContext('2d', { alpha: false })!;
    this.ro = new ResizeObserver(() => this.resize());
    this.ro.observe(canvas);
    this.unsub = ui.subscribe(() => {
      this.dirty = true;
    });
    canvas.addEventListener('pointerdown', this.onDown);
    canvas.addEventListener('pointermove', this.onMove);
    canvas.addEventListener('pointerup', this.onUp);
    canvas.addEventListener('pointercancel', this.onCancel);
    canvas.addEventListener('pointerleave', this.onLeave);
    canvas.addEventListener('wheel', this.onWheel, { passive: false });
    this.resize();
    this.raf = requestAnimationFrame(this.frame);
  }

  destroy(): void {
    cancelAnimationFrame(this.raf);
    this.ro.disconnect();
    this.unsub();
    const c = this.canvas;
    c.removeEventListener('pointerdown', this.onDown);
    c.removeEventListener('pointermove', this.onMove);
    c.removeEventListener('pointerup', this.onUp);
    c.removeEventListener('pointercancel', this.onCancel);
    c.removeEventListener('pointerleave', this.onLeave);
    c.removeEventListener('wheel', this.onWheel);
  }

  private resize(): void {
    const rect = this.canvas.getBoundingClientRect();
    this.dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.max(1, Math.round(rect.width * this.dpr));
    this.canvas.height = Math.max(1, Math.round(rect.height * this.dpr));
    this.view = { ...this.view, width: rect.width, height: rect.height };
    this.dirty = true;
    this.frame(performance.now(), false); // a resize clears the canvas: redraw now, not next frame
  }

  /** What "fit" shows: the map, else the robots and locations (at least 10 m x 10 m). */
  private fitTarget(): Bounds {
    const map = this.fleet.map;
    if (map) return mapBounds(map.meta);
    const pts: Bounds[] = [];
    for (const r of this.fleet.store.robots.values()) {
      if (r.state) pts.push({ minX: r.state.pose.x - 1, maxX: r.state.pose.x + 1, minY: r.state.pose.y - 1, maxY: r.state.pose.y + 1 });
    }
    for (const l of this.fleet.store.locations) pts.push({ minX: l.x - 1, maxX: l.x + 1, minY: l.y - 1, maxY: l.y + 1 });
    const b = unionBounds(...pts) ?? { minX: -5, minY: -5, maxX: 5, maxY: 5 };
    const grow = (lo: number, hi: number) => (hi - lo < 10 ? [(lo + hi) / 2 - 5, (lo + hi) / 2 + 5] : [lo, hi]);
    const [minX, maxX] = grow(b.minX, b.maxX);
    const [minY, maxY] = grow(b.minY, b.maxY);
    return { minX, maxX, minY, maxY };
  }

  private updateView(): void {
    const s = ui.get();
    const { width, height } = this.view;
    let next = this.view;
    if (s.focus && s.focus.n !== this.lastFocusN) {
      this.lastFocusN = s.focus.n;
      next = { ...next, cx: s.focus.x, cy: s.focus.y, scale: Math.max(next.scale, 40) };
    }
    if (s.viewMode === 'fit') next = fitBounds(this.fitTarget(), width, height, 16);
    else if (s.viewMode === 'follow' && s.selected) {
      const st = this.fleet.store.robots.get(s.selected)?.state;
      if (st) next = { ...next, cx: st.pose.x, cy: st.pose.y };
    }
    if (next.cx !== this.view.cx || next.cy !== this.view.cy || next.scale !== this.view.scale) {
      this.view = next;
      this.dirty = true;
    }
  }

  private frame = (now: number, loop = true): void => {
    if (loop) this.raf = requestAnimationFrame(this.frame);
    const store = this.fleet.store;
    store.flush();
    if (this.view.width < 2 || this.view.height < 2) return;
    this.updateView();
    const s = ui.get();
    if (s !== this.lastUi) {
      this.lastUi = s;
      this.dirty = true;
    }
    const flashing = this.flash !== null && now < this.flash.untilMs;
    if (!this.dirty && !store.mapDirty && !flashing) return;
    const t0 = performance.now();
    drawScene(this.ctx, {
      view: this.view,
      dpr: this.dpr,
      store,
      map: this.fleet.map,
      selected: s.selected,
      flash: this.flash,
      nowMs: now,
    });
    this.drawMs.push(performance.now() - t0);
    if (this.drawMs.length > 200) this.drawMs.shift();
    this.frames++;
    this.dirty = false;
    store.mapDirty = false;
  };

  private local(e: PointerEvent | WheelEvent): Point {
    const r = this.canvas.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }

  /** The robot under a screen point, if any. */
  robotAt(p: Point): string | null {
    let best: string | null = null;
    let bestD = robotRadiusPx(this.view.scale) + 6;
    for (const r of this.fleet.store.robots.values()) {
      if (!r.state) continue;
      const s = worldToScreen(this.view, r.state.pose.x, r.state.pose.y);
      const d = Math.hypot(s.x - p.x, s.y - p.y);
      if (d <= bestD) {
        best = r.id;
        bestD = d;
      }
    }
    return best;
  }

  private onDown = (e: PointerEvent): void => {
    if (e.button !== 0) return;
    const p = this.local(e);
    this.drag = { ...p, view: this.view, moved: false, id: e.pointerId };
    this.canvas.setPointerCapture(e.pointerId);
  };

  private onMove = (e: PointerEvent): void => {
    const p = this.local(e);
    cursor.set(screenToWorld(this.view, p.x, p.y));
    const d = this.drag;
    if (!d || d.id !== e.pointerId) return;
    if (!d.moved && Math.hypot(p.x - d.x, p.y - d.y) > DRAG_PX) d.moved = true;
    if (d.moved) {
      if (ui.get().viewMode !== 'free') ui.update({ viewMode: 'free' });
      this.view = panBy(d.view, p.x - d.x, p.y - d.y);
      this.dirty = true;
    }
  };

  private onUp = (e: PointerEvent): void => {
    const d = this.drag;
    this.drag = null;
    if (!d || d.moved || d.id !== e.pointerId) return;
    const p = this.local(e);
    const hit = this.robotAt(p);
    if (hit) {
      select(hit === ui.get().selected ? null : hit);
      return;
    }
    void this.sendTask(screenToWorld(this.view, p.x, p.y));
  };

  private onCancel = (): void => {
    this.drag = null;
  };

  private onLeave = (): void => {
    if (!this.drag) cursor.set(null);
  };

  private onWheel = (e: WheelEvent): void => {
    e.preventDefault();
    const s = ui.get();
    const p = s.viewMode === 'follow' ? { x: this.view.width / 2, y: this.view.height / 2 } : this.local(e);
    if (s.viewMode === 'fit') ui.update({ viewMode: 'free' });
    this.view = zoomAt(this.view, p.x, p.y, Math.exp(-e.deltaY * 0.0015));
    this.dirty = true;
  };

  /** Zoom buttons: around the canvas centre. */
  zoomBy(factor: number): void {
    if (ui.get().viewMode === 'fit') ui.update({ viewMode: 'free' });
    this.view = zoomAt(this.view, this.view.width / 2, this.view.height / 2, factor);
    this.dirty = true;
  }

  /** A map click: a navigation task to that point, for the selected robot or auto-dispatch. */
  async sendTask(w: Point): Promise<void> {
    if (!can('operator')) {
      roleToast('Sending a task', 'operator');
      return;
    }
    const map = this.fleet.map;
    if (map) {
      const c = cellAt(map, w.x, w.y);
      if (c === Cell.Occupied) {
        toast(`(${w.x.toFixed(2)}, ${w.y.toFixed(2)}) is an obstacle on the map: no task sent`, 'error');
        return;
      }
      if (c === Cell.Unknown) toast(`(${w.x.toFixed(2)}, ${w.y.toFixed(2)}) is unknown space on the map`);
    }
    this.flash = { ...w, untilMs: performance.now() + 1500 };
    const s = ui.get();
    await this.fleet.createTask(w, s.selected, s.priority);
  }

  // ---------- test hook (window.__fms) ----------

  /** A robot marker's position in page (client) coordinates, with the pose it was drawn at. */
  robotScreenPos(id: string): { x: number; y: number; pose: { x: number; y: number; yaw: number }; mode: string } | null {
    const st = this.fleet.store.robots.get(id)?.state;
    if (!st) return null;
    const r = this.canvas.getBoundingClientRect();
    const s = worldToScreen(this.view, st.pose.x, st.pose.y);
    return { x: r.left + s.x, y: r.top + s.y, pose: { x: st.pose.x, y: st.pose.y, yaw: st.pose.yaw ?? 0 }, mode: st.mode };
  }

  /** Where the map image is drawn: client position of its top-left corner and CSS px per image pixel. */
  imageRect(): { left: number; top: number; pxPerCell: number; yaw: number } | null {
    const map = this.fleet.map;
    if (!map) return null;
    const [a, b, , , e, f] = imageToScreenMatrix(map.meta, this.view);
    const r = this.canvas.getBoundingClientRect();
    return { left: r.left + e, top: r.top + f, pxPerCell: Math.hypot(a, b), yaw: map.meta.origin.yaw };
  }

  clientToWorld(x: number, y: number): Point {
    const r = this.canvas.getBoundingClientRect();
    return screenToWorld(this.view, x - r.left, y - r.top);
  }

  worldToClient(x: number, y: number): Point {
    const r = this.canvas.getBoundingClientRect();
    const s = worldToScreen(this.view, x, y);
    return { x: r.left + s.x, y: r.top + s.y };
  }

  /** The canvas colour (r, g, b) at a client point. */
  pixelAt(x: number, y: number): [number, number, number] {
    const r = this.canvas.getBoundingClientRect();
    const d = this.ctx.getImageData(Math.round((x - r.left) * this.dpr), Math.round((y - r.top) * this.dpr), 1, 1).data;
    return [d[0], d[1], d[2]];
  }
}
