// Renders the toast list (bottom right, polite live region).

import { useObservable } from './hooks';
import { toasts } from './toasts';

export function Toasts() {
  const list = useObservable(toasts);
  return (
    <div className="toasts" aria-live="polite">
      {list.map((t) => (
        <div key={t.id} className={`toast toast-${t.level}`}>
          {t.text}
        </div>
      ))}
    </div>
  );
}
