// The live MapCanvas: set by the map panel for its lifetime, read by the toolbar's zoom buttons
// and the test hook. A module of its own so that the panel and its toolbar do not import each
// other.

import type { MapCanvas } from './mapCanvas';

export const mapRef: { current: MapCanvas | null } = { current: null };
