/**
 * The users file format (strict validation, messages that never quote a token), the bundled demo
 * users and the token -> profile directory, shared by the gateway's demo verifier and the
 * reference authorization server.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUNDLED_ALICE as ALICE } from '../../test/support/factories';
import { PROFILE_FIELDS } from '../protocol/protocol';
import { DemoUser, loadUsers, parseUsers, UserDirectory, UsersFileError } from './users';

describe('users', () => {
  const valid = (): DemoUser[] => [
    { token: 'alice-token', profile: { ...ALICE } },
    { token: 'bob-token', profile: { ...ALICE, userId: '2', nickname: 'bob' } },
  ];

  it('loads the bundled demo users', () => {
    const users = loadUsers();
    expect(users.map((u) => u.profile.userId)).toEqual(['1', '2', '3', '4']);
    expect(users.map((u) => u.profile.nickname)).toEqual(['alice', 'bob', 'carol', 'dave']);
    expect(users.map((u) => u.token)).toEqual(['alice-token', 'bob-token', 'carol-token', 'dave-token']);
    expect(users[0].profile).toEqual(ALICE);
    for (const user of users) expect(Object.keys(user.profile).sort()).toEqual([...PROFILE_FIELDS].sort());
  });

  it('accepts valid data and several tokens for one user', () => {
    const data = [...valid(), { token: 'alice-second-token', profile: { ...ALICE } }];
    expect(parseUsers(data, 'test')).toEqual(data);
  });

  it.each<[string, (data: Record<string, unknown>[]) => unknown, RegExp]>([
    ['not an array', () => ({ users: [] }), /expected a JSON array .* got an object/],
    ['an entry not an object', (d) => [d[0], 'x'], /entry \[1\] must be an object \{token, profile\}, got a string/],
    ['a missing token', (d) => [{ profile: d[0].profile }], /entry \[0\] \(userId "1"\): "token" is missing/],
    ['an empty token', (d) => [{ ...d[0], token: '' }], /entry \[0\] \(userId "1"\): "token" must not be empty/],
    ['a token with a control character', (d) => [{ ...d[0], token: 'a\nb' }], /"token" contains a control character/],
    ['a token with surrounding spaces', (d) => [{ ...d[0], token: ' t ' }], /"token" has leading or trailing whitespace/],
    ['a duplicate token', (d) => [d[0], { ...d[1], token: d[0].token }], /entry \[1\] \(userId "2"\): "token" duplicates the token of entry \[0\]/],
    ['an unknown entry key', (d) => [{ ...d[0], extra: 1 }], /entry \[0\] \(userId "1"\) has an unknown key "extra"/],
    ['a missing profile', (d) => [{ token: d[0].token }], /entry \[0\]: "profile" is missing/],
    ['a numeric token', (d) => [{ ...d[0], token: 7 }], /entry \[0\] \(userId "1"\): "token" must be a string, got a number/],
    ['a profile array', (d) => [{ ...d[0], profile: [] }], /entry \[0\]: "profile" must be an object, got an array/],
    ['a missing profile field', (d) => [{ ...d[0], profile: { ...ALICE, status: undefined } }], /"profile.status" is missing/],
    ['a non-string profile field', (d) => [d[0], { ...d[1], profile: { ...ALICE, userId: '2', lastOnline: 5 } }], /entry \[1\] \(userId "2"\): "profile.lastOnline" must be a string, got a number/],
    ['an unknown profile key', (d) => [{ ...d[0], profile: { ...ALICE, nickName: 'x' } }], /"profile" has an unknown key "nickName"/],
    ['an empty userId', (d) => [{ ...d[0], profile: { ...ALICE, userId: '' } }], /entry \[0\]: "profile.userId" must not be empty/],
  ])('rejects %s with a message naming the entry', (_name, mutate, message) => {
    const data = mutate(valid() as unknown as Record<string, unknown>[]);
    expect(() => parseUsers(data, 'users.json')).toThrow(UsersFileError);
    expect(() => parseUsers(data, 'users.json')).toThrow(message);
    try {
      parseUsers(data, 'users.json');
    } catch (err) {
      expect((err as Error).message).toMatch(/^invalid users file \(users\.json\): /);
      expect((err as Error).message).not.toContain('alice-token');
    }
  });

  describe('loadUsers(file)', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'auth-users-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('reads a valid file', () => {
      const file = join(dir, 'ok.json');
      writeFileSync(file, JSON.stringify(valid()));
      expect(loadUsers(file)).toEqual(valid());
    });

    it('names the file when it cannot be read', () => {
      const file = join(dir, 'missing.json');
      expect(() => loadUsers(file)).toThrow(`cannot read users file ${file}: ENOENT`);
    });

    it('names the file when it is not JSON', () => {
      const file = join(dir, 'bad.json');
      writeFileSync(file, '[{"token": "secret-abc",');
      expect(() => loadUsers(file)).toThrow(`users file ${file} is not valid JSON`);
    });

    it('names the file and the entry when an entry is invalid', () => {
      const file = join(dir, 'invalid.json');
      writeFileSync(file, JSON.stringify([{ token: 'secret-abc', profile: { ...ALICE, avatar: null } }]));
      expect(() => loadUsers(file)).toThrow(
        `invalid users file (${file}): entry [0] (userId "1"): "profile.avatar" must be a string, got null`,
      );
    });
  });

  describe('UserDirectory', () => {
    it('finds a profile by token and returns a copy', () => {
      const directory = new UserDirectory(valid());
      expect(directory.size).toBe(2);
      const found = directory.check('alice-token');
      expect(found).toEqual(ALICE);
      found!.nickname = 'mallory';
      expect(directory.check('alice-token')).toEqual(ALICE);
    });

    it('does not find unknown, empty or near-miss tokens', () => {
      const directory = new UserDirectory(valid());
      for (const token of ['', 'ALICE-TOKEN', 'alice-token ', 'alice', '__proto__', 'constructor']) {
        expect(directory.check(token)).toBeUndefined();
      }
    });

    it('refuses duplicate tokens without quoting them', () => {
      const users = valid();
      users[1].token = users[0].token;
      expect(() => new UserDirectory(users)).toThrow('duplicate token in users: entry [1] (userId "2")');
      expect(() => new UserDirectory(users)).not.toThrow(/alice-token/);
    });
  });
});
