// The top bar: brand, connection indicator, fleet counters, who is signed in, API docs link, fleet
// e-stop; the open-API (demo mode) banner and the e-stop banner.

import { useObservable, useThrottledVersion } from '../../shared/hooks';
import { fleet } from '../net/controller';
import { signOut } from '../session';
import { session } from '../store/sessionStore';
import { ConnIndicator } from './ConnIndicator';
import { EstopControls } from './EstopControls';
import { FleetCounters } from './FleetCounters';

const version = () => fleet.store.version;

export function Header({ minimal = false }: { minimal?: boolean }) {
  return (
    <header className="topbar">
      <div className="brand">
        <span className="logo">fms</span>
        <span className="brand-sub">fleet operations</span>
      </div>
      {!minimal && <ConnIndicator />}
      {minimal ? <span className="counters" /> : <FleetCounters />}
      <UserChip />
      <a className="btn btn-small btn-ghost api-link" href="/api/docs" target="_blank" rel="noopener" title="The REST API: OpenAPI document and explorer" data-testid="api-link">
        API
      </a>
      {!minimal && <EstopControls />}
    </header>
  );
}

function UserChip() {
  const { info, principal, phase } = useObservable(session);
  if (!info || !principal || phase !== 'ready') return null;
  if (!info.auth_required) {
    return (
      <span className="user-chip user-open" data-testid="user" data-role={principal.role} title="Authentication is off: every caller is an anonymous admin">
        open API · no sign-in
      </span>
    );
  }
  return (
    <span className="user-chip" data-testid="user" data-role={principal.role} title={`Signed in with ${principal.method === 'jwt' ? 'a token' : 'an API key'}`}>
      <span className="user-name">{principal.name}</span>
      <span className={`role role-${principal.role}`} data-testid="user-role">
        {principal.role}
      </span>
      <button type="button" className="link small" onClick={() => signOut()} data-testid="sign-out">
        Sign out
      </button>
    </span>
  );
}

/** Always visible while the server runs without authentication. */
export function OpenApiBanner() {
  const { info } = useObservable(session);
  if (!info || info.auth_required) return null;
  return (
    <div className="banner banner-open" role="status" data-testid="open-banner">
      <b>Demo mode: the API is open</b> — anyone on the network can command the fleet. Start the server with{' '}
      <code>--auth true</code> and create keys with <code>fms_server keys create</code>.
    </div>
  );
}

export function EstopBanner() {
  useThrottledVersion(version, 2);
  if (!fleet.store.fleet?.estop_engaged) return null;
  return (
    <div className="banner" role="alert" data-testid="estop-banner">
      FLEET EMERGENCY STOP ENGAGED — all robots are halted until released.
    </div>
  );
}
