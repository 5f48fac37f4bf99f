// Unit tests of the REST helper: the credential goes on every request, errors keep the server's
// code and Retry-After, and a 401 reports the credential that was refused.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { api, ApiError, get, setCredentialSource, setUnauthorizedHandler } from './api';

function reply(status: number, body: unknown, headers: Record<string, string> = {}) {
  return vi.fn(async (_url: string, _init: RequestInit) => new Response(JSON.stringify(body), { status, headers }));
}

afterEach(() => {
  vi.unstubAllGlobals();
  setCredentialSource(() => null);
  setUnauthorizedHandler(() => {});
});

describe('api', () => {
  it('sends the signed-in credential, or the one given for this call', async () => {
    const f = reply(200, { ok: 1 });
    vi.stubGlobal('fetch', f);
    setCredentialSource(() => 'fms_k_s');
    await get('/api/robots');
    expect((f.mock.calls[0][1].headers as Record<string, string>)['X-API-Key']).toBe('fms_k_s');
    await get('/api/whoami', { credential: 'eyJ.x.y' });
    expect((f.mock.calls[1][1].headers as Record<string, string>).Authorization).toBe('Bearer eyJ.x.y');
    await get('/api/info', { credential: null });
    expect(f.mock.calls[2][1].headers).toEqual({});
  });

  it('reports a 401 with the refused credential, and keeps 403 and 429 details', async () => {
    const refused: (string | null)[] = [];
    setUnauthorizedHandler((c) => refused.push(c));
    setCredentialSource(() => 'fms_old_key');
    vi.stubGlobal('fetch', reply(401, { error: { code: 'UNAUTHORIZED', message: 'invalid credentials' } }));
    await expect(get('/api/robots')).rejects.toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
    expect(refused).toEqual(['fms_old_key']);
    // a credential being tried (sign-in) is not the session's: no report
    await expect(get('/api/whoami', { credential: 'fms_try' })).rejects.toBeInstanceOf(ApiError);
    expect(refused).toEqual(['fms_old_key']);

    vi.stubGlobal('fetch', reply(403, { error: { code: 'FORBIDDEN', message: 'this needs the admin role; you are viewer' } }));
    await expect(api('POST', '/api/fleet/emergency-stop')).rejects.toMatchObject({ status: 403, code: 'FORBIDDEN' });
    vi.stubGlobal('fetch', reply(429, { error: { code: 'RATE_LIMITED', message: 'slow down' } }, { 'retry-after': '17' }));
    await expect(api('POST', '/api/tasks', {})).rejects.toMatchObject({ status: 429, retryAfterS: 17 });
  });
});
