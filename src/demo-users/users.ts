/**
 * The demo users and the users file format, read by both sides: the gateway's DemoTokenVerifier
 * (AUTH_SERVER_URL unset) and the reference authorization server (src/auth-server, CHECK_TOKEN).
 * Plain TypeScript, no Nest: loading and strict validation of a users file, and the
 * token -> profile lookup. Neither side imports the other; both import this.
 *
 * A users file is a JSON array of `{"token": "...", "profile": {the seven profile fields}}`, each
 * with an optional `"tokenTtlMs"`: the lifetime of the user's time-windowed tokens (below).
 * Error messages name the bad entry by its index (and userId when known), never by its token.
 *
 * Token lifetimes (docs/protocol.md, "Token lifecycle"): an entry's `token` itself never expires
 * (the user's long-lived credential, as before). A user with `tokenTtlMs` also has time-windowed
 * tokens, `<token>~<issuedAt>` (issuedAt: Unix ms, decimal): valid from issuedAt (at most
 * MAX_ISSUE_SKEW_MS ahead of this clock) until issuedAt + tokenTtlMs, and answered with that
 * `expiresAt`. A fresh one is simply `<token>~<now>`: whoever knows the user's token can make them,
 * so they demonstrate expiry and refresh; they are not a security mechanism.
 */
import { readFileSync } from 'node:fs';
import { PROFILE_FIELDS, UserProfile } from '../protocol/protocol';
// `import = require` works under every module/interop setting and makes tsc ship the JSON in dist.
// eslint-disable-next-line @typescript-eslint/no-require-imports
import bundledDemoUsers = require('./demo-users.json');

export interface DemoUser {
  token: string;
  profile: UserProfile;
  /** Lifetime of the user's time-windowed tokens, `<token>~<issuedAt>`; none without it. */
  tokenTtlMs?: number;
}

/** What a token stands for: its user, and when it stops being valid (absent: never). */
export interface TokenGrant {
  profile: UserProfile;
  expiresAt?: number;
}

/** Between a user's token and the issue time of a time-windowed token: `alice-token~1736933400000`. */
export const WINDOW_SEPARATOR = '~';
/** A windowed token may be issued this far ahead of the verifying clock (clock skew). */
export const MAX_ISSUE_SKEW_MS = 5_000;
export const MIN_TOKEN_TTL_MS = 100;
export const MAX_TOKEN_TTL_MS = 30 * 86_400_000;

/** The time-windowed token of `token` issued at `issuedAt` (Unix ms). */
export function windowedToken(token: string, issuedAt: number): string {
  return `${token}${WINDOW_SEPARATOR}${issuedAt}`;
}

/** Where the bundled demo users come from, for messages. */
export const BUNDLED_USERS_SOURCE = 'bundled demo-users.json';

const ENTRY_KEYS: ReadonlySet<string> = new Set(['token', 'profile', 'tokenTtlMs']);
const PROFILE_KEYS: ReadonlySet<string> = new Set(PROFILE_FIELDS);
/** C0 controls, DEL and C1 controls: a token travels in an HTTP header, where these are illegal. */
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;
const MAX_TOKEN_LENGTH = 4096;

export class UsersFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsersFileError';
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/**
 * Validates parsed users data. `source` names the data in error messages (a path, usually).
 * Rules: an array; each entry exactly `{token, profile}`; `token` a non-empty string of at most
 * 4096 characters without control characters or surrounding whitespace, unique in the file;
 * `profile` exactly the seven profile fields, all strings, `userId` non-empty; `tokenTtlMs`, when
 * present, an integer from MIN_TOKEN_TTL_MS to MAX_TOKEN_TTL_MS. A user may have several tokens
 * (several entries with the same userId).
 */
