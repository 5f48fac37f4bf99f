// REST helper: JSON requests with a timeout and the caller's credential, errors from the server's
// {"error":{code,message}} envelope; 401s are reported to whoever signs the user in.

import { authHeaders } from './auth';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Seconds from a 429's Retry-After header. */
    readonly retryAfterS: number | null = null,
  ) {
    super(message);
  }
}

let credential: () => string | null = () => null;
let onUnauthorized: (usedCredential: string | null, e: ApiError) => void = () => {};

/** Where requests take their credential from (the signed-in key or token). */
export function setCredentialSource(fn: () => string | null): void {
  credential = fn;
}

/** Called on every 401, with the credential the refused request carried. */
export function setUnauthorizedHandler(fn: (usedCredential: string | null, e: ApiError) => void): void {
  onUnauthorized = fn;
}

export interface RequestOptions {
  timeoutMs?: number;
  /** Use this credential instead of the signed-in one (e.g. to check a key before keeping it). */
  credential?: string | null;
}

async function send(method: string, path: string, body: unknown, opts: RequestOptions): Promise<{ res: Response; cred: string | null }> {
  const cred = opts.credential !== undefined ? opts.credential : credential();
  const headers: Record<string, string> = { ...authHeaders(cred) };
  const init: RequestInit = { method, signal: AbortSignal.timeout(opts.timeoutMs ?? 8000), headers };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  return { res: await fetch(path, init), cred };
}

function failure(res: Response, data: unknown, cred: string | null, reportUnauthorized: boolean): ApiError {
  const e = (data as { error?: { code?: string; message?: string } } | null)?.error;
  const retry = Number(res.headers.get('retry-after'));
  const err = new ApiError(
    res.status,
    e?.code ?? `HTTP_${res.status}`,
    e?.message ?? `HTTP ${res.status} ${res.statusText}`,
    Number.isFinite(retry) && res.headers.has('retry-after') ? retry : null,
  );
  if (res.status === 401 && reportUnauthorized) onUnauthorized(cred, err);
  return err;
}

export async function api<T>(method: string, path: string, body?: unknown, opts: RequestOptions = {}): Promise<T> {
  const { res, cred } = await send(method, path, body, opts);
  const text = await res.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  if (!res.ok) throw failure(res, data, cred, opts.credential === undefined);
  return data as T;
}

/** A binary resource (the map image) fetched with the credential. */
export async function getBlob(path: string, opts: RequestOptions = {}): Promise<Blob> {
  const { res, cred } = await send('GET', path, undefined, { timeoutMs: 15000, ...opts });
  if (!res.ok) {
    let data: unknown = null;
    try {
      data = JSON.parse(await res.text());
    } catch {
      /* not JSON */
    }
    throw failure(res, data, cred, opts.credential === undefined);
  }
  return res.blob();
}

export const get = <T>(path: string, opts?: RequestOptions) => api<T>('GET', path, undefined, opts);
export const post = <T>(path: string, body?: unknown) => api<T>('POST', path, body);

export function errorText(e: unknown): string {
  if (e instanceof ApiError) return `${e.code}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}

/** ws:// or wss:// URL for a path on this page's host. */
export function wsUrl(path: string, loc: { protocol: string; host: string } = location): string {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}${path}`;
}
