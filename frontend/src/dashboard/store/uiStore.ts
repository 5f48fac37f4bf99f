// Dashboard UI state shared by the map and the panels: selection, view mode, task priority.

import { Observable } from '../../shared/observable';
import type { Priority } from '../../shared/types';

export type ViewMode = 'fit' | 'free' | 'follow';

export interface UiState {
  selected: string | null;
  viewMode: ViewMode;
  priority: Priority;
  /** Bumped to ask the map to zoom/centre on a point once. */
  focus: { x: number; y: number; n: number } | null;
  estopDialog: boolean;
}

export const ui = new Observable<UiState>({
  selected: null,
  viewMode: 'fit',
  priority: 'normal',
  focus: null,
  estopDialog: false,
});

export function select(id: string | null): void {
  const s = ui.get();
  // following a robot that is no longer selected makes no sense
  ui.update({ selected: id, viewMode: s.viewMode === 'follow' && !id ? 'free' : s.viewMode });
}

export function setViewMode(viewMode: ViewMode): void {
  ui.update({ viewMode });
}

export function focusOn(x: number, y: number): void {
  ui.update({ focus: { x, y, n: (ui.get().focus?.n ?? 0) + 1 }, viewMode: 'free' });
}
