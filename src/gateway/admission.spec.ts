import type { IncomingMessage } from 'node:http';
import { loadConfig } from '../config/gateway-config';
import { Admission } from './admission';

const request = (headers: Record<string, string> = {}) => ({ headers }) as unknown as IncomingMessage;

describe('Admission', () => {
  it('lets any origin through when ALLOWED_ORIGINS is unset', () => {
    const admission = new Admission(loadConfig({}));
    expect(admission.check(request({ origin: 'https://anything.example' }), 0).ok).toBe(true);
  });

  it('refuses a foreign Origin with 403 and accepts listed ones and requests without Origin', () => {
    const admission = new Admission(loadConfig({ ALLOWED_ORIGINS: 'https://a.example, http://b.example:8080' }));
    expect(admission.check(request({ origin: 'https://evil.example' }), 0)).toMatchObject({ ok: false, status: 403 });
    expect(admission.check(request({ origin: 'https://a.example/' }), 0)).toMatchObject({ ok: false, status: 403 });
    expect(admission.check(request({ origin: 'http://b.example:8080' }), 0).ok).toBe(true);
    expect(admission.check(request(), 0).ok).toBe(true);
  });

  it('answers 503 when full or draining', () => {
    const admission = new Admission(loadConfig({ MAX_CONNECTIONS: '2' }));
    expect(admission.check(request(), 1).ok).toBe(true);
    expect(admission.check(request(), 2)).toMatchObject({ ok: false, status: 503 });
    admission.draining = true;
    expect(admission.check(request(), 0)).toMatchObject({ ok: false, status: 503 });
  });

  it('checks the origin before capacity', () => {
    const admission = new Admission(loadConfig({ MAX_CONNECTIONS: '1', ALLOWED_ORIGINS: 'https://a.example' }));
    expect(admission.check(request({ origin: 'https://evil.example' }), 5)).toMatchObject({ status: 403 });
  });
});
