// Who uses the dashboard: the server's /api/info (is the API open?), the sign-in with an API key
// or JWT (checked by /api/whoami, remembered in localStorage), sign-out, and what the role may do.
// The fleet controller runs only while the session is ready.

import { ApiError, errorText, get, setCredentialSource, setUnauthorizedHandler } from '../shared/api';
import { CREDENTIAL_KEY, cleanCredential, storage, type Principal, type ServerInfo } from '../shared/auth';
import { fleet } from './net/controller';
import { cred, session } from './store/sessionStore';

// nothing is sent to an open server (a remembered key stays in this browser)
setCredentialSource(() => (session.get().info?.auth_required === false ? null : cred.current));
setUnauthorizedHandler((used) => {
  const s = session.get();
  // a late answer to a request made with an older credential changes nothing
  if (s.phase !== 'ready' || !s.info?.auth_required || used !== cred.current) return;
  signOut('The server no longer accepts your key or token (401): it may have been revoked or have expired. Sign in again.');
});

async function loadInfo(): Promise<ServerInfo> {
  for (let delay = 500; ; delay = Math.min(delay * 2, 5000)) {
    try {
      return await get<ServerInfo>('/api/info', { credential: null, timeoutMs: 4000 });
    } catch (e) {
      // a server from before authentication has no /api/info: it is open
      if (e instanceof ApiError && e.status === 404) return { version: 'unknown', auth_required: false };
      session.update({ message: `Cannot reach the server (${errorText(e)}); retrying…` });
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** Starts the dashboard: asks the server whether it needs a sign-in, then signs in or runs open. */
export async function boot(): Promise<void> {
  const info = await loadInfo();
  session.update({ info, message: null });
  if (!info.auth_required) {
    const principal = await get<Principal>('/api/whoami', { credential: null }).catch(
      (): Principal => ({ name: 'anonymous', role: 'admin', method: 'open' }),
    );
    ready(principal);
    return;
  }
  if (cred.current) await signIn(cred.current, storage.get(CREDENTIAL_KEY) === cred.current);
  else session.update({ phase: 'signin' });
}

/** Checks a pasted key or token with /api/whoami; on success keeps it and starts the dashboard. */
export async function signIn(text: string, remember: boolean): Promise<boolean> {
  const c = cleanCredential(text);
  if (!c) {
    session.update({ phase: 'signin', message: 'Paste an API key (fms_…) or a token first.' });
    return false;
  }
  session.update({ phase: 'checking', message: null });
  try {
    const principal = await get<Principal>('/api/whoami', { credential: c });
    cred.current = c;
    if (remember) storage.set(CREDENTIAL_KEY, c);
    else storage.remove(CREDENTIAL_KEY);
    ready(principal);
    return true;
  } catch (e) {
    const refused = e instanceof ApiError && e.status === 401;
    if (refused && storage.get(CREDENTIAL_KEY) === c) storage.remove(CREDENTIAL_KEY);
    if (cred.current === c) cred.current = null;
    session.update({
      phase: 'signin',
      principal: null,
      message: refused ? `The server refused that key or token: ${e.message}` : `Sign-in failed: ${errorText(e)}`,
    });
    return false;
  }
}

function ready(principal: Principal): void {
  session.update({ phase: 'ready', principal, message: null });
  fleet.start();
}

/** Forgets the credential, stops the live feed and shows the sign-in panel. */
export function signOut(message: string | null = null): void {
  fleet.stop();
  cred.current = null;
  storage.remove(CREDENTIAL_KEY);
  session.update({ phase: 'signin', principal: null, message });
}
