// Over the map while the live feed is down or silent: says the picture is old, and how old.

import { useTick } from '../../shared/hooks';
import { fleet } from '../net/controller';
import { connState } from './ConnIndicator';

export function ConnOverlay() {
  useTick(2);
  const s = fleet.socket;
  const ageS = s.lastMessageMs ? (Date.now() - s.lastMessageMs) / 1000 : Infinity;
  const state = connState(s.phase, ageS);
  if (state === 'live' || (state === 'connecting' && !s.lastMessageMs)) return null;
  return (
    <div className="conn-overlay" data-testid="conn-overlay">
      {state === 'stale' ? 'No live data' : 'Connection lost'}
      {Number.isFinite(ageS) && <span> · map shows data from {ageS.toFixed(0)} s ago</span>}
    </div>
  );
}
