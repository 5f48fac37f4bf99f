// The hold-to-drive dead-man button: pressed only while a pointer (or the Space key) holds it.

import { useEffect, useRef } from 'react';

export function DeadmanButton({ held, onHold, onRelease, disabled }: { held: boolean; onHold: () => void; onRelease: () => void; disabled: boolean }) {
  const ref = useRef<HTMLButtonElement>(null);
  const pointer = useRef<number | null>(null);
  const cbs = useRef({ onHold, onRelease, disabled });
  cbs.current = { onHold, onRelease, disabled };

  useEffect(() => {
    const b = ref.current!;
    const down = (e: PointerEvent) => {
      e.preventDefault();
      if (cbs.current.disabled || pointer.current !== null) return;
      pointer.current = e.pointerId;
      b.setPointerCapture(e.pointerId);
      cbs.current.onHold();
    };
    const up = (e: PointerEvent) => {
      if (e.pointerId !== pointer.current) return;
      pointer.current = null;
      cbs.current.onRelease();
    };
    // Space works as the dead-man too, so a mouse can drive the joystick meanwhile
    const key = (e: KeyboardEvent) => {
      if (e.code !== 'Space' || e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
      e.preventDefault();
      if (e.type === 'keydown' && !e.repeat && !cbs.current.disabled) cbs.current.onHold();
      if (e.type === 'keyup' && pointer.current === null) cbs.current.onRelease();
    };
    b.addEventListener('pointerdown', down);
    b.addEventListener('pointerup', up);
    b.addEventListener('pointercancel', up);
    b.addEventListener('lostpointercapture', up);
    window.addEventListener('keydown', key);
    window.addEventListener('keyup', key);
    return () => {
      b.removeEventListener('pointerdown', down);
      b.removeEventListener('pointerup', up);
      b.removeEventListener('pointercancel', up);
      b.removeEventListener('lostpointercapture', up);
      window.removeEventListener('keydown', key);
      window.removeEventListener('keyup', key);
    };
  }, []);

  return (
    <button
      ref={ref}
      type="button"
      className={`deadman ${held ? 'held' : ''}`}
      disabled={disabled}
      data-testid="deadman"
      data-held={held ? '1' : '0'}
      onContextMenu={(e) => e.preventDefault()}
    >
      <span className="deadman-label">{held ? 'DRIVING' : 'HOLD TO DRIVE'}</span>
      <span className="deadman-hint">{held ? 'release to stop' : 'or hold Space'}</span>
    </button>
  );
}
