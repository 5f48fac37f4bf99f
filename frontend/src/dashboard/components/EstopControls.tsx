// The header's FLEET E-STOP (opens the confirmation dialog) and RELEASE buttons. They need the admin
// role: for others they stay visible but locked, and a click says why.

import { useObservable, useThrottledVersion } from '../../shared/hooks';
import { fleet } from '../net/controller';
import { can, roleToast, session } from '../store/sessionStore';
import { ui } from '../store/uiStore';
import { EstopDialog } from './EstopDialog';

const version = () => fleet.store.version;

export function EstopControls() {
  useThrottledVersion(version, 2);
  const { estopDialog } = useObservable(ui);
  useObservable(session);
  const engaged = !!fleet.store.fleet?.estop_engaged;
  const allowed = can('admin');
  const locked = allowed ? '' : 'locked';
  const lockedTitle = 'Needs the admin role';
  return (
    <div className="estop-controls">
      <button
        type="button"
        className={`btn btn-estop btn-big ${engaged ? 'engaged' : ''} ${locked}`}
        data-testid="fleet-estop"
        aria-disabled={!allowed}
        title={allowed ? 'Stop every robot in the fleet' : `${lockedTitle}: ask an admin, or e-stop single robots (operator)`}
        onClick={() => (allowed ? ui.update({ estopDialog: true }) : roleToast('The fleet e-stop', 'admin'))}
      >
        FLEET E-STOP
      </button>
      <button
        type="button"
        className={`btn btn-release ${engaged ? 'attention' : ''} ${locked}`}
        data-testid="fleet-release"
        aria-disabled={!allowed}
        title={allowed ? 'Release the fleet emergency stop' : lockedTitle}
        onClick={() => (allowed ? void fleet.fleetEstop(false) : roleToast('Releasing the fleet e-stop', 'admin'))}
      >
        Release
      </button>
      {estopDialog && <EstopDialog robots={fleet.store.robots.size} />}
    </div>
  );
}
