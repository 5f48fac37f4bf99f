// The top bar: brand, connection indicator, fleet counters, fleet e-stop; and the e-stop banner.

import { useThrottledVersion } from '../../shared/hooks';
import { fleet } from '../net/controller';
import { ConnIndicator } from './ConnIndicator';
import { EstopControls } from './EstopControls';
import { FleetCounters } from './FleetCounters';

const version = () => fleet.store.version;

export function Header() {
  return (
    <header className="topbar">
      <div className="brand">
        <span className="logo">fms</span>
        <span className="brand-sub">fleet operations</span>
      </div>
      <ConnIndicator />
      <FleetCounters />
      <EstopControls />
    </header>
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
