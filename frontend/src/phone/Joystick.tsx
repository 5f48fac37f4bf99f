// A touch joystick (pointer events: finger, pen or mouse): reports the stick in the unit disc, recentres on release.

import { useEffect, useRef } from 'react';
import { offsetToStick, type Stick } from './joystick';

export function Joystick({ onChange }: { onChange: (s: Stick) => void }) {
  const baseRef = useRef<HTMLDivElement>(null);
  const knobRef = useRef<HTMLDivElement>(null);
  const pointer = useRef<number | null>(null);
  const cb = useRef(onChange);
  cb.current = onChange;

  useEffect(() => {
    const base = baseRef.current!;
    const knob = knobRef.current!;
    // the knob's centre travels to where its edge touches the rim
    const radius = () => Math.max(1, base.clientWidth / 2 - knob.clientWidth / 2 + 4);
    const moveKnob = (s: Stick) => {
      const r = radius();
      knob.style.transform = `translate(${(s.x * r).toFixed(1)}px, ${(-s.y * r).toFixed(1)}px)`;
    };
    const update = (e: PointerEvent) => {
      const rect = base.getBoundingClientRect();
      const s = offsetToStick(e.clientX - (rect.left + rect.width / 2), e.clientY - (rect.top + rect.height / 2), radius());
      moveKnob(s);
      base.dataset.x = s.x.toFixed(2);
      base.dataset.y = s.y.toFixed(2);
      cb.current(s);
    };
    const centre = () => {
      pointer.current = null;
      base.classList.remove('active');
      moveKnob({ x: 0, y: 0 });
      base.dataset.x = base.dataset.y = '0';
      cb.current({ x: 0, y: 0 });
    };
    const down = (e: PointerEvent) => {
      if (pointer.current !== null) return;
      e.preventDefault();
      pointer.current = e.pointerId;
      base.setPointerCapture(e.pointerId);
      base.classList.add('active');
      update(e);
    };
    const move = (e: PointerEvent) => e.pointerId === pointer.current && update(e);
    const up = (e: PointerEvent) => e.pointerId === pointer.current && centre();
    base.addEventListener('pointerdown', down);
    base.addEventListener('pointermove', move);
    base.addEventListener('pointerup', up);
    base.addEventListener('pointercancel', up);
    base.addEventListener('lostpointercapture', up);
    return () => {
      base.removeEventListener('pointerdown', down);
      base.removeEventListener('pointermove', move);
      base.removeEventListener('pointerup', up);
      base.removeEventListener('pointercancel', up);
      base.removeEventListener('lostpointercapture', up);
    };
  }, []);

  return (
    <div
      ref={baseRef}
      className="joystick"
      data-testid="joystick"
      data-x="0"
      data-y="0"
      onContextMenu={(e) => e.preventDefault()}
      role="application"
      aria-label="Joystick: up forward, down back, left and right turn"
    >
      <span className="joy-ring" />
      <span className="joy-cross" />
      <div ref={knobRef} className="joy-knob" />
    </div>
  );
}
