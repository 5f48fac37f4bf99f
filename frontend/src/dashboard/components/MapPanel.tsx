// The map panel: toolbar over the canvas; owns the MapCanvas instance for its lifetime.

import { useEffect, useRef } from 'react';
import { MapCanvas } from '../map/mapCanvas';
import { mapRef } from '../map/mapRef';
import { fleet } from '../net/controller';
import { ConnOverlay } from './ConnOverlay';
import { Cursor, MapToolbar } from './MapToolbar';

export function MapPanel() {
  const canvasRef = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const m = new MapCanvas(canvasRef.current!, fleet);
    mapRef.current = m;
    return () => {
      m.destroy();
      mapRef.current = null;
    };
  }, []);
  return (
    <section className="panel map-panel">
      <MapToolbar />
      <div className="map-wrap">
        <canvas ref={canvasRef} className="map-canvas" data-testid="map" aria-label="Fleet map" />
        <MapLegend />
        <Cursor />
        <ConnOverlay />
      </div>
    </section>
  );
}

function MapLegend() {
  const items: [string, string][] = [
    ['idle', '#38bdf8'],
    ['navigating', '#22c55e'],
    ['teleop', '#ec4899'],
    ['charging', '#a78bfa'],
    ['e-stopped', '#ef4444'],
    ['error', '#f97316'],
  ];
  return (
    <div className="legend">
      {items.map(([label, color]) => (
        <span key={label}>
          <i style={{ background: color }} />
          {label}
        </span>
      ))}
      <span>
        <i className="legend-charger" />
        charger
      </span>
    </div>
  );
}
