/**
 * Test data builders, in the style of immich's test/factories: one builder of profiles and one of
 * users (a user of the authorization servers is a DemoUser, `{ token, profile }`, as in
 * src/demo-users/users.ts). Every test that needs a profile or a user builds it here.
 *
 *   makeProfile('alice')                 every field set, derived from the id
 *   makeProfile('1', { avatar: '' })     overrides replace fields
 *   makeUser('mx1')                      token, id and nickname that occur nowhere by chance, no avatar
 *   makeUser('erin', { userId: '5', token: 'erin-token' })
 *   makeUsers('a1', 'a2', 'a3')
 *
 * Every field of a built profile is set and distinct from the other profiles' (a field dropped or
 * blanked on the way shows in a comparison); what a test depends on, it sets itself.
 */
import type { DemoUser } from '../../src/demo-users/users';
import type { UserProfile } from '../../src/protocol/protocol';

/** A profile with all seven fields set: nickname, avatar and status derive from `userId`. */
export function makeProfile(userId: string, overrides: Partial<UserProfile> = {}): UserProfile {
  return {
    userId,
    nickname: `nick-${userId}`,
    avatar: `http://auth.example/${userId}.png`,
    language: 'en',
    status: `status of ${userId}`,
    lastOnline: '2025-02-01T10:00:00.000Z',
    registerDate: '2024-12-24T18:00:00.000Z',
    ...overrides,
  };
}

/** What a user may override: its token and any profile field. */
export interface UserOverrides extends Partial<UserProfile> {
  token?: string;
}

/**
 * A user of the test authorization servers. Its token, userId and nickname derive from `tag` and
 * carry a suffix no gateway text contains by chance, so that "this never appears in a log, a
 * metric or a frame" checks mean something. Like the bundled demo users, it has no avatar at the
 * authorization server unless given one (the avatar a user saves is the gateway's business).
 */
export function makeUser(tag: string, { token = `tok-${tag}-Zq9Xv7Lm`, ...overrides }: UserOverrides = {}): DemoUser {
  const userId = overrides.userId ?? `uid-${tag}-7hK2pQ`;
  return { token, profile: makeProfile(userId, { nickname: `nick-${tag}-Wr4sT`, avatar: '', status: `status of ${tag}`, ...overrides }) };
}

/** One user per tag. */
export function makeUsers(...tags: string[]): DemoUser[] {
  return tags.map((tag) => makeUser(tag));
}

/**
 * alice as the bundled src/demo-users/demo-users.json has her: what the specs that read the
 * bundled users (their loader, the reference authorization server) expect to get.
 */
export const BUNDLED_ALICE: Readonly<UserProfile> = Object.freeze({
  userId: '1',
  nickname: 'alice',
  avatar: '',
  language: 'en',
  status: "Hi, I'm Alice",
  lastOnline: '2025-01-15T09:30:00.000Z',
  registerDate: '2024-03-01T12:00:00.000Z',
});
