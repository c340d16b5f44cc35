import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpService } from '@nestjs/axios';
import axios from 'axios';
import { makeProfile } from '../../test/support/factories';
import { strictMock } from '../../test/support/strict-mock';
import { startAuthServer, type AuthServerHandle } from '../auth-server/auth-server';
import type { GatewayConfig } from '../config/gateway-config';
import { classifyReply, HttpTokenVerifier } from './http-token-verifier';
import type { TokenCheck } from './token-verifier';

const body = (value: unknown) => JSON.stringify(value);
const success = (serverData: unknown) => body({ type: 'CHECK_TOKEN', status: 'SUCCESS', serverData });

describe('classifyReply', () => {
  it('accepts 200 SUCCESS with a full profile', () => {
    const profile = makeProfile('u1');
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

  // Any 4xx but 408 and 429: the authorization server refused this very request (a client
  // controls the token, hence the request): an invalid token, never an outage.
  it.each([400, 401, 402, 403, 404, 405, 409, 410, 411, 413, 414, 415, 418, 422, 431, 451, 499])(
    'treats HTTP %i as an invalid token, whatever the body',
    (status) => {
      expect(classifyReply(status, 'not json at all')).toEqual({ outcome: 'invalid' });
      expect(classifyReply(status, '')).toEqual({ outcome: 'invalid' });
      expect(classifyReply(status, success({ userId: 'u1' }))).toEqual({ outcome: 'invalid' });
    },
  );

  // 408 and 429 say "not now", 5xx and 3xx are the server's trouble, other 2xx are not the contract.
  it.each([408, 429, 500, 501, 502, 503, 504, 599, 300, 301, 302, 303, 304, 307, 308, 201, 202, 204])(
    'treats HTTP %i as unavailable, whatever the body',
    (status) => {
      const check = classifyReply(status, success({ userId: 'u1' }));
      expect(check).toMatchObject({ outcome: 'unavailable' });
      expect(check).toHaveProperty('reason', `HTTP ${status}`);
      expect(classifyReply(status, body({ status: 'ERROR' }))).toMatchObject({ outcome: 'unavailable' });
    },
  );

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

/** A CHECK_TOKEN endpoint on 127.0.0.1 whose answer each test sets; it records what it received. */
class ProgrammableServer {
  answer: (req: IncomingMessage, res: ServerResponse, body: string) => void = (_req, res) => res.writeHead(500).end();
  readonly received: { method: string; contentType: string | undefined; body: string }[] = [];
  private readonly server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      this.received.push({ method: req.method ?? '', contentType: req.headers['content-type'], body });
      this.answer(req, res, body);
    });
  });

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/check`;
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const TOKEN = 'tok-http-verifier-5ecret-Qm3';

describe('HttpTokenVerifier over real HTTP', () => {
  const server = new ProgrammableServer();
  const verifierFor = (authServerUrl: string | undefined, authTimeoutMs = 1000) =>
    new HttpTokenVerifier(new HttpService(axios.create()), strictMock<GatewayConfig>({ authServerUrl, authTimeoutMs }, 'config'));
  /** Every outcome the tests saw, to check that no reason ever quotes the token. */
  const outcomes: TokenCheck[] = [];
  const verify = async (verifier: HttpTokenVerifier, token = TOKEN) => {
    const check = await verifier.verify(token);
    outcomes.push(check);
    return check;
  };

  beforeAll(() => server.listen());
  afterAll(async () => {
    await server.close();
    expect(outcomes.length).toBeGreaterThan(10);
    for (const check of outcomes) expect(JSON.stringify(check)).not.toContain(TOKEN);
  });
  beforeEach(() => {
    server.received.length = 0;
  });

  it('POSTs {"type":"CHECK_TOKEN","authToken"} as JSON and accepts 200 SUCCESS', async () => {
    server.answer = (_req, res) =>
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(success({ userId: 'u-42', nickname: 'Ann' }));
    const check = await verify(verifierFor(server.url));
    expect(check).toMatchObject({ outcome: 'valid', profile: { userId: 'u-42', nickname: 'Ann', avatar: '' } });
    expect(server.received).toHaveLength(1);
    expect(server.received[0]).toMatchObject({ method: 'POST', contentType: 'application/json' });
    expect(JSON.parse(server.received[0].body)).toEqual({ type: 'CHECK_TOKEN', authToken: TOKEN });
  });

  it('200 with status ERROR: invalid', async () => {
    server.answer = (_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(body({ status: 'ERROR' }));
    await expect(verify(verifierFor(server.url))).resolves.toEqual({ outcome: 'invalid' });
  });

  it.each([400, 401, 403, 404, 413, 418, 422])('HTTP %i on the wire: invalid', async (status) => {
    server.answer = (_req, res) => res.writeHead(status, { 'Content-Type': 'application/json' }).end(body({ status: 'ERROR' }));
    await expect(verify(verifierFor(server.url))).resolves.toEqual({ outcome: 'invalid' });
    expect(server.received).toHaveLength(1);
  });

  it.each([408, 429, 500, 502, 503])('HTTP %i on the wire: unavailable', async (status) => {
    server.answer = (_req, res) => res.writeHead(status, { 'Content-Type': 'application/json' }).end(body({ status: 'ERROR' }));
    await expect(verify(verifierFor(server.url))).resolves.toEqual({ outcome: 'unavailable', reason: `HTTP ${status}` });
  });

  it.each([301, 302, 307])('HTTP %i: unavailable, and the redirect is not followed', async (status) => {
    server.answer = (_req, res) => res.writeHead(status, { Location: '/elsewhere' }).end();
    await expect(verify(verifierFor(server.url))).resolves.toEqual({ outcome: 'unavailable', reason: `HTTP ${status}` });
    expect(server.received).toHaveLength(1);
  });

  it('a 200 body not of the SUCCESS/ERROR shape: unavailable', async () => {
    server.answer = (_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end('<html>oops</html>');
    await expect(verify(verifierFor(server.url))).resolves.toMatchObject({ outcome: 'unavailable' });
  });

  it('no answer within AUTH_TIMEOUT_MS: unavailable, after about the timeout', async () => {
    server.answer = () => undefined; // never answers
    const started = Date.now();
    const check = await verify(verifierFor(server.url, 150));
    const took = Date.now() - started;
    expect(check).toMatchObject({ outcome: 'unavailable' });
    expect(took).toBeGreaterThanOrEqual(140);
    expect(took).toBeLessThan(2000);
  });

  it('a reply that trickles past AUTH_TIMEOUT_MS: unavailable (the bound is on the whole request)', async () => {
    const timers: NodeJS.Timeout[] = [];
    server.answer = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('{"status":');
      // One byte every 50 ms: the socket is never idle for the timeout, the request lasts far longer.
      const rest = '"SUCCESS","serverData":{"userId":"late"}}'.split('');
      const drip = setInterval(() => (rest.length > 0 ? res.write(rest.shift()) : res.end()), 50);
      timers.push(drip);
      res.on('close', () => clearInterval(drip));
    };
    const started = Date.now();
    const check = await verify(verifierFor(server.url, 300));
    expect(check).toMatchObject({ outcome: 'unavailable' });
    expect(Date.now() - started).toBeLessThan(1500);
    for (const t of timers) clearInterval(t);
  });

  it('connection refused: unavailable (ECONNREFUSED)', async () => {
    const closed = new ProgrammableServer();
    await closed.listen();
    const url = closed.url;
    await closed.close();
    await expect(verify(verifierFor(url))).resolves.toEqual({ outcome: 'unavailable', reason: 'ECONNREFUSED' });
  });

  it('no AUTH_SERVER_URL: unavailable, without any request', async () => {
    await expect(verify(verifierFor(undefined))).resolves.toMatchObject({ outcome: 'unavailable' });
    expect(server.received).toHaveLength(0);
  });

  describe('against the reference authorization server', () => {
    let reference: AuthServerHandle;
    beforeAll(async () => {
      reference = await startAuthServer({ users: [] });
    });
    afterAll(() => reference.close());

    it('a 70 KB token really goes out and its 413 is an invalid token, not an outage', async () => {
      const before = reference.requests;
      const check = await verify(verifierFor(reference.url), `${TOKEN}${'x'.repeat(70 * 1024)}`);
      expect(check).toEqual({ outcome: 'invalid' });
      expect(reference.requests).toBe(before + 1);
    });

    it('an unknown token of ordinary size: invalid (200 ERROR)', async () => {
      await expect(verify(verifierFor(reference.url))).resolves.toEqual({ outcome: 'invalid' });
    });
  });
});
