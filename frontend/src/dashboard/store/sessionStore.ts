// The session's state: server info, who is signed in, the credential in use, and what the role
// may do. Actions (boot, sign in, sign out) are in ../session.ts.

import { CREDENTIAL_KEY, hasRole, storage, type Principal, type Role, type ServerInfo } from '../../shared/auth';
import { Observable } from '../../shared/observable';
import { toast } from '../../shared/toasts';

export type SessionPhase = 'loading' | 'signin' | 'checking' | 'ready';

export interface SessionState {
  phase: SessionPhase;
  /** null until /api/info answered. */
  info: ServerInfo | null;
  principal: Principal | null;
  /** Shown on the sign-in panel (why it is shown, or why the last attempt failed). */
  message: string | null;
}

export const session = new Observable<SessionState>({ phase: 'loading', info: null, principal: null, message: null });

/** The credential in use: kept in memory too, so "don't remember" still works in this tab. */
export const cred: { current: string | null } = { current: storage.get(CREDENTIAL_KEY) };

/** The credential for the WebSocket's access_token (null while the API is open). */
export function wsCredential(): string | null {
  return session.get().info?.auth_required ? cred.current : null;
}

/** Whether the signed-in user has `role` (everybody is an admin while the API is open). */
export function can(role: Role): boolean {
  return hasRole(session.get().principal?.role, role);
}

/** A toast saying an action needs a role, naming who is signed in. */
export function roleToast(what: string, role: Role): void {
  const p = session.get().principal;
  toast(`${what} needs the ${role} role — signed in as ${p ? `${p.name} (${p.role})` : 'nobody'}`, 'error');
}
