/**
 * The reference authorization server and token lifetimes: a time-windowed token of a user with
 * `tokenTtlMs` is answered SUCCESS with `serverData.expiresAt` (Unix ms, a decimal string) while
 * it is valid, ERROR once it has expired; a user's own token has no expiresAt.
 */
import { makeUser } from '../../test/support/factories';
import { UserDirectory } from '../demo-users/users';
import { answerCheckToken, startAuthServer, type AuthServerHandle } from './auth-server';

const ann = { ...makeUser('ann', { token: 'ann-token', userId: 'a1' }), tokenTtlMs: 1500 };
const NOW = 1_800_000_000_000;

describe('answerCheckToken with token lifetimes', () => {
  const directory = new UserDirectory([ann]);
  const ask = (authToken: string, now: number) => answerCheckToken(directory, { type: 'CHECK_TOKEN', authToken }, now);

  it('SUCCESS with expiresAt for a valid windowed token', () => {
    expect(ask(`ann-token~${NOW}`, NOW + 10)).toEqual({
      status: 200,
      body: { type: 'CHECK_TOKEN', status: 'SUCCESS', serverData: { ...ann.profile, expiresAt: String(NOW + 1500) } },
    });
  });

  it('ERROR (token not found) once it has expired', () => {
    expect(ask(`ann-token~${NOW}`, NOW + 1500)).toEqual({
      status: 200,
      body: { type: 'CHECK_TOKEN', status: 'ERROR', error: { errorCode: '1', message: 'token not found' } },
    });
  });

  it('no expiresAt for the user\'s own token', () => {
    expect(ask('ann-token', NOW).body).toEqual({ type: 'CHECK_TOKEN', status: 'SUCCESS', serverData: ann.profile });
  });
});

describe('the reference authorization server over HTTP', () => {
  let server: AuthServerHandle;
  beforeAll(async () => {
    server = await startAuthServer({ users: [ann] });
  });
  afterAll(() => server.close());

  it('answers a fresh windowed token with its expiresAt, on the real clock', async () => {
    const issuedAt = Date.now();
    const res = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'CHECK_TOKEN', authToken: `ann-token~${issuedAt}` }) });
    expect(await res.json()).toEqual({ type: 'CHECK_TOKEN', status: 'SUCCESS', serverData: { ...ann.profile, expiresAt: String(issuedAt + 1500) } });
    const old = await fetch(server.url, { method: 'POST', body: JSON.stringify({ type: 'CHECK_TOKEN', authToken: `ann-token~${issuedAt - 1500}` }) });
    expect(((await old.json()) as { status: string }).status).toBe('ERROR');
  });
});
