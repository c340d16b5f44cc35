/**
 * What the Server API e2e tests share: the keys, the env that turns the API on, and a client that
 * makes real HTTP calls to a node's API listener (test/support/gateway.ts gives every node an
 * `apiUrl` on a free port when API_KEYS is set).
 */
import type { TestGateway } from '../../support/gateway';
import { httpRequest, type HttpReply } from '../../support/http';
import { Scope } from '../../support/scope';

export const KEY = 'test-api-key-0123456789abcdef';
export const OTHER_KEY = 'second-api-key-fedcba9876543210';

/**
 * The API on, with two keys, and bounds short enough for the tests; wrong keys are not limited
 * here (the tests of 401 send many from one address): api-access tests API_KEY_FAILURES_PER_MINUTE.
 */
export const API_ENV: Record<string, string> = {
  API_KEYS: `${KEY}, ${OTHER_KEY}`,
  API_KEY_FAILURES_PER_MINUTE: '1000000',
  AUTH_DEADLINE_MS: '2000',
  DELIVERY_TIMEOUT_MS: '2000',
};

/** The bundled demo users (served in-process: no AUTH_SERVER_URL). */
export const T = { alice: 'alice-token', bob: 'bob-token', carol: 'carol-token', dave: 'dave-token' } as const;
export const ID = { alice: '1', bob: '2', carol: '3', dave: '4' } as const;

/** A scope whose gateways and deployments serve the API (close it in afterEach). */
export function apiScope(env: Record<string, string> = {}): Scope {
  return new Scope({ env: { ...API_ENV, ...env } });
}

export interface ApiReply extends HttpReply {
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface CallOptions {
  /** The key sent as `Authorization: Bearer <key>` (default KEY); null: no Authorization header. */
  key?: string | null;
  /** The Authorization header exactly (overrides `key`). */
  authorization?: string;
  /** A JSON value (serialized) or a raw body (sent as is). */
  body?: unknown;
  raw?: string | Buffer;
  contentType?: string;
  headers?: Record<string, string>;
  /** The client's source address (127.0.0.2, ...). */
  localAddress?: string;
}

/** One call to the Server API of `node` (its own listener). */
export async function apiCall(node: Pick<TestGateway, 'apiUrl'>, method: string, path: string, options: CallOptions = {}): Promise<ApiReply> {
  if (!node.apiUrl) throw new Error('this node has no Server API (API_KEYS unset)');
  return call(node.apiUrl, method, path, options);
}

/** The same call sent to any base URL (the public port, say). */
export async function call(baseUrl: string, method: string, path: string, options: CallOptions = {}): Promise<ApiReply> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  const key = options.key === undefined ? KEY : options.key;
  if (options.authorization !== undefined) headers.Authorization = options.authorization;
  else if (key !== null) headers.Authorization = `Bearer ${key}`;
  let body: string | Buffer | undefined = options.raw;
  if (body === undefined && options.body !== undefined) body = JSON.stringify(options.body);
  if (body !== undefined) headers['Content-Type'] = options.contentType ?? 'application/json';
  const reply = await httpRequest(baseUrl, { method, headers, body, localAddress: options.localAddress }, path);
  let json: unknown;
  try {
    json = JSON.parse(reply.body);
  } catch {
    json = undefined;
  }
  return { ...reply, json };
}
