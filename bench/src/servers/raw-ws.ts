/**
 * The raw `ws` baseline: the protocol subset the bench drives, on `ws` and node:http with no
 * framework, written the way a careful person would by hand (the physical limit here).
 *
 *  - auth: the `authToken` header, CHECK_TOKEN to the same authorization server as the gateway
 *    (TokenChecker: keep-alive, shared in-flight checks, 30 s cache); single session per user
 *    (AUTH error "1", close 4409); AUTH SUCCESS with the online list; CONNECT to everyone else.
 *  - CHAT_MESSAGE: validated, serialized once, written to every authenticated client.
 *  - DIALOG_MESSAGE: validated (receiver, clientData size), a UUID messageId, written to the
 *    receiver; DELIVERY SUCCESS once that write completed without error, else ERROR.
 *  - close: DISCONNECT to everyone else. ERROR_MESSAGE for invalid frames.
 *  RAW_WS_STRING=1 and RAW_WS_BATCH=1 switch on variants for experiments (see below).
 *  Not here (the gateway has them): rate limit, heartbeat, send-buffer check, client messageId
 *  dedup, metrics, logging, avatars, cluster mode.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { codePointsOver, TokenChecker, type Profile } from './check-token';

const CHAT_MAX_LENGTH = 4096;
const DIALOG_MAX_BYTES = 16384;

interface Conn {
  ws: WebSocket;
  userId: string;
  profile?: Profile;
  authed: boolean;
}

const checker = new TokenChecker(process.env.AUTH_SERVER_URL ?? 'http://127.0.0.1:8081/');
const byUser = new Map<string, Conn>();

function errorFrame(code: string, message: string, requestType?: string): string {
  return JSON.stringify({ type: 'ERROR_MESSAGE', status: 'ERROR', error: { errorCode: code, message }, requestType });
}

function authError(conn: Conn, errorCode: string, message: string, close: number): void {
  if (conn.ws.readyState !== WebSocket.OPEN) return;
  conn.ws.send(JSON.stringify({ type: 'AUTH_MESSAGE', status: 'ERROR', error: { errorCode, message } }));
  conn.ws.close(close, message);
}

/** Broadcast frames are encoded once (RAW_WS_STRING=1 sends the string to each socket instead). */
const ENCODE_ONCE = process.env.RAW_WS_STRING !== '1';
const TEXT = { binary: false };

/**
 * RAW_WS_BATCH=1 (an experiment, off by default): the first write to a socket in an event-loop
 * turn corks it and a setImmediate uncorks every corked socket, so that all the frames one socket
 * gets within a turn leave in one writev.
 */
const BATCH = process.env.RAW_WS_BATCH === '1';
const corked: { cork(): void; uncork(): void }[] = [];
const corkedSet = new Set<unknown>();

function flush(): void {
  for (const s of corked) s.uncork();
  corked.length = 0;
  corkedSet.clear();
}

