/**
 * What is specific to the protocol e2e suite: its users (the reference authorization server's),
 * its bounds, its scope (protocolScope: every deployment gets FAST_ENV and, unless the test
 * gives one, a reference authorization server of its own with USERS) and the checks its tests
 * share. The generic helpers are in test/support (scope, factories, frames, time, http).
 *
 * Every test talks to a Deployment (test/support/deployment.ts) and spreads its users over
 * `dep.wsUrl(i)` so that, on a cluster, different users sit on different nodes.
 */
import { loadUsers, type DemoUser } from '../../../src/demo-users/users';
import type { UserProfile } from '../../../src/protocol/protocol';
import { makeUser } from '../../support/factories';
import { chat, isChat } from '../../support/frames';
import { Scope } from '../../support/scope';
import { closedWithin, type Frame, type TestClient } from '../../support/ws-client';

/**
 * Bounds for the suite: far below the defaults, yet with room for a loaded machine (the reference
 * auth server runs in the test process, so a busy event loop delays its answers too). Tests about
 * a bound set it shorter themselves (SHORT_DEADLINE, SHORT_AUTH_TIMEOUT). A huge breaker threshold
 * keeps the fault tests independent of each other.
 */
export const FAST_ENV: Record<string, string> = {
  AUTH_DEADLINE_MS: '2000',
  AUTH_TIMEOUT_MS: '1500',
  DELIVERY_TIMEOUT_MS: '2000',
  AUTH_BREAKER_THRESHOLD: '1000000',
};

/** For the tests that wait for the auth deadline to pass. */
export const SHORT_DEADLINE = { AUTH_DEADLINE_MS: '500' };
/** For the tests that wait for a CHECK_TOKEN to time out. */
export const SHORT_AUTH_TIMEOUT = { AUTH_TIMEOUT_MS: '300' };

/** How long a test waits to be confident that something did NOT happen. */
export const QUIET_MS = 300;

export const PROFILE_KEYS = ['userId', 'nickname', 'avatar', 'language', 'status', 'lastOnline', 'registerDate'].sort();

/** A user beyond the bundled four: French, a status that needs escaping, no avatar unless given. */
function extraUser(userId: string, nickname: string, token: string, avatar?: string): DemoUser {
  return makeUser(nickname, { token, userId, nickname, language: 'fr', status: `status of ${nickname} "quoted" \u2603`, ...(avatar === undefined ? {} : { avatar }) });
}

/**
 * The users of the reference authorization server in these tests: the four bundled demo users
 * (alice-token -> "1" ... dave-token -> "4") and a few more. erin's token needs the base64url
 * alphabet's `-` and `_` when encoded; frank has an avatar at the authorization server.
 */
export const USERS: DemoUser[] = [
  ...loadUsers(),
  extraUser('5', 'erin', 'erin?>>~token\u00e9'),
  extraUser('6', 'frank', 'frank-token', 'https://auth.example.test/avatars/frank.png'),
  extraUser('7', 'grace', 'grace-token'),
  extraUser('8', 'heidi', 'heidi-token'),
];

export const T = {
  alice: 'alice-token',
  bob: 'bob-token',
  carol: 'carol-token',
  dave: 'dave-token',
  erin: 'erin?>>~token\u00e9',
  frank: 'frank-token',
  grace: 'grace-token',
  heidi: 'heidi-token',
} as const;

export const ID = { alice: '1', bob: '2', carol: '3', dave: '4', erin: '5', frank: '6', grace: '7', heidi: '8' } as const;

export function profileOf(userId: string, users: readonly DemoUser[] = USERS): UserProfile {
  const found = users.find((u) => u.profile.userId === userId);
  if (!found) throw new Error(`no test user ${userId}`);
  return { ...found.profile };
}

/** A scope for the suite's tests (close it in afterEach): deployments get FAST_ENV and their own reference auth server with USERS. */
export function protocolScope(): Scope {
  return new Scope({ env: FAST_ENV, users: USERS, ownAuthServer: true });
}

/** Waits for the AUTH_MESSAGE and the close that follows an auth error. */
export async function authFailure(client: TestClient): Promise<{ frame: Frame; code: number; reason: string }> {
  const frame = await client.nextOfType('AUTH_MESSAGE');
  const { code, reason } = await closedWithin(client, 3000);
  return { frame, code, reason };
}

/** The chat round trip that shows a connection is still usable after something odd. */
export async function expectChatWorks(sender: TestClient, senderId: string, others: TestClient[] = [], text?: string): Promise<void> {
  const message = text ?? `still alive ${Math.random().toString(36).slice(2)}`;
  sender.send(chat(message));
  for (const c of [sender, ...others]) {
    const got = await c.next(isChat(message));
    expect(got.serverData.sender).toBe(senderId);
  }
}
