/**
 * The demo users and the users file format, read by both sides: the gateway's DemoTokenVerifier
 * (AUTH_SERVER_URL unset) and the reference authorization server (src/auth-server, CHECK_TOKEN).
 * Plain TypeScript, no Nest: loading and strict validation of a users file, and the
 * token -> profile lookup. Neither side imports the other; both import this.
 *
 * A users file is a JSON array of `{"token": "...", "profile": {the seven profile fields}}`.
 * Error messages name the bad entry by its index (and userId when known), never by its token.
 */
import { readFileSync } from 'node:fs';
import { PROFILE_FIELDS, UserProfile } from '../protocol/protocol';
// `import = require` works under every module/interop setting and makes tsc ship the JSON in dist.
// eslint-disable-next-line @typescript-eslint/no-require-imports
import bundledDemoUsers = require('./demo-users.json');

export interface DemoUser {
  token: string;
  profile: UserProfile;
}

/** Where the bundled demo users come from, for messages. */
export const BUNDLED_USERS_SOURCE = 'bundled demo-users.json';

const ENTRY_KEYS: ReadonlySet<string> = new Set(['token', 'profile']);
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
 * `profile` exactly the seven profile fields, all strings, `userId` non-empty. A user may have
 * several tokens (several entries with the same userId).
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
    return { token, profile: checked };
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

/** Token -> profile lookup. */
export class UserDirectory {
  private readonly byToken = new Map<string, UserProfile>();

  constructor(users: readonly DemoUser[]) {
    users.forEach((user, index) => {
      if (this.byToken.has(user.token)) {
        throw new UsersFileError(
          `duplicate token in users: entry [${index}] (userId ${JSON.stringify(user.profile.userId)})`,
        );
      }
      this.byToken.set(user.token, { ...user.profile });
    });
  }

  get size(): number {
    return this.byToken.size;
  }

  /** The profile for a token (a fresh copy), or undefined when the token is unknown. */
  check(token: string): UserProfile | undefined {
    const profile = this.byToken.get(token);
    return profile === undefined ? undefined : { ...profile };
  }
}
