/**
 * docs/protocol.md "Server API": its own listener. The API answers on API_HOST:API_PORT only; the
 * public port does not serve /api (404 for every spelling of the path, as for an unknown route),
 * the API's port serves nothing else (no WebSocket, no /metrics, no health, no page); without
 * API_KEYS there is no API listener at all; closing the app closes the API listener (an idle
 * keep-alive connection included); requests are counted by route template, never by user id.
 */
import { Agent, request } from 'node:http';
import { ApiListener } from '../../../src/api/api-listener';
import { freePort } from '../../support/free-port';
import { isType } from '../../support/frames';
import { httpStatus, tryUpgrade } from '../../support/http';
import { scrape } from '../../support/metrics';
import { apiCall, apiScope, call, ID, T } from './api-harness';

jest.setTimeout(20_000);

describe('Server API listener', () => {
  const scope = apiScope();
  afterEach(() => scope.closeAll());

  it('listens on API_HOST:API_PORT', async () => {
    const gw = await scope.gateway();
    const port = Number(new URL(gw.apiUrl!).port);
    expect(port).not.toBe(gw.port);
    expect(gw.app.get(ApiListener).address()).toEqual({ host: '127.0.0.1', port });
  });

  it('API_HOST is the address it binds: on 127.0.0.2, the API answers there and nothing listens on 127.0.0.1 at that port', async () => {
    const apiPort = await freePort('127.0.0.2');
    const gw = await scope.gateway({ API_HOST: '127.0.0.2', API_PORT: String(apiPort) });
    expect(gw.app.get(ApiListener).address()).toEqual({ host: '127.0.0.2', port: apiPort });
    const alice = await scope.login(gw.wsUrl, T.alice);
    const users = await call(`http://127.0.0.2:${apiPort}`, 'GET', '/api/v1/users');
    expect(users.status).toBe(200);
    expect(users.json).toMatchObject({ count: 1, users: [{ userId: ID.alice }] });
    expect(await httpStatus(`http://127.0.0.1:${apiPort}/api/v1/openapi.json`)).toBe(0);
    await alice.close();
  });

  it('the public port does not serve /api: 404 for any spelling, with a key, and nothing is done', async () => {
    const gw = await scope.gateway();
    const alice = await scope.login(gw.wsUrl, T.alice);
    for (const path of ['/api/v1/users', '/API/v1/users', '/Api/V1/Users/1', '/%61pi/v1/users', '/api%2Fv1%2Fusers', '/api', '/api/', '/api?x=1', '/api/v1/openapi.json', '/api/v1/users/']) {
      const reply = await call(gw.httpUrl, 'GET', path);
      expect({ path, status: reply.status }).toEqual({ path, status: 404 });
    }
    const post = await call(gw.httpUrl, 'POST', '/api/v1/chat', { body: { sender: ID.alice, message: 'through the public port' } });
    expect(post.status).toBe(404);
    expect(post.json).toEqual({ message: 'Cannot POST /api/v1/chat', error: 'Not Found', statusCode: 404 });
    const kick = await call(gw.httpUrl, 'POST', `/API/v1/users/${ID.alice}/disconnect`);
    expect(kick.status).toBe(404);
    await alice.expectSilence(300, isType('CHAT_MESSAGE'));
    expect(alice.closeInfo).toBeUndefined();
    // An unknown route answers the same way.
    expect((await call(gw.httpUrl, 'GET', '/nope')).json).toEqual({ message: 'Cannot GET /nope', error: 'Not Found', statusCode: 404 });
    // The public port still serves what it serves.
    expect(await httpStatus(`${gw.httpUrl}/health/live`)).toBe(200);
    expect(await httpStatus(`${gw.httpUrl}/metrics`)).toBe(200);
  });

  it('the API port serves only /api: no WebSocket, no /metrics, no health, no demo page, no avatars', async () => {
    const gw = await scope.gateway();
    const wsOnApi = gw.apiUrl!.replace('http:', 'ws:') + '/ws';
    expect((await tryUpgrade(wsOnApi, { authToken: T.alice })).status).toBe(404);
    for (const path of ['/metrics', '/health/live', '/health/ready', '/', '/avatars/x.webp', '/ws']) {
      expect({ path, status: await httpStatus(gw.apiUrl + path) }).toEqual({ path, status: 404 });
    }
    // Nobody logged in through the API port.
    expect((await apiCall(gw, 'GET', '/api/v1/users')).json.count).toBe(0);
  });

  it('without API_KEYS there is no API: nothing listens on API_PORT and the public port answers 404 for /api', async () => {
    const apiPort = await freePort();
    // An empty API_KEYS is an unset one.
    const gw = await scope.gateway({ API_KEYS: '', API_PORT: String(apiPort) });
    expect(gw.apiUrl).toBeUndefined();
    expect(await httpStatus(`http://127.0.0.1:${apiPort}/api/v1/openapi.json`)).toBe(0);
    expect(await httpStatus(`${gw.httpUrl}/api/v1/openapi.json`)).toBe(404);
  });

  it('closing the app closes the API listener, an idle keep-alive connection included', async () => {
    const gw = await scope.gateway();
    const agent = new Agent({ keepAlive: true });
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${gw.apiUrl}/api/v1/openapi.json`, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(200);
    const started = Date.now();
    await scope.stop(gw);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(await httpStatus(`${gw.apiUrl}/api/v1/openapi.json`)).toBe(0);
    agent.destroy();
  });

  it('gateway_api_requests_total counts by route template and status, never by user id', async () => {
    const gw = await scope.gateway();
    const secretId = 'user-id-that-must-not-be-a-label-8fQ2';
    await apiCall(gw, 'GET', `/api/v1/users/${secretId}`);
    await apiCall(gw, 'GET', `/api/v1/users/${secretId}`);
    await apiCall(gw, 'GET', `/api/v1/users/${secretId}`, { key: null });
    await apiCall(gw, 'POST', `/api/v1/users/${secretId}/disconnect`);
    await apiCall(gw, 'GET', `/metrics-${secretId}`);
    const { text, samples } = await scrape(gw);
    expect(text).not.toContain(secretId);
    const series = samples.filter((s) => s.name === 'gateway_api_requests_total');
    expect(series).toEqual(
      expect.arrayContaining([
        { name: 'gateway_api_requests_total', labels: { route: 'GET /api/v1/users/:userId', status: '404' }, value: 2 },
        { name: 'gateway_api_requests_total', labels: { route: 'GET /api/v1/users/:userId', status: '401' }, value: 1 },
        { name: 'gateway_api_requests_total', labels: { route: 'POST /api/v1/users/:userId/disconnect', status: '200' }, value: 1 },
        { name: 'gateway_api_requests_total', labels: { route: 'unmatched', status: '404' }, value: 1 },
      ]),
    );
  });
});
