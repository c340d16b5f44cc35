import type { IncomingMessage } from 'node:http';
import { loadConfig } from '../config/gateway-config';
import { DrainState } from '../lifecycle/drain-state';
import { Admission, type ConnectionPool } from './admission';

const request = (headers: Record<string, string> = {}, url = '/ws') => ({ headers, url }) as unknown as IncomingMessage;

/** A pool that stays at `open` connections (each one that gives way is replaced), `idle` of which can give way. */
function pool(open: number, idle = 0): ConnectionPool & { madeRoom: number } {
  const state = {
    madeRoom: 0,
    get openCount() {
      return open;
    },
    makeRoom() {
      if (idle === 0) return false;
      idle--;
      state.madeRoom++;
      return true;
    },
  };
  return state;
}

function admissionWith(env: Record<string, string>, attached: ConnectionPool = pool(0), drain = new DrainState()): Admission {
  const admission = new Admission(loadConfig(env), drain);
  admission.attach(attached);
  return admission;
}

describe('Admission', () => {
  it('lets any origin through when ALLOWED_ORIGINS is unset', () => {
    expect(admissionWith({}).check(request({ origin: 'https://anything.example' })).ok).toBe(true);
  });

  it('refuses a foreign Origin with 403 and accepts listed ones and requests without Origin', () => {
    const admission = admissionWith({ ALLOWED_ORIGINS: 'https://a.example, http://b.example:8080' });
    expect(admission.check(request({ origin: 'https://evil.example' }))).toMatchObject({ ok: false, status: 403 });
    expect(admission.check(request({ origin: 'https://a.example/' }))).toMatchObject({ ok: false, status: 403 });
    expect(admission.check(request({ origin: 'http://b.example:8080' })).ok).toBe(true);
    expect(admission.check(request()).ok).toBe(true);
  });

  it('answers 503 when full or draining', () => {
    expect(admissionWith({ MAX_CONNECTIONS: '2' }, pool(1)).check(request()).ok).toBe(true);
    expect(admissionWith({ MAX_CONNECTIONS: '2' }, pool(2)).check(request())).toMatchObject({ ok: false, status: 503 });
    const drain = new DrainState();
    const draining = admissionWith({ MAX_CONNECTIONS: '2' }, pool(0), drain);
    expect(draining.check(request()).ok).toBe(true);
    drain.start();
    expect(draining.check(request())).toMatchObject({ ok: false, status: 503 });
  });

  it('checks the origin before capacity', () => {
    const admission = admissionWith({ MAX_CONNECTIONS: '1', ALLOWED_ORIGINS: 'https://a.example' }, pool(5));
    expect(admission.check(request({ origin: 'https://evil.example' }))).toMatchObject({ status: 403 });
  });

  describe('when full, token-less connections give way to logins', () => {
    it('makes room for an upgrade that offers a token in the header or a subprotocol', () => {
      const full = pool(2, 2);
      const admission = admissionWith({ MAX_CONNECTIONS: '2' }, full);
      expect(admission.check(request({ authtoken: 'secret' })).ok).toBe(true);
      expect(admission.check(request({ 'sec-websocket-protocol': 'mpgp.v1, authToken.c2VjcmV0' })).ok).toBe(true);
      expect(full.madeRoom).toBe(2);
    });

    it('refuses with 503 when no token-less connection can give way', () => {
      const full = pool(2, 0);
      expect(admissionWith({ MAX_CONNECTIONS: '2' }, full).check(request({ authtoken: 'secret' }))).toMatchObject({ ok: false, status: 503 });
    });

    it('never makes room for an upgrade without a token, or with a malformed one', () => {
      const full = pool(2, 2);
      const admission = admissionWith({ MAX_CONNECTIONS: '2' }, full);
      expect(admission.check(request())).toMatchObject({ ok: false, status: 503 });
      expect(admission.check(request({ 'sec-websocket-protocol': 'authToken.!!' }))).toMatchObject({ ok: false, status: 503 });
      expect(full.madeRoom).toBe(0);
    });

    it('counts a query token only when ALLOW_QUERY_TOKEN is on', () => {
      const off = pool(1, 1);
      expect(admissionWith({ MAX_CONNECTIONS: '1' }, off).check(request({}, '/ws?authToken=x'))).toMatchObject({ status: 503 });
      const on = pool(1, 1);
      expect(admissionWith({ MAX_CONNECTIONS: '1', ALLOW_QUERY_TOKEN: 'true' }, on).check(request({}, '/ws?authToken=x')).ok).toBe(true);
    });
  });
});
