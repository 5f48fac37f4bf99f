// React hooks over the stores: a throttled "re-render when the version moved" and observable values.

import { useEffect, useState, useSyncExternalStore } from 'react';
import type { Observable } from './observable';

/** Re-renders at most `hz` times a second, and only when `version()` changed. */
export function useThrottledVersion(version: () => number, hz = 4): number {
  const [v, setV] = useState(version);
  useEffect(() => {
    const id = setInterval(() => setV(version()), 1000 / hz);
    return () => clearInterval(id);
  }, [version, hz]);
  return v;
}

/** Re-renders `hz` times a second (clocks, ages). */
export function useTick(hz = 2): number {
  const [n, setN] = useState(0);
  useEffect(() => {
    const id = setInterval(() => setN((x) => x + 1), 1000 / hz);
    return () => clearInterval(id);
  }, [hz]);
  return n;
}

export function useObservable<T>(o: Observable<T>): T {
  return useSyncExternalStore(o.subscribe, o.get, o.get);
}