function send(ws: WebSocket, data: string | Buffer, cb?: (err?: Error) => void): void {
  if (BATCH) {
    const socket = (ws as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
    if (socket && !corkedSet.has(socket)) {
      if (corked.length === 0) setImmediate(flush);
      socket.cork();
      corked.push(socket);
      corkedSet.add(socket);
    }
  }
  ws.send(data, typeof data === 'string' ? {} : TEXT, cb);
}

function broadcast(frame: string, except?: Conn): void {
  const data = ENCODE_ONCE ? Buffer.from(frame) : frame;
  for (const c of byUser.values()) if (c !== except) send(c.ws, data);
}

function join(conn: Conn, profile: Profile): void {
  if (conn.ws.readyState !== WebSocket.OPEN) return;
  if (byUser.has(profile.userId)) return authError(conn, '1', 'this user is already connected', 4409);
  conn.userId = profile.userId;
  conn.profile = profile;
  conn.authed = true;
  byUser.set(profile.userId, conn);
  const userList = Array.from(byUser.values(), (c) => c.profile);
  send(conn.ws, JSON.stringify({ type: 'AUTH_MESSAGE', status: 'SUCCESS', serverData: { userId: profile.userId, userList } }));
  broadcast(JSON.stringify({ type: 'USER_CONNECTION_MESSAGE', serverData: { connectionStatus: 'CONNECT', ...profile } }), conn);
}

function leave(conn: Conn): void {
  if (!conn.authed || byUser.get(conn.userId) !== conn) return;
  byUser.delete(conn.userId);
  conn.authed = false;
  broadcast(JSON.stringify({ type: 'USER_CONNECTION_MESSAGE', serverData: { connectionStatus: 'DISCONNECT', userId: conn.userId } }));
}

function onFrame(conn: Conn, data: RawData, isBinary: boolean): void {
  if (isBinary) return void conn.ws.send(errorFrame('INVALID_JSON', 'binary frames are not accepted'));
  let frame: Record<string, unknown>;
  try {
    frame = JSON.parse(data.toString()) as Record<string, unknown>;
  } catch {
    return void conn.ws.send(errorFrame('INVALID_JSON', 'the frame is not valid JSON'));
  }
  if (typeof frame !== 'object' || frame === null || Array.isArray(frame) || typeof frame.type !== 'string') {
    return void conn.ws.send(errorFrame('INVALID_MESSAGE', 'a frame must be an object with a string type'));
  }
  const serverData = frame.serverData as Record<string, unknown> | undefined;
  switch (frame.type) {
    case 'CHAT_MESSAGE': {
      const message = typeof serverData === 'object' && serverData !== null ? serverData.message : undefined;
      if (typeof message !== 'string' || message.length === 0 || codePointsOver(message, CHAT_MAX_LENGTH)) {
        return void conn.ws.send(errorFrame('INVALID_MESSAGE', 'bad serverData.message', frame.type));
      }
      broadcast(JSON.stringify({ type: 'CHAT_MESSAGE', serverData: { message, sender: conn.userId, sendTime: String(Date.now()) } }));
      return;
    }
    case 'DIALOG_MESSAGE': {
      const receiver = typeof serverData === 'object' && serverData !== null ? serverData.receiver : undefined;
      const clientData = frame.clientData;
      if (typeof receiver !== 'string' || clientData === undefined) {
        return void conn.ws.send(errorFrame('INVALID_MESSAGE', 'receiver and clientData are required', frame.type));
      }
      const clientJson = JSON.stringify(clientData);
      if (Buffer.byteLength(clientJson) > DIALOG_MAX_BYTES) {
        return void conn.ws.send(errorFrame('INVALID_MESSAGE', 'clientData too large', frame.type));
      }
      const messageId = randomUUID();
      const outbound = `{"type":"DIALOG_MESSAGE","clientData":${clientJson},"serverData":${JSON.stringify({ messageId, sender: conn.userId, sendTime: String(Date.now()) })}}`;
      const target = byUser.get(receiver);
      const report = (status: string) =>
        send(conn.ws, `{"type":"DELIVERY_MESSAGE","status":"${status}","serverData":{"messageId":"${messageId}"}}`);
      if (!target || target.ws.readyState !== WebSocket.OPEN) return report('ERROR');
      send(target.ws, outbound, (err) => report(err ? 'ERROR' : 'SUCCESS'));
      return;
    }
    default:
      conn.ws.send(errorFrame('UNKNOWN_TYPE', 'unknown message type', frame.type));
  }
}

const server = createServer((_req, res) => {
  res.statusCode = 404;
  res.end();
});
const wss = new WebSocketServer({
  server,
  path: '/ws',
  perMessageDeflate: false,
  clientTracking: false,
  maxPayload: 1 << 20,
  handleProtocols: (protocols) => (protocols.has('mpgp.v1') ? 'mpgp.v1' : false),
});

wss.on('connection', (ws, req) => {
  const conn: Conn = { ws, userId: '', authed: false };
  ws.on('message', (data, isBinary) => {
    if (conn.authed) onFrame(conn, data, isBinary);
  });
  ws.on('close', () => leave(conn));
  ws.on('error', () => undefined);
  const token = req.headers.authtoken;
  if (typeof token !== 'string' || token === '') return authError(conn, '2', 'token not found or invalid', 4401);
  checker.check(token).then((check) => {
    if (check.outcome === 'valid') join(conn, check.profile);
    else if (check.outcome === 'invalid') authError(conn, '2', 'token not found or invalid', 4401);
    else authError(conn, '3', 'authorization server unavailable, try again later', 1013);
  });
});

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.send?.({ ready: true, port: (server.address() as AddressInfo).port });
});
