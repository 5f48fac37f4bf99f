// Credentials: the API key or JWT the user pasted (localStorage), how it goes on a request
// (X-API-Key for fms_ keys, else Authorization: Bearer) or a WebSocket URL (?access_token=),
// and the roles (viewer < operator < admin). /api-docs/init.js repeats the header rule in plain JS.

import type { Role } from './types';

// `GET /api/whoami`'s answer (method `open` when the server has authentication off: everybody
// is an anonymous admin), from the OpenAPI document.
export type { Principal, Role } from './types';

/** `GET /api/info` (public; not in the OpenAPI document). */
export interface ServerInfo {
  version: string;
  auth_required: boolean;
}

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** Whether `have` may do what needs `need`. */
export function hasRole(have: Role | null | undefined, need: Role): boolean {
  return !!have && have in RANK && RANK[have] >= RANK[need];
}

/** Where the dashboard and the API docs page keep the credential. */
export const CREDENTIAL_KEY = 'fms.credential';
/** Where the phone page keeps its operator token (JWT). */
export const PHONE_TOKEN_KEY = 'fms.phone.token';

/** API keys look like fms_<id>_<secret>; anything else is sent as a bearer token (JWT). */
export const isApiKey = (cred: string) => cred.startsWith('fms_');

/** The headers that carry `cred` (none for an empty one). */
export function authHeaders(cred: string | null | undefined): Record<string, string> {
  const c = (cred ?? '').trim();
  if (!c) return {};
  return isApiKey(c) ? { 'X-API-Key': c } : { Authorization: `Bearer ${c}` };
}

/** `path` with `access_token=<cred>` added to its query (browsers cannot set WebSocket headers). */
export function withAccessToken(path: string, cred: string | null | undefined): string {
  const c = (cred ?? '').trim();
  if (!c) return path;
  return `${path}${path.includes('?') ? '&' : '?'}access_token=${encodeURIComponent(c)}`;
}

/** A pasted credential, tidied: trimmed, a leading "Bearer " or "X-API-Key:" dropped. */
export function cleanCredential(text: string): string {
  return text
    .trim()
    .replace(/^(bearer\s+|x-api-key\s*:\s*)/i, '')
    .trim();
}

/** The claims of a JWT, read without checking its signature (for display only), or null. */
export function jwtClaims(token: string): { sub?: string; role?: string; exp?: number } | null {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    const v = JSON.parse(json) as unknown;
    return v && typeof v === 'object' ? (v as { sub?: string; role?: string; exp?: number }) : null;
  } catch {
    return null;
  }
}

/** localStorage that tolerates being unavailable (private mode, blocked storage). */
export const storage = {
  get(key: string): string | null {
    try {
      return localStorage.getItem(key);
    } catch {
      return null;
    }
  },
  set(key: string, value: string): void {
    try {
      localStorage.setItem(key, value);
    } catch {
      /* kept in memory only */
    }
  },
  remove(key: string): void {
    try {
      localStorage.removeItem(key);
    } catch {
      /* nothing stored */
    }
  },
};
