// The FLEET E-STOP confirmation dialog (modal; Esc or Cancel closes it).

import { useEffect, useRef } from 'react';
import { fleet } from '../net/controller';
import { ui } from '../store/uiStore';

export function EstopDialog({ robots }: { robots: number }) {
  const confirmRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    confirmRef.current?.focus();
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && ui.update({ estopDialog: false });
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
  const close = () => ui.update({ estopDialog: false });
  return (
    <div className="modal-backdrop" onClick={close}>
      <div className="modal" role="alertdialog" aria-modal="true" aria-labelledby="estop-title" data-testid="estop-dialog" onClick={(e) => e.stopPropagation()}>
        <div className="modal-icon">!</div>
        <h2 id="estop-title">Engage the FLEET EMERGENCY STOP?</h2>
        <p>
          Every robot ({robots} known) halts at once. Running tasks fail, and nothing is dispatched until the fleet stop
          is released.
        </p>
        <div className="modal-actions">
          <button type="button" className="btn" onClick={close}>
            Cancel
          </button>
          <button
            ref={confirmRef}
            type="button"
            className="btn btn-estop"
            data-testid="estop-confirm"
            onClick={() => {
              close();
              void fleet.fleetEstop(true);
            }}
          >
            STOP ALL ROBOTS
          </button>
        </div>
      </div>
    </div>
  );
}
