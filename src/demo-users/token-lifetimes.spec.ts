/**
 * Token lifetimes of the users file (docs/protocol.md "Token lifecycle"; README, "Token lifetimes"):
 * an optional per-user `tokenTtlMs`, validated strictly, and the time-windowed tokens
 * `<token>~<issuedAt>` it gives the user: valid from issuedAt (a little clock skew allowed) until
 * issuedAt + tokenTtlMs, with that expiresAt; the user's own token never expires.
 */
import { makeUser } from '../../test/support/factories';
import { loadUsers, MAX_ISSUE_SKEW_MS, MAX_TOKEN_TTL_MS, MIN_TOKEN_TTL_MS, parseUsers, UserDirectory, UsersFileError, windowedToken } from './users';

const NOW = 1_800_000_000_000;
const TTL = 1500;

describe('tokenTtlMs in a users file', () => {
  const ann = makeUser('ann', { token: 'ann-token', userId: 'a1' });

  it('is optional and kept when given', () => {
    expect(parseUsers([ann], 'f')).toEqual([ann]);
    expect(parseUsers([ann], 'f')[0]).not.toHaveProperty('tokenTtlMs');
    expect(parseUsers([{ ...ann, tokenTtlMs: TTL }], 'f')).toEqual([{ ...ann, tokenTtlMs: TTL }]);
    expect(parseUsers([{ ...ann, tokenTtlMs: MIN_TOKEN_TTL_MS }, { ...makeUser('b'), tokenTtlMs: MAX_TOKEN_TTL_MS }], 'f')).toHaveLength(2);
  });

  it.each([
    ['a string', '1500'],
    ['a fraction', 1500.5],
    ['zero', 0],
    ['below the minimum', MIN_TOKEN_TTL_MS - 1],
    ['above the maximum', MAX_TOKEN_TTL_MS + 1],
    ['null', null],
  ])('is refused when it is %s, naming the entry but never its token', (_what, tokenTtlMs) => {
    const data = [{ ...ann, tokenTtlMs }];
    expect(() => parseUsers(data, 'users.json')).toThrow(UsersFileError);
    expect(() => parseUsers(data, 'users.json')).toThrow(/entry \[0\] \(userId "a1"\): "tokenTtlMs" must be an integer from 100 to 2592000000 \(ms\)/);
    expect(() => parseUsers(data, 'users.json')).not.toThrow(/ann-token/);
  });

  it('the bundled demo users have two-minute windowed tokens', () => {
    expect(loadUsers().map((u) => u.tokenTtlMs)).toEqual([120_000, 120_000, 120_000, 120_000]);
  });
});

describe('UserDirectory.grant', () => {
  const directory = new UserDirectory([
    { ...makeUser('ann', { token: 'ann-token', userId: 'a1' }), tokenTtlMs: TTL },
    makeUser('bob', { token: 'bob-token', userId: 'b1' }),
    // A token that itself looks windowed: an exact match always wins.
    makeUser('odd', { token: 'ann-token~42', userId: 'o1' }),
  ]);

  it("a user's own token: its profile, no expiry", () => {
    expect(directory.grant('ann-token', NOW)).toEqual({ profile: expect.objectContaining({ userId: 'a1' }) });
    expect(directory.grant('bob-token', NOW)).toEqual({ profile: expect.objectContaining({ userId: 'b1' }) });
    expect(directory.grant('ann-token~42', NOW)?.profile.userId).toBe('o1');
  });

  it('a windowed token: valid from issuedAt until issuedAt + tokenTtlMs, with that expiresAt', () => {
    const token = windowedToken('ann-token', NOW);
    expect(token).toBe(`ann-token~${NOW}`);
    expect(directory.grant(token, NOW)).toEqual({ profile: expect.objectContaining({ userId: 'a1' }), expiresAt: NOW + TTL });
    expect(directory.grant(token, NOW + TTL - 1)?.expiresAt).toBe(NOW + TTL);
    expect(directory.grant(token, NOW + TTL)).toBeUndefined();
    expect(directory.check(token, NOW + TTL)).toBeUndefined();
    expect(directory.check(token, NOW)?.userId).toBe('a1');
  });

  it('allows MAX_ISSUE_SKEW_MS of clock skew for a token issued ahead, no more', () => {
    expect(directory.grant(windowedToken('ann-token', NOW + MAX_ISSUE_SKEW_MS), NOW)).toBeDefined();
    expect(directory.grant(windowedToken('ann-token', NOW + MAX_ISSUE_SKEW_MS + 1), NOW)).toBeUndefined();
  });

  it.each([
    ['of a user without tokenTtlMs', windowedToken('bob-token', NOW)],
    ['of an unknown token', windowedToken('nobody', NOW)],
    ['with no base token', `~${NOW}`],
    ['with a time that is not digits', 'ann-token~soon'],
    ['with a signed time', `ann-token~-${NOW}`],
    ['with an empty time', 'ann-token~'],
    ['with too many digits', 'ann-token~12345678901234567'],
  ])('refuses a windowed token %s', (_what, token) => {
    expect(directory.grant(token, NOW)).toBeUndefined();
  });
});
