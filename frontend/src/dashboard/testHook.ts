// window.__fms: what the browser end-to-end tests read (marker positions, view, map) and do (select).

import { cellAt } from './map/mapLoader';
import { mapRef } from './map/mapRef';
import { fleet } from './net/controller';
import { session } from './store/sessionStore';
import { select, setViewMode } from './store/uiStore';

export function installTestHook(): void {
  const hook = {
    ready: () => !!mapRef.current && mapRef.current.frames > 0 && fleet.mapStatus !== 'loading',
    mapStatus: () => fleet.mapStatus,
    mapMeta: () => fleet.map?.meta ?? null,
    view: () => mapRef.current?.view ?? null,
    frames: () => mapRef.current?.frames ?? 0,
    drawMs: () => [...(mapRef.current?.drawMs ?? [])],
    imageRect: () => mapRef.current?.imageRect() ?? null,
    robotIds: () => fleet.store.robotIds(),
    robotScreenPos: (id: string) => mapRef.current?.robotScreenPos(id) ?? null,
    worldToClient: (x: number, y: number) => mapRef.current?.worldToClient(x, y) ?? null,
    clientToWorld: (x: number, y: number) => mapRef.current?.clientToWorld(x, y) ?? null,
    pixelAt: (x: number, y: number) => mapRef.current?.pixelAt(x, y) ?? null,
    /** 0 free, 1 occupied, 2 unknown; null without a map. */
    cellAt: (x: number, y: number) => (fleet.map ? cellAt(fleet.map, x, y) : null),
    select: (id: string | null) => select(id),
    fit: () => setViewMode('fit'),
    socket: () => ({ phase: fleet.socket.phase, opens: fleet.socket.opens, lastMessageMs: fleet.socket.lastMessageMs }),
    resyncs: () => fleet.resyncs,
    store: fleet.store,
    session: () => session.get(),
    /** Sends the fleet e-stop whatever the role (the server answers 403 to a non-admin). */
    forceFleetEstop: () => fleet.fleetEstop(true, { force: true }),
  };
  (window as unknown as { __fms: typeof hook }).__fms = hook;
}
