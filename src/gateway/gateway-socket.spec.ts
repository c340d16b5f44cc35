import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { WebSocket, type WebSocketServer } from 'ws';
import { GatewaySocket, type SocketEvents } from './gateway-socket';

/** A real ws server (the package platform-ws uses) making GatewaySockets, and a real client. */
describe('GatewaySocket', () => {
  let http: Server;
  let server: WebSocketServer;
  let url: string;
  let accepted: Promise<GatewaySocket>;

  beforeEach(async () => {
    http = createServer();
    const wsModule = jest.requireActual<typeof import('ws')>(require.resolve('ws', { paths: [require.resolve('@nestjs/platform-ws')] }));
    server = new wsModule.WebSocketServer({ server: http, clientTracking: false, WebSocket: GatewaySocket });
    accepted = new Promise((resolve) => server.on('connection', (socket: GatewaySocket) => resolve(socket)));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    server.close();
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
  });

  function recorder(): SocketEvents & { seen: unknown[][] } {
    const seen: unknown[][] = [];
    return {
      seen,
      onSocketMessage: (data, isBinary) => seen.push(['message', data.toString(), isBinary]),
      onSocketPong: () => seen.push(['pong']),
      onSocketClose: (code) => seen.push(['close', code]),
      onSocketError: (err) => seen.push(['error', err.code]),
    };
  }

  const until = async (check: () => boolean) => {
    for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(check()).toBe(true);
  };

  it('hands message, pong and close to its events without a listener on the socket', async () => {
    const client = new WebSocket(url);
    const socket = await accepted;
    expect(socket).toBeInstanceOf(GatewaySocket);
    const events = recorder();
    socket.events = events;
    await new Promise((resolve) => client.once('open', resolve));
    client.send('{"a":1}');
    socket.ping();
    await until(() => events.seen.length >= 2);
    client.close(4000, 'bye');
    await until(() => events.seen.some(([e]) => e === 'close'));
    expect(events.seen).toEqual([['message', '{"a":1}', false], ['pong'], ['close', 4000]]);
    expect(socket.eventNames()).toEqual([]);
  });

  it('gives an error to its events and does not throw without an error listener; listeners others add still get every event', async () => {
    const client = new WebSocket(url);
    const socket = await accepted;
    const events = recorder();
    socket.events = events;
    const theirs: string[] = [];
    socket.on('message', () => theirs.push('message'));
    socket.on('close', () => theirs.push('close'));
    await new Promise((resolve) => client.once('open', resolve));
    client.send('x');
    await until(() => theirs.length === 1);
    // An unmasked frame from a client is a protocol error for ws: 'error', then 'close'.
    (client as unknown as { _socket: { write(b: Buffer): void } })._socket.write(Buffer.from([0x81, 0x01, 0x78]));
    await until(() => events.seen.some(([e]) => e === 'close'));
    expect(events.seen.map(([e]) => e)).toEqual(['message', 'error', 'close']);
    expect(events.seen[1][1]).toBe('WS_ERR_EXPECTED_MASK');
    expect(theirs).toEqual(['message', 'close']);
  });
});
