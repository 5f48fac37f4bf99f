// Unit tests of the credential rules: which header a key or token goes in, the WebSocket query,
// role order, pasted-text cleanup and reading a JWT's claims.
import { describe, expect, it } from 'vitest';
import { authHeaders, cleanCredential, hasRole, jwtClaims, withAccessToken } from './auth';

describe('credentials', () => {
  it('sends fms_ keys as X-API-Key and anything else as a bearer token', () => {
    expect(authHeaders('fms_abc_def')).toEqual({ 'X-API-Key': 'fms_abc_def' });
    expect(authHeaders(' eyJ.a.b ')).toEqual({ Authorization: 'Bearer eyJ.a.b' });
    expect(authHeaders('')).toEqual({});
    expect(authHeaders(null)).toEqual({});
  });

  it('adds access_token to a WebSocket path, encoded', () => {
    expect(withAccessToken('/ws?batch_ms=100', 'fms_a_b')).toBe('/ws?batch_ms=100&access_token=fms_a_b');
    expect(withAccessToken('/ws/teleop', 'a+b/c=')).toBe('/ws/teleop?access_token=a%2Bb%2Fc%3D');
    expect(withAccessToken('/ws', null)).toBe('/ws');
  });

  it('orders roles viewer < operator < admin', () => {
    expect(hasRole('admin', 'operator')).toBe(true);
    expect(hasRole('operator', 'operator')).toBe(true);
    expect(hasRole('operator', 'admin')).toBe(false);
    expect(hasRole('viewer', 'operator')).toBe(false);
    expect(hasRole(null, 'viewer')).toBe(false);
  });

  it('tidies pasted credentials', () => {
    expect(cleanCredential('  Bearer eyJ.a.b \n')).toBe('eyJ.a.b');
    expect(cleanCredential('X-API-Key: fms_x_y')).toBe('fms_x_y');
    expect(cleanCredential('fms_x_y')).toBe('fms_x_y');
  });

  it('reads a JWT payload (base64url) without verifying it', () => {
    const payload = Buffer.from(JSON.stringify({ sub: 'olga-op', role: 'operator', exp: 2000000000 })).toString('base64url');
    expect(jwtClaims(`eyJhbGciOiJIUzI1NiJ9.${payload}.sig`)).toEqual({ sub: 'olga-op', role: 'operator', exp: 2000000000 });
    expect(jwtClaims('fms_not_a_jwt')).toBeNull();
    expect(jwtClaims('a.!!!.c')).toBeNull();
  });
});
