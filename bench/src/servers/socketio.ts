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
 *
 * With REDIS_URL set (the cluster comparison, `npm run bench -- --cluster`), it is one node of a
 * cluster, built from what Socket.IO offers for that:
 *  - @socket.io/redis-adapter on two ioredis connections (the adapter's pub client also runs the
 *    presence commands; its sub client the subscriptions): io.emit and socket.broadcast.emit reach
 *    the clients of every node (one PUBLISH each, msgpack-encoded by the adapter).
 *  - Presence and the single-session rule across nodes in a Redis hash (userId -> profile JSON):
 *    a login is one MULTI of HSETNX (the claim: a second session anywhere gets error "1") and
 *    HVALS (the cluster's online list for AUTH SUCCESS); a disconnect HDELs its own entry.
 *  - A dialog to a user of another node goes through the adapter's server-side emit with an
 *    acknowledgement (serverSideEmit with a callback, `publishOnSpecificResponseChannel` so that
 *    only the asking node reads the answer): the node that has the receiver emits the DIALOG to its
 *    socket and answers true; the sender's node then sends DELIVERY SUCCESS (ERROR when no node had
 *    the receiver, or none answered within the adapter's requestsTimeout). So the DELIVERY, as the
 *    gateway's, comes back from the receiver's node, not from the sender's right after a PUBLISH
 *    (io.to(room).emit would confirm nothing). The adapter asks Redis for the number of nodes
 *    (PUBSUB NUMSUB) before each such request: its own cost.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdapter } from '@socket.io/redis-adapter';
import Redis from 'ioredis';
import { Server, type Socket } from 'socket.io';
import { codePointsOver, TokenChecker, type Profile } from './check-token';

const CHAT_MAX_LENGTH = 4096;
const DIALOG_MAX_BYTES = 16384;
/** Heartbeats out of the way, as for the other servers. */
const PING_INTERVAL_MS = 3_600_000;
/** How long a node waits for the other nodes' answers to a cross-node dialog (the gateway's DIALOG_TIMEOUT_MS default). */
const DELIVERY_TIMEOUT_MS = 5000;
/** The cluster's online users: userId -> profile JSON. */
const PRESENCE_KEY = 'bench:sio:online';

const checker = new TokenChecker(process.env.AUTH_SERVER_URL ?? 'http://127.0.0.1:8081/');
/** This node's users. */
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

const redisUrl = process.env.REDIS_URL;
const redis = redisUrl ? new Redis(redisUrl) : undefined;

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

function refuseDuplicate(socket: Socket): void {
  socket.emit('AUTH_MESSAGE', { status: 'ERROR', error: { errorCode: '1', message: 'this user is already connected' } });
  socket.disconnect(true);
}

function welcome(socket: Socket, profile: Profile, userList: Profile[]): void {
  socket.emit('AUTH_MESSAGE', { status: 'SUCCESS', serverData: { userId: profile.userId, userList } });
  socket.broadcast.emit('USER_CONNECTION_MESSAGE', { connectionStatus: 'CONNECT', ...profile });
}

/** Cluster: claim the user in Redis and read the cluster's online list, in one round trip. */
async function joinCluster(socket: Socket, profile: Profile, store: Redis): Promise<void> {
  const replies = await store.multi().hsetnx(PRESENCE_KEY, profile.userId, JSON.stringify(profile)).hvals(PRESENCE_KEY).exec();
  const [claim, list] = replies ?? [];
  if (!claim || claim[0] || claim[1] !== 1 || !list || list[0]) return refuseDuplicate(socket);
  if (!socket.connected) {
    // Gone while we asked: give the claim back.
    await store.hdel(PRESENCE_KEY, profile.userId);
    return;
  }
  byUser.set(profile.userId, socket);
  welcome(socket, profile, (list[1] as string[]).map((value) => JSON.parse(value) as Profile));
}

io.on('connection', (socket) => {
  const profile = socket.data.profile as Profile;
  const userId = profile.userId;

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
    const frame = { clientData, serverData: { messageId, sender: userId, sendTime: String(Date.now()) } };
    const target = byUser.get(receiver);
    if (target && target.connected) {
      target.emit('DIALOG_MESSAGE', frame);
      socket.emit('DELIVERY_MESSAGE', { status: 'SUCCESS', serverData: { messageId } });
    } else if (redis) {
      // Another node's user, maybe: the node that has it emits the DIALOG and answers true.
      io.serverSideEmit('DELIVER', receiver, frame, (_err: Error | null, answers: unknown[]) => {
        const status = Array.isArray(answers) && answers.includes(true) ? 'SUCCESS' : 'ERROR';
        socket.emit('DELIVERY_MESSAGE', { status, serverData: { messageId } });
      });
    } else {
      socket.emit('DELIVERY_MESSAGE', { status: 'ERROR', serverData: { messageId } });
    }
  });

  socket.on('disconnect', () => {
    if (byUser.get(userId) !== socket) return;
    byUser.delete(userId);
    if (redis) {
      redis.hdel(PRESENCE_KEY, userId).then(
        () => io.emit('USER_CONNECTION_MESSAGE', { connectionStatus: 'DISCONNECT', userId }),
        (err: unknown) => console.error(`presence not released for ${userId}: ${String(err)}`),
      );
    } else {
      io.emit('USER_CONNECTION_MESSAGE', { connectionStatus: 'DISCONNECT', userId });
    }
  });

  if (redis) {
    joinCluster(socket, profile, redis).catch((err: unknown) => {
      console.error(`login of ${userId} failed: ${String(err)}`);
      socket.emit('AUTH_MESSAGE', { status: 'ERROR', error: { errorCode: '3', message: 'shared state unavailable, try again later' } });
      socket.disconnect(true);
    });
    return;
  }
  if (byUser.has(userId)) return refuseDuplicate(socket);
  byUser.set(userId, socket);
  welcome(socket, profile, Array.from(byUser.values(), (s) => s.data.profile as Profile));
});

/** Cluster: a dialog from another node, for a user that may be on this one. */
io.on('DELIVER', (receiver: string, frame: unknown, answer: (delivered: boolean) => void) => {
  const target = byUser.get(receiver);
  if (target && target.connected) {
    target.emit('DIALOG_MESSAGE', frame);
    answer(true);
  } else {
    answer(false);
  }
});

async function start(): Promise<void> {
  if (redis) {
    const sub = redis.duplicate();
    io.adapter(createAdapter(redis, sub, { requestsTimeout: DELIVERY_TIMEOUT_MS, publishOnSpecificResponseChannel: true }));
    // Replies come in order on a connection: after this PING the adapter's subscriptions are in place.
    await sub.ping();
    await redis.ping();
  }
  httpServer.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
    process.send?.({ ready: true, port: (httpServer.address() as AddressInfo).port });
  });
}

start().catch((err: unknown) => {
  console.error(`start failed: ${String(err)}`);
  process.exit(1);
});
