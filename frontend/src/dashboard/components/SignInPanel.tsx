// The sign-in panel: paste an API key (fms_…) or a JWT; checked with /api/whoami, remembered in
// this browser's localStorage unless unticked.

import { useState } from 'react';
import { useObservable } from '../../shared/hooks';
import { signIn } from '../session';
import { session } from '../store/sessionStore';

export function SignInPanel() {
  const { phase, message, info } = useObservable(session);
  const [text, setText] = useState('');
  const [remember, setRemember] = useState(true);
  const busy = phase === 'checking';
  if (phase === 'loading') {
    return (
      <main className="signin-wrap">
        <div className="panel signin" data-testid="loading">
          <p className="muted">{message ?? 'Connecting to the server…'}</p>
        </div>
      </main>
    );
  }
  return (
    <main className="signin-wrap">
      <form
        className="panel signin"
        data-testid="signin"
        onSubmit={(e) => {
          e.preventDefault();
          void signIn(text, remember).then((ok) => ok && setText(''));
        }}
      >
        <h2>Sign in</h2>
        <p className="muted">
          This fleet server requires authentication. Paste an <b>API key</b> (<code>fms_…</code>, from{' '}
          <code>fms_server keys create</code> or an admin) or a <b>token</b> (JWT, from <code>fms_server token</code>).
        </p>
        <label className="signin-field">
          <span>API key or token</span>
          <input
            type="password"
            autoComplete="off"
            spellCheck={false}
            autoFocus
            placeholder="fms_… or eyJ…"
            value={text}
            onChange={(e) => setText(e.target.value)}
            data-testid="signin-input"
          />
        </label>
        <label className="signin-remember">
          <input type="checkbox" checked={remember} onChange={(e) => setRemember(e.target.checked)} /> Remember on this
          browser (also used by the API explorer)
        </label>
        {message && (
          <p className="signin-error" role="alert" data-testid="signin-message">
            {message}
          </p>
        )}
        <div className="signin-actions">
          <span className="muted small">
            Roles: <b>viewer</b> reads · <b>operator</b> sends tasks, cancels, e-stops robots · <b>admin</b> stops the fleet
          </span>
          <button type="submit" className="btn btn-primary" disabled={busy || !text.trim()} data-testid="signin-submit">
            {busy ? 'Checking…' : 'Sign in'}
          </button>
        </div>
        {info && <p className="muted small signin-foot">fms server {info.version}</p>}
      </form>
    </main>
  );
}
