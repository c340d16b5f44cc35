import { classifyReply } from './http-token-verifier';

const body = (value: unknown) => JSON.stringify(value);
const success = (serverData: unknown) => body({ type: 'CHECK_TOKEN', status: 'SUCCESS', serverData });

describe('classifyReply', () => {
  it('accepts 200 SUCCESS with a full profile', () => {
    const profile = {
      userId: 'u1',
      nickname: 'Ann',
      avatar: 'http://a/1.png',
      language: 'en',
      status: 'hi',
      lastOnline: '1700000000000',
      registerDate: '1600000000000',
    };
    expect(classifyReply(200, success({ ...profile, extra: 'ignored' }))).toEqual({ outcome: 'valid', profile });
  });

  it('turns missing or non-string profile fields into ""', () => {
    expect(classifyReply(200, success({ userId: 'u1', nickname: 42, language: null }))).toEqual({
      outcome: 'valid',
      profile: { userId: 'u1', nickname: '', avatar: '', language: '', status: '', lastOnline: '', registerDate: '' },
    });
  });

  it.each([
    ['without a userId', { nickname: 'Ann' }],
    ['with an empty userId', { userId: '' }],
    ['with a numeric userId', { userId: 42 }],
    ['with an object userId', { userId: { id: 'u1' } }],
  ])('treats SUCCESS %s as unavailable', (_case, serverData) => {
    expect(classifyReply(200, success(serverData))).toMatchObject({ outcome: 'unavailable' });
  });

  it.each([
    ['no serverData', body({ type: 'CHECK_TOKEN', status: 'SUCCESS' })],
    ['an array serverData', success([{ userId: 'u1' }])],
    ['a string serverData', success('u1')],
  ])('treats SUCCESS with %s as unavailable', (_case, reply) => {
    expect(classifyReply(200, reply)).toMatchObject({ outcome: 'unavailable' });
  });

  it('treats 200 ERROR as an invalid token, whatever its error', () => {
    expect(classifyReply(200, body({ type: 'CHECK_TOKEN', status: 'ERROR' }))).toEqual({ outcome: 'invalid' });
    expect(classifyReply(200, body({ status: 'ERROR', error: { errorCode: 'x', message: 'y' } }))).toEqual({ outcome: 'invalid' });
  });

  it.each([401, 403, 404])('treats HTTP %i as an invalid token, whatever the body', (status) => {
    expect(classifyReply(status, 'not json at all')).toEqual({ outcome: 'invalid' });
    expect(classifyReply(status, success({ userId: 'u1' }))).toEqual({ outcome: 'invalid' });
  });

  it.each([500, 502, 503, 302, 301, 418, 400, 429, 201, 204])('treats HTTP %i as unavailable, whatever the body', (status) => {
    const check = classifyReply(status, success({ userId: 'u1' }));
    expect(check).toMatchObject({ outcome: 'unavailable' });
    expect(check).toHaveProperty('reason', `HTTP ${status}`);
  });

  it.each([
    ['not JSON', 'Internal <b>error</b>'],
    ['empty', ''],
    ['a JSON array', body([{ status: 'SUCCESS', serverData: { userId: 'u1' } }])],
    ['JSON null', 'null'],
    ['a JSON string', body('SUCCESS')],
    ['a JSON number', '200'],
    ['an object without status', body({ type: 'CHECK_TOKEN', serverData: { userId: 'u1' } })],
    ['an object with another status', body({ status: 'OK', serverData: { userId: 'u1' } })],
  ])('treats a 200 body that is %s as unavailable', (_case, reply) => {
    expect(classifyReply(200, reply)).toMatchObject({ outcome: 'unavailable' });
  });

  it('never puts the body in the reason', () => {
    const check = classifyReply(200, 'secret-token-echo');
    expect(check.outcome).toBe('unavailable');
    expect(JSON.stringify(check)).not.toContain('secret-token-echo');
  });
});
