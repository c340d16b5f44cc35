/**
 * The Socket.IO 4 server doing the same work as the gateway, the way Socket.IO users write it:
 * one event per message type, the token in the `authToken` header of the handshake (websocket
 * transport only, as the load generator connects), checked in a middleware against the same
 * authorization server (TokenChecker, as the raw baseline).
 *
 *  - connection: single session per user; AUTH_MESSAGE {status, serverData:{userId, userList}};
 *    USER_CONNECTION_MESSAGE CONNECT to everyone else (socket.broadcast.emit).
 *  - CHAT_MESSAGE {message}: validated, io.emit to everyone (Socket.IO encodes it once).
 *  - DIALOG_MESSAGE {clientData, serverData:{receiver}}: validated, a UUID messageId, emitted to
 *    the receiver's socket; DELIVERY_MESSAGE to the sender right after the emit (Socket.IO offers
 *    no per-emit write confirmation: less work than the gateway and raw ws do).
 *  - disconnect: DISCONNECT to everyone else.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, type Socket } from 'socket.io';
import { codePointsOver, TokenChecker, type Profile } from './check-token';

const CHAT_MAX_LENGTH = 4096;
const DIALOG_MAX_BYTES = 16384;
/** Heartbeats out of the way, as for the other servers. */
const PING_INTERVAL_MS = 3_600_000;

const checker = new TokenChecker(process.env.AUTH_SERVER_URL ?? 'http://127.0.0.1:8081/');
const byUser = new Map<string, Socket>();

const httpServer = createServer();
const io = new Server(httpServer, {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  httpCompression: false,
  maxHttpBufferSize: 1 << 20,
  pingInterval: PING_INTERVAL_MS,
  pingTimeout: PING_INTERVAL_MS,
  connectTimeout: 60_000,
});

function fail(errorCode: string, message: string): Error {
  return Object.assign(new Error(message), { data: { errorCode } });
}

io.use((socket, next) => {
  const token = socket.handshake.headers.authtoken;
  if (typeof token !== 'string' || token === '') return next(fail('2', 'token not found or invalid'));
  checker.check(token).then((check) => {
    if (check.outcome === 'valid') {
      socket.data.profile = check.profile;
      next();
    } else if (check.outcome === 'invalid') next(fail('2', 'token not found or invalid'));
    else next(fail('3', 'authorization server unavailable, try again later'));
  });
});

io.on('connection', (socket) => {
  const profile = socket.data.profile as Profile;
  const userId = profile.userId;
  if (byUser.has(userId)) {
    socket.emit('AUTH_MESSAGE', { status: 'ERROR', error: { errorCode: '1', message: 'this user is already connected' } });
    socket.disconnect(true);
    return;
  }
  byUser.set(userId, socket);
  const userList = Array.from(byUser.values(), (s) => s.data.profile as Profile);
  socket.emit('AUTH_MESSAGE', { status: 'SUCCESS', serverData: { userId, userList } });
  socket.broadcast.emit('USER_CONNECTION_MESSAGE', { connectionStatus: 'CONNECT', ...profile });

  socket.on('CHAT_MESSAGE', (data: { message?: unknown } | undefined) => {
    const message = typeof data === 'object' && data !== null ? data.message : undefined;
    if (typeof message !== 'string' || message.length === 0 || codePointsOver(message, CHAT_MAX_LENGTH)) {
      socket.emit('ERROR_MESSAGE', { status: 'ERROR', error: { errorCode: 'INVALID_MESSAGE', message: 'bad message' }, requestType: 'CHAT_MESSAGE' });
      return;
    }
    io.emit('CHAT_MESSAGE', { message, sender: userId, sendTime: String(Date.now()) });
  });

  socket.on('DIALOG_MESSAGE', (data: { clientData?: unknown; serverData?: { receiver?: unknown } } | undefined) => {
    const receiver = data?.serverData?.receiver;
    const clientData = data?.clientData;
    if (typeof receiver !== 'string' || clientData === undefined || Buffer.byteLength(JSON.stringify(clientData)) > DIALOG_MAX_BYTES) {
      socket.emit('ERROR_MESSAGE', { status: 'ERROR', error: { errorCode: 'INVALID_MESSAGE', message: 'bad dialog' }, requestType: 'DIALOG_MESSAGE' });
      return;
    }
    const messageId = randomUUID();
    const target = byUser.get(receiver);
    if (target && target.connected) {
      target.emit('DIALOG_MESSAGE', { clientData, serverData: { messageId, sender: userId, sendTime: String(Date.now()) } });
      socket.emit('DELIVERY_MESSAGE', { status: 'SUCCESS', serverData: { messageId } });
    } else {
      socket.emit('DELIVERY_MESSAGE', { status: 'ERROR', serverData: { messageId } });
    }
  });

  socket.on('disconnect', () => {
    if (byUser.get(userId) !== socket) return;
    byUser.delete(userId);
    io.emit('USER_CONNECTION_MESSAGE', { connectionStatus: 'DISCONNECT', userId });
  });
});

httpServer.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.send?.({ ready: true, port: (httpServer.address() as AddressInfo).port });
});
