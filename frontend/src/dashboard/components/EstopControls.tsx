// The header's FLEET E-STOP (opens the confirmation dialog) and RELEASE buttons.

import { useObservable, useThrottledVersion } from '../../shared/hooks';
import { fleet } from '../net/controller';
import { ui } from '../store/uiStore';
import { EstopDialog } from './EstopDialog';

const version = () => fleet.store.version;

export function EstopControls() {
  useThrottledVersion(version, 2);
  const { estopDialog } = useObservable(ui);
  const engaged = !!fleet.store.fleet?.estop_engaged;
  return (
    <div className="estop-controls">
      <button
        type="button"
        className={`btn btn-estop btn-big ${engaged ? 'engaged' : ''}`}
        data-testid="fleet-estop"
        title="Stop every robot in the fleet"
        onClick={() => ui.update({ estopDialog: true })}
      >
        FLEET E-STOP
      </button>
      <button
        type="button"
        className={`btn btn-release ${engaged ? 'attention' : ''}`}
        data-testid="fleet-release"
        title="Release the fleet emergency stop"
        onClick={() => void fleet.fleetEstop(false)}
      >
        Release
      </button>
      {estopDialog && <EstopDialog robots={fleet.store.robots.size} />}
    </div>
  );
}