export function parseUsers(data: unknown, source: string): DemoUser[] {
  function fail(message: string): never {
    throw new UsersFileError(`invalid users file (${source}): ${message}`);
  }
  if (!Array.isArray(data)) {
    fail(`expected a JSON array of {token, profile} entries, got ${describe(data)}`);
  }
  const seenTokens = new Map<string, number>();
  return data.map((entry: unknown, index): DemoUser => {
    let where = `entry [${index}]`;
    if (!isRecord(entry)) {
      fail(`${where} must be an object {token, profile}, got ${describe(entry)}`);
    }
    const { token, profile } = entry;
    if (isRecord(profile) && typeof profile.userId === 'string' && profile.userId !== '') {
      where += ` (userId ${JSON.stringify(profile.userId)})`;
    }
    for (const key of Object.keys(entry)) {
      if (!ENTRY_KEYS.has(key)) fail(`${where} has an unknown key ${JSON.stringify(key)}`);
    }

    // Never quote the token itself in a message: messages end up in logs.
    if (token === undefined) fail(`${where}: "token" is missing`);
    if (typeof token !== 'string') {
      fail(`${where}: "token" must be a string, got ${describe(token)}`);
    }
    if (token === '') fail(`${where}: "token" must not be empty`);
    if (token.length > MAX_TOKEN_LENGTH) {
      fail(`${where}: "token" is longer than ${MAX_TOKEN_LENGTH} characters`);
    }
    if (CONTROL_CHARS.test(token)) fail(`${where}: "token" contains a control character`);
    if (token.trim() !== token) fail(`${where}: "token" has leading or trailing whitespace`);
    const previous = seenTokens.get(token);
    if (previous !== undefined) {
      fail(`${where}: "token" duplicates the token of entry [${previous}]`);
    }
    seenTokens.set(token, index);

    if (profile === undefined) fail(`${where}: "profile" is missing`);
    if (!isRecord(profile)) {
      fail(`${where}: "profile" must be an object, got ${describe(profile)}`);
    }
    for (const key of Object.keys(profile)) {
      if (!PROFILE_KEYS.has(key)) {
        fail(
          `${where}: "profile" has an unknown key ${JSON.stringify(key)}` +
            ` (allowed: ${PROFILE_FIELDS.join(', ')})`,
        );
      }
    }
    const checked = {} as UserProfile;
    for (const field of PROFILE_FIELDS) {
      const value = profile[field];
      if (value === undefined) fail(`${where}: "profile.${field}" is missing`);
      if (typeof value !== 'string') {
        fail(`${where}: "profile.${field}" must be a string, got ${describe(value)}`);
      }
      checked[field] = value;
    }
    if (checked.userId === '') fail(`${where}: "profile.userId" must not be empty`);
    const { tokenTtlMs } = entry;
    if (tokenTtlMs === undefined) return { token, profile: checked };
    if (typeof tokenTtlMs !== 'number' || !Number.isInteger(tokenTtlMs) || tokenTtlMs < MIN_TOKEN_TTL_MS || tokenTtlMs > MAX_TOKEN_TTL_MS) {
      fail(`${where}: "tokenTtlMs" must be an integer from ${MIN_TOKEN_TTL_MS} to ${MAX_TOKEN_TTL_MS} (ms), got ${typeof tokenTtlMs === 'number' ? tokenTtlMs : describe(tokenTtlMs)}`);
    }
    return { token, profile: checked, tokenTtlMs };
  });
}

/**
 * Loads users from a JSON file, or the bundled demo users when no file is given.
 * Throws UsersFileError with a message naming the file and the bad entry.
 */
export function loadUsers(file?: string): DemoUser[] {
  if (file === undefined) return parseUsers(bundledDemoUsers, BUNDLED_USERS_SOURCE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new UsersFileError(`cannot read users file ${file}: ${code}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text) as unknown;
  } catch (err) {
    throw new UsersFileError(`users file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseUsers(data, file);
}

/** Token -> profile lookup, time-windowed tokens included. */
export class UserDirectory {
  private readonly byToken = new Map<string, { profile: UserProfile; tokenTtlMs?: number }>();

  constructor(users: readonly DemoUser[]) {
    users.forEach((user, index) => {
      if (this.byToken.has(user.token)) {
        throw new UsersFileError(
          `duplicate token in users: entry [${index}] (userId ${JSON.stringify(user.profile.userId)})`,
        );
      }
      this.byToken.set(user.token, { profile: { ...user.profile }, tokenTtlMs: user.tokenTtlMs });
    });
  }

  get size(): number {
    return this.byToken.size;
  }

  /** The profile for a token (a fresh copy), or undefined when the token is unknown or expired. */
  check(token: string, now: number = Date.now()): UserProfile | undefined {
    return this.grant(token, now)?.profile;
  }

  /**
   * What a token stands for at `now`: a user's own token (no expiry), or a time-windowed token of
   * a user with `tokenTtlMs` that is valid at `now` (with its `expiresAt`); undefined otherwise.
   */
  grant(token: string, now: number = Date.now()): TokenGrant | undefined {
    const own = this.byToken.get(token);
    if (own) return { profile: { ...own.profile } };
    const cut = token.lastIndexOf(WINDOW_SEPARATOR);
    if (cut <= 0) return undefined;
    const issued = token.slice(cut + 1);
    if (!/^[0-9]{1,16}$/.test(issued)) return undefined;
    const user = this.byToken.get(token.slice(0, cut));
    if (!user || user.tokenTtlMs === undefined) return undefined;
    const issuedAt = Number(issued);
    const expiresAt = issuedAt + user.tokenTtlMs;
    if (issuedAt > now + MAX_ISSUE_SKEW_MS || expiresAt <= now) return undefined;
    return { profile: { ...user.profile }, expiresAt };
  }
}
