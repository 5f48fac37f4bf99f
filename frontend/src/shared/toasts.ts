// Toast notifications: a short list of recent messages, errors kept longer.

import { Observable } from './observable';

export interface Toast {
  id: number;
  text: string;
  level: 'info' | 'error' | 'ok';
}

export const toasts = new Observable<Toast[]>([]);
let nextId = 1;

export function toast(text: string, level: Toast['level'] = 'info'): void {
  const t: Toast = { id: nextId++, text, level };
  toasts.set([...toasts.get(), t].slice(-5));
  setTimeout(() => toasts.set(toasts.get().filter((x) => x.id !== t.id)), level === 'error' ? 8000 : 4000);
}
