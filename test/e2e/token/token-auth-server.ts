/**
 * A CHECK_TOKEN server for the token lifecycle tests, programmable per token: the test issues a
 * token for a profile with an expiresAt of its choice, revokes it, or takes the whole server down
 * (HTTP 503: "unavailable"). It counts CHECK_TOKEN requests per token and records when each
 * arrived, to tell a cached answer from a fresh one and to see the re-check spread over time.
 *
 *   const auth = await startTokenAuthServer();
 *   const token = auth.issue(profile, Date.now() + 1500);
 *   const gw = await scope.gateway({ AUTH_SERVER_URL: auth.url });
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkTokenNotFound, checkTokenSuccess, parseJsonBody, readBody, sendJson } from '../../../src/auth-server/auth-server';
import type { UserProfile } from '../../../src/protocol/protocol';

interface Grant {
  profile: UserProfile;
  /** Unix ms; absent: no expiry. A string is sent as is (to test malformed values). */
  expiresAt?: number | string | null;
}

export interface TokenAuthServer {
  readonly url: string;
  /** A new token for `profile`, answered SUCCESS with this expiresAt (none when undefined). */
  issue(profile: UserProfile, expiresAt?: number | string | null): string;
  /** From now on the token is answered ERROR. */
  revoke(token: string): void;
  /** Down: every CHECK_TOKEN is answered 503 (the gateway's "unavailable"). */
  setDown(down: boolean): void;
  /** CHECK_TOKEN requests received for a token (answered or not). */
  requestsFor(token: string): number;
  /** When (Date.now()) each CHECK_TOKEN of a token arrived. */
  arrivals(token: string): number[];
  close(): Promise<void>;
}

let issued = 0;

export async function startTokenAuthServer(): Promise<TokenAuthServer> {
  const grants = new Map<string, Grant>();
  const times = new Map<string, number[]>();
  let down = false;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req);
    if (body.kind !== 'ok') {
      res.destroy();
      return;
    }
    const parsed = parseJsonBody(body.body);
    const token = parsed.ok ? (parsed.value as { authToken?: unknown }).authToken : undefined;
    if (typeof token === 'string') times.set(token, [...(times.get(token) ?? []), Date.now()]);
    if (down) {
      sendJson(res, { status: 503, body: { status: 'ERROR', error: { errorCode: '503', message: 'down for the test' } } });
      return;
    }
    const grant = typeof token === 'string' ? grants.get(token) : undefined;
    if (!grant) {
      sendJson(res, checkTokenNotFound());
      return;
    }
    const reply = checkTokenSuccess(grant.profile);
    if (grant.expiresAt !== undefined) {
      (reply.body.serverData as Record<string, unknown>).expiresAt = typeof grant.expiresAt === 'number' ? String(grant.expiresAt) : grant.expiresAt;
    }
    sendJson(res, reply);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/`,
    issue(profile, expiresAt) {
      const token = `tok-lifecycle-${++issued}-${Math.random().toString(36).slice(2)}`;
      grants.set(token, { profile, expiresAt });
      return token;
    },
    revoke(token) {
      grants.delete(token);
    },
    setDown(value) {
      down = value;
    },
    requestsFor: (token) => times.get(token)?.length ?? 0,
    arrivals: (token) => [...(times.get(token) ?? [])],
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
