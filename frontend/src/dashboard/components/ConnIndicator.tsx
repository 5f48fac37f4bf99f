// The live-connection indicator: state of the /ws feed and the age of the last message.

import { useTick } from '../../shared/hooks';
import { fleet } from '../net/controller';

export type ConnState = 'live' | 'stale' | 'connecting' | 'disconnected';

export function connState(phase: string, ageS: number): ConnState {
  if (phase === 'open') return ageS < 2 ? 'live' : 'stale';
  return phase === 'connecting' ? 'connecting' : 'disconnected';
}

export function ConnIndicator() {
  useTick(4);
  const s = fleet.socket;
  const now = Date.now();
  const ageS = s.lastMessageMs ? (now - s.lastMessageMs) / 1000 : Infinity;
  const state = connState(s.phase, ageS);
  const age = Number.isFinite(ageS) ? `${ageS < 10 ? ageS.toFixed(1) : ageS.toFixed(0)} s` : 'no data';
  let text: string;
  if (state === 'live') text = `Live · ${age}`;
  else if (state === 'stale') text = `Stale · data ${age} old`;
  else if (state === 'connecting') text = `Connecting… · data ${age}${Number.isFinite(ageS) ? ' old' : ''}`;
  else text = `Disconnected · retry in ${Math.max(0, (s.retryAtMs - now) / 1000).toFixed(0)} s · data ${age}${Number.isFinite(ageS) ? ' old' : ''}`;
  return (
    <span
      className={`conn conn-${state}`}
      data-testid="conn"
      data-state={state}
      data-age={Number.isFinite(ageS) ? ageS.toFixed(2) : ''}
      title="WebSocket feed: time since the last message"
    >
      <i />
      {text}
    </span>
  );
}
