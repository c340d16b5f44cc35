/**
 * CHECK_TOKEN for the baseline servers: the same HTTP request to the same authorization server as
 * the gateway, over a keep-alive agent, with what the gateway also does and costs little:
 * concurrent checks of one token share one request, and SUCCESS answers are cached (30 s).
 */
import { Agent, request } from 'node:http';
import type { UserProfile } from '../../../src/protocol/protocol';

/** The gateway's profile shape (the baseline servers answer with the same one). */
export type Profile = UserProfile;

export type Check = { outcome: 'valid'; profile: Profile } | { outcome: 'invalid' } | { outcome: 'unavailable' };

const FIELDS = ['userId', 'nickname', 'avatar', 'language', 'status', 'lastOnline', 'registerDate'] as const;
const CACHE_TTL_MS = 30_000;
/** The gateway runs with AUTH_TIMEOUT_MS=30000 in the bench: the baselines wait as long. */
const TIMEOUT_MS = 30_000;

export class TokenChecker {
  private readonly agent = new Agent({ keepAlive: true });
  private readonly cache = new Map<string, { profile: Profile; expiresAt: number }>();
  private readonly inFlight = new Map<string, Promise<Check>>();
  private readonly url: URL;

  constructor(url: string) {
    this.url = new URL(url);
  }

  check(token: string): Promise<Check> {
    const cached = this.cache.get(token);
    if (cached && cached.expiresAt > Date.now()) return Promise.resolve({ outcome: 'valid', profile: cached.profile });
    const pending = this.inFlight.get(token);
    if (pending) return pending;
    const result = this.post(token).then((check) => {
      this.inFlight.delete(token);
      if (check.outcome === 'valid') this.cache.set(token, { profile: check.profile, expiresAt: Date.now() + CACHE_TTL_MS });
      return check;
    });
    this.inFlight.set(token, result);
    return result;
  }

  private post(token: string): Promise<Check> {
    const body = JSON.stringify({ type: 'CHECK_TOKEN', authToken: token });
    return new Promise<Check>((resolve) => {
      const req = request(
        this.url,
        {
          method: 'POST',
          agent: this.agent,
          timeout: TIMEOUT_MS,
          headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(classify(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'))));
          res.on('error', () => resolve({ outcome: 'unavailable' }));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => resolve({ outcome: 'unavailable' }));
      req.end(body);
    });
  }
}

function classify(status: number, text: string): Check {
  if (status === 401 || status === 403 || status === 404) return { outcome: 'invalid' };
  if (status !== 200) return { outcome: 'unavailable' };
  let reply: { status?: unknown; serverData?: Record<string, unknown> };
  try {
    reply = JSON.parse(text) as typeof reply;
  } catch {
    return { outcome: 'unavailable' };
  }
  if (reply.status === 'ERROR') return { outcome: 'invalid' };
  const data = reply.serverData;
  if (reply.status !== 'SUCCESS' || typeof data !== 'object' || data === null || typeof data.userId !== 'string' || data.userId === '') {
    return { outcome: 'unavailable' };
  }
  const profile = {} as Profile;
  for (const f of FIELDS) profile[f] = typeof data[f] === 'string' ? data[f] : '';
  return { outcome: 'valid', profile };
}

/** Code points of a string, counting stops once over `max`. */
export function codePointsOver(s: string, max: number): boolean {
  if (s.length <= max) return false;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) i++;
    if (++n > max) return true;
  }
  return false;
}
