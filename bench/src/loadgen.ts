/**
 * The load generator: its own process (forked by the orchestrator), driving N authenticated
 * connections with the `ws` client (our gateway and the raw baseline) or socket.io-client.
 *
 * It checks what it receives, cheaply enough for 10k connections: every client keeps a bitset
 * of the users it knows to be online (AUTH userList + CONNECT - DISCONNECT), every CHAT and
 * DIALOG is counted per message and per client. Whatever was sent and is neither received nor
 * reported as not delivered is a lost message.
 *
 * Commands come over IPC (see common/messages.ts); every wait is bounded in time.
 */
import { performance } from 'node:perf_hooks';
import { io as sioConnect, type Socket as SioSocket } from 'socket.io-client';
import { WebSocket } from 'ws';
import type {
  BroadcastResult,
  ChurnResult,
  ConnectResult,
  DialogResult,
  IdleResult,
  LoadgenCommand,
  LoadgenInit,
} from './common/messages';
import { percentile, rng, sortNumbers } from './common/stats';

interface Client {
  idx: number;
  ws?: WebSocket;
  sio?: SioSocket;
  state: 'connecting' | 'open' | 'closed';
  /** Closed by us (churn): not a failure. */
  closing: boolean;
  /** Bitset of the users this client knows to be online. */
  known: Uint8Array;
  knownCount: number;
  presenceFrames: number;
  chatReceived: number;
  authed?: (ok: boolean, why?: string) => void;
  closed?: () => void;
}

let init: LoadgenInit;
let bitsetBytes = 0;
const clients = new Map<number, Client>();
/** Stable clients, in connection order: they send and receive the broadcasts and dialogs. */
const online: Client[] = [];
const failures: string[] = [];
let duplicates = 0;
let anomalies = 0;
let unexpectedFrames = 0;
let unexpectedCloses = 0;
let shuttingDown = false;
/** Counts frames of any kind (for the idle check). */
let framesSeen = 0;

function fail(why: string): void {
  if (failures.length < 50) failures.push(why);
}

function takeFailures(): string[] {
  return failures.splice(0, failures.length);
}

// ---------------------------------------------------------------- presence bookkeeping

function know(c: Client, user: number): void {
  if (user < 0 || user >= init.maxUsers) return void anomalies++;
  const byte = user >> 3;
  const bit = 1 << (user & 7);
  if (c.known[byte] & bit) {
    duplicates++;
    return;
  }
  c.known[byte] |= bit;
  c.knownCount++;
}

function forget(c: Client, user: number): void {
  if (user < 0 || user >= init.maxUsers) return void anomalies++;
  const byte = user >> 3;
  const bit = 1 << (user & 7);
  if (!(c.known[byte] & bit)) {
    anomalies++;
    return;
  }
  c.known[byte] &= ~bit;
  c.knownCount--;
}

// ---------------------------------------------------------------- frame handling (ws)

const PREFIX = Buffer.from('{"type":"');
const N_USERLIST = Buffer.from('"userList":');
const N_USERID_U = Buffer.from('"userId":"u');
const N_STATUS = Buffer.from('"connectionStatus":"');
const N_MESSAGE_M = Buffer.from('"message":"m');
const N_SENDER = Buffer.from('"sender":"u');
const N_SENDTIME = Buffer.from('"sendTime":"');
const N_SUCCESS = Buffer.from('"status":"SUCCESS"');

/** The decimal number at buf[pos...]; -1 when there is no digit there. */
function digitsAt(buf: Buffer, pos: number): number {
  let n = 0;
  let any = false;
  for (let i = pos; i < buf.length; i++) {
    const b = buf[i];
    if (b < 48 || b > 57) break;
    n = n * 10 + (b - 48);
    any = true;
  }
  return any ? n : -1;
}

function onWsFrame(c: Client, buf: Buffer): void {
  framesSeen++;
  if (buf.length < 12 || buf.compare(PREFIX, 0, 9, 0, 9) !== 0) return onObject(c, safeParse(buf));
  switch (buf[9]) {
    case 65 /* A: AUTH_MESSAGE */: {
      if (buf.indexOf(N_SUCCESS) < 0 || buf.indexOf(N_SUCCESS) > 64) return onObject(c, safeParse(buf));
      let pos = buf.indexOf(N_USERLIST);
      if (pos < 0) return onObject(c, safeParse(buf));
      for (;;) {
        pos = buf.indexOf(N_USERID_U, pos);
        if (pos < 0) break;
        pos += N_USERID_U.length;
        know(c, digitsAt(buf, pos));
      }
      return authed(c);
    }
    case 85 /* U: USER_CONNECTION_MESSAGE or USER_UPDATE_MESSAGE */: {
      const s = buf.indexOf(N_STATUS);
      const u = buf.indexOf(N_USERID_U);
      if (s < 0 || u < 0) return onObject(c, safeParse(buf));
      c.presenceFrames++;
      const user = digitsAt(buf, u + N_USERID_U.length);
      if (buf[s + N_STATUS.length] === 67 /* C */) know(c, user);
      else forget(c, user);
      return;
    }
    case 67 /* C: CHAT_MESSAGE */: {
      const m = buf.indexOf(N_MESSAGE_M);
      if (m < 0 || buf.indexOf(N_SENDER) < 0 || buf.indexOf(N_SENDTIME) < 0) {
        fail(`CHAT_MESSAGE without message, sender or sendTime: ${buf.toString().slice(0, 200)}`);
        return;
      }
      return onChat(c, digitsAt(buf, m + N_MESSAGE_M.length));
    }
    default:
      return onObject(c, safeParse(buf));
  }
}

function safeParse(buf: Buffer): Record<string, unknown> | undefined {
  try {
    return JSON.parse(buf.toString()) as Record<string, unknown>;
  } catch {
    fail(`invalid JSON from the server: ${buf.toString().slice(0, 200)}`);
    return undefined;
  }
}

type Obj = Record<string, unknown>;

/** The slow path: any frame as a parsed object. */
function onObject(c: Client, frame: Obj | undefined): void {
  if (!frame) return;
  const data = (frame.serverData ?? {}) as Obj;
  switch (frame.type) {
    case 'AUTH_MESSAGE':
      if (frame.status !== 'SUCCESS') {
        const err = frame.error as Obj | undefined;
        return authFailed(c, `AUTH ERROR ${String(err?.errorCode)}: ${String(err?.message)}`);
      }
      for (const u of (data.userList ?? []) as Obj[]) know(c, userIndex(u.userId));
      return authed(c);
    case 'USER_CONNECTION_MESSAGE':
      c.presenceFrames++;
      if (data.connectionStatus === 'CONNECT') know(c, userIndex(data.userId));
      else forget(c, userIndex(data.userId));
      return;
    case 'CHAT_MESSAGE':
      if (typeof data.sender !== 'string' || typeof data.sendTime !== 'string' || typeof data.message !== 'string') {
        fail(`CHAT_MESSAGE without message, sender or sendTime`);
        return;
      }
      return onChat(c, Number(data.message.slice(1)));
    case 'DIALOG_MESSAGE':
      return onDialog(c, frame.clientData as Obj | undefined, data);
    case 'DELIVERY_MESSAGE':
      return onDelivery(c, frame.status, data.messageId);
    case 'ERROR_MESSAGE':
      fail(`ERROR_MESSAGE: ${JSON.stringify(frame).slice(0, 300)}`);
      return;
    default:
      unexpectedFrames++;
  }
}

function userIndex(id: unknown): number {
  return typeof id === 'string' && id.startsWith('u') ? Number(id.slice(1)) : -1;
}

function authed(c: Client): void {
  const cb = c.authed;
  c.authed = undefined;
  cb?.(true);
}

function authFailed(c: Client, why: string): void {
  const cb = c.authed;
  c.authed = undefined;
  if (cb) cb(false, why);
  else fail(`client u${c.idx}: ${why}`);
}

// ---------------------------------------------------------------- connecting

function newClient(idx: number): Client {
  return {
    idx,
    state: 'connecting',
    closing: false,
    known: new Uint8Array(bitsetBytes),
    knownCount: 0,
    presenceFrames: 0,
    chatReceived: 0,
  };
}

/** Opens one client; resolves true on AUTH SUCCESS, false (with a failure recorded) otherwise. */
function open(c: Client, timeoutMs: number): Promise<boolean> {
  const url = init.urls[c.idx % init.urls.length];
  const token = init.tokens[c.idx];
  clients.set(c.idx, c);
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => done(false, 'no AUTH_MESSAGE in time'), timeoutMs);
    const done = (ok: boolean, why?: string) => {
      clearTimeout(timer);
      c.authed = undefined;
      if (ok) c.state = 'open';
      else fail(`client u${c.idx}: ${why ?? 'failed'}`);
      resolve(ok);
    };
    c.authed = done;
    const onClose = (code: unknown) => {
      const was = c.state;
      c.state = 'closed';
      if (c.authed) return authFailed(c, `closed before AUTH SUCCESS (${String(code)})`);
      if (!c.closing && !shuttingDown && was === 'open') {
        unexpectedCloses++;
        fail(`client u${c.idx} closed unexpectedly (${String(code)})`);
      }
      c.closed?.();
    };
    if (init.kind === 'ws') {
      const ws = new WebSocket(url, {
        headers: { authToken: token },
        perMessageDeflate: false,
        skipUTF8Validation: true,
        maxPayload: 512 * 1024 * 1024,
        handshakeTimeout: timeoutMs,
      });
      c.ws = ws;
      ws.on('message', (data: Buffer) => onWsFrame(c, data));
      ws.on('close', (code) => onClose(code));
      ws.on('error', (err) => {
        if (c.authed) authFailed(c, `socket error ${(err as NodeJS.ErrnoException).code ?? err.message}`);
      });
    } else {
      const s = sioConnect(url, {
        transports: ['websocket'],
        extraHeaders: { authToken: token },
        reconnection: false,
        forceNew: true,
        timeout: timeoutMs,
      });
      c.sio = s;
      s.on('AUTH_MESSAGE', (frame: Obj) => onObject(c, { type: 'AUTH_MESSAGE', ...frame }));
      s.on('USER_CONNECTION_MESSAGE', (data: Obj) => {
        framesSeen++;
        c.presenceFrames++;
        if (data.connectionStatus === 'CONNECT') know(c, userIndex(data.userId));
        else forget(c, userIndex(data.userId));
      });
      s.on('CHAT_MESSAGE', (data: Obj) => {
        framesSeen++;
        if (typeof data.sender !== 'string' || typeof data.sendTime !== 'string' || typeof data.message !== 'string') {
          fail('CHAT_MESSAGE without message, sender or sendTime');
          return;
        }
        onChat(c, Number(data.message.slice(1)));
      });
      s.on('DIALOG_MESSAGE', (frame: Obj) => {
        framesSeen++;
        onDialog(c, frame.clientData as Obj | undefined, (frame.serverData ?? {}) as Obj);
      });
      s.on('DELIVERY_MESSAGE', (frame: Obj) => {
        framesSeen++;
        onDelivery(c, frame.status, ((frame.serverData ?? {}) as Obj).messageId);
      });
      s.on('ERROR_MESSAGE', (frame: Obj) => fail(`ERROR_MESSAGE: ${JSON.stringify(frame).slice(0, 300)}`));
      s.on('connect_error', (err: Error & { data?: unknown }) => authFailed(c, `connect_error ${err.message} ${JSON.stringify(err.data ?? '')}`));
      s.on('disconnect', (reason) => onClose(reason));
    }
  });
}

/** Opens clients [from, to) with at most `concurrency` handshakes in flight. */
async function openMany(indices: number[], concurrency: number, timeoutMs: number, stable: boolean): Promise<{ ok: Client[]; lastAuthAt: number }> {
  const ok: Client[] = [];
  let next = 0;
  let lastAuthAt = performance.now();
  let reported = performance.now();
  const worker = async () => {
    while (next < indices.length) {
      const c = newClient(indices[next++]);
      if (await open(c, timeoutMs)) {
        ok.push(c);
        if (stable) online.push(c);
        lastAuthAt = performance.now();
        if (lastAuthAt - reported > 15_000) {
          reported = lastAuthAt;
          process.send?.({ progress: `${ok.length} of ${indices.length} connected` });
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, indices.length) }, worker));
  return { ok, lastAuthAt };
}

/** Waits until every given client knows exactly `target` users online; returns the total shortfall (0 when settled). */
async function settle(group: readonly Client[], target: () => number, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    let short = 0;
    const t = target();
    for (const c of group) if (c.state === 'open' && c.knownCount !== t) short += Math.abs(t - c.knownCount);
    if (short === 0) return 0;
    if (performance.now() > deadline) return short;
    await sleep(group.length > 2000 ? 100 : 20);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function connect(from: number, to: number, concurrency: number, timeoutMs: number, mark: () => Promise<void>): Promise<ConnectResult> {
  await mark(); // re-bases the CPU snapshot here, and starts the CPU profile in --profile mode
  const start = performance.now();
  const framesBefore = sumPresence(online);
  const dupBefore = duplicates;
  const indices = Array.from({ length: to - from }, (_, i) => from + i);
  const { ok, lastAuthAt } = await openMany(indices, concurrency, timeoutMs, true);
  const short = await settle(online, () => online.length, Math.max(1000, timeoutMs - (performance.now() - start)));
  if (short > 0) fail(`presence not settled after connecting: ${short} CONNECTs missing (or extra) across the clients`);
  const elapsedMs = lastAuthAt - start;
  return {
    connected: ok.length,
    elapsedMs,
    rate: (ok.length / elapsedMs) * 1000,
    presenceFrames: sumPresence(online) - framesBefore,
    duplicates: duplicates - dupBefore,
    failures: takeFailures(),
  };
}

function sumPresence(group: readonly Client[]): number {
  let n = 0;
  for (const c of group) n += c.presenceFrames;
  return n;
}

// ---------------------------------------------------------------- broadcast

let chatBase = 0;
/** Per message of the running broadcast: receipts still missing, send time. */
let chatRemaining = new Int32Array(0);
let chatSentAt = new Float64Array(0);
let chatFirst = 0;
let onChatComplete: ((k: number, at: number) => void) | undefined;

function onChat(c: Client, k: number): void {
  c.chatReceived++;
  const i = k - chatFirst;
  if (i < 0 || i >= chatRemaining.length) {
    unexpectedFrames++;
    return;
  }
  if (--chatRemaining[i] === 0) onChatComplete?.(i, performance.now());
  else if (chatRemaining[i] < 0) fail(`CHAT m${k} delivered more often than there are clients`);
}

function sendChat(sender: Client, k: number): void {
  if (sender.ws) sender.ws.send(`{"type":"CHAT_MESSAGE","serverData":{"message":"m${k}"}}`);
  else sender.sio?.emit('CHAT_MESSAGE', { message: `m${k}` });
}

/** Runs `count` messages with `window` in flight; resolves with their completion times (ms), NaN for incomplete ones. */
function runChats(count: number, window: number, timeoutMs: number): Promise<{ fanout: Float64Array; elapsedMs: number; lost: number }> {
  const n = online.length;
  chatFirst = chatBase;
  chatBase += count;
  chatRemaining = new Int32Array(count).fill(n);
  chatSentAt = new Float64Array(count);
  const fanout = new Float64Array(count).fill(NaN);
  let sent = 0;
  let completed = 0;
  return new Promise((resolve) => {
    const start = performance.now();
    let lastAt = start;
    const finish = () => {
      clearTimeout(timer);
      onChatComplete = undefined;
      let lost = 0;
      for (let i = 0; i < count; i++) lost += i < sent ? Math.max(0, chatRemaining[i]) : n;
      resolve({ fanout, elapsedMs: lastAt - start, lost });
    };
    const timer = setTimeout(finish, timeoutMs);
    const sendOne = () => {
      const k = sent++;
      chatSentAt[k] = performance.now();
      sendChat(online[(k * 7919) % n], chatFirst + k);
    };
    onChatComplete = (i, at) => {
      fanout[i] = at - chatSentAt[i];
      lastAt = at;
      completed++;
      if (completed === count) return finish();
      if (sent < count) sendOne();
    };
    for (let i = 0; i < Math.min(window, count); i++) sendOne();
  });
}

async function broadcast(messages: number, window: number, timeoutMs: number, mark: () => Promise<void>): Promise<BroadcastResult> {
  const n = online.length;
  const perClientBefore = online.map((c) => c.chatReceived);
  // Warm-up (not measured): a few rounds of the same traffic.
  const warm = Math.min(messages, Math.max(window * 4, 20));
  const w = await runChats(warm, window, timeoutMs);
  if (w.lost > 0) fail(`warm-up broadcast lost ${w.lost} deliveries`);
  await mark();
  const r = await runChats(messages, window, timeoutMs);
  const sorted = sortNumbers(Array.from(r.fanout).filter((x) => !Number.isNaN(x)));
  // Every client got every message exactly once (the per-message counts could hide a swap).
  let perClientBad = 0;
  online.forEach((c, i) => {
    if (c.chatReceived - perClientBefore[i] !== warm + messages) perClientBad++;
  });
  if (perClientBad > 0) fail(`${perClientBad} clients did not receive every CHAT exactly once`);
  const delivered = messages * n - r.lost;
  return {
    online: n,
    messages,
    delivered,
    expected: messages * n,
    elapsedMs: r.elapsedMs,
    deliveredPerSec: (delivered / r.elapsedMs) * 1000,
    fanoutP50Ms: percentile(sorted, 50),
    fanoutP99Ms: percentile(sorted, 99),
    fanoutMaxMs: sorted.length ? sorted[sorted.length - 1] : NaN,
    lost: r.lost + w.lost,
    failures: takeFailures(),
  };
}

// ---------------------------------------------------------------- dialogs

interface DialogRun {
  senderOf: Int32Array;
  receiverOf: Int32Array;
  sentAt: Float64Array;
  /** 1 once the receiver got it. */
  received: Uint8Array;
  /** 1 once DELIVERY SUCCESS matched it. */
  succeeded: Uint8Array;
  idToSeq: Map<string, number>;
  /** DELIVERY SUCCESS that arrived before the receiver's copy: messageId -> (time, sender). */
  early: Map<string, { at: number; sender: number }>;
  rtt: number[];
  firstMeasured: number;
  success: number;
  errors: number;
  resolved: number;
}

let dialog: DialogRun | undefined;

function onDialog(c: Client, clientData: Obj | undefined, serverData: Obj): void {
  const d = dialog;
  const s = typeof clientData?.s === 'number' ? clientData.s : -1;
  const messageId = serverData.messageId;
  if (!d || s < 0 || s >= d.sentAt.length || typeof messageId !== 'string') {
    unexpectedFrames++;
    return;
  }
  if (d.receiverOf[s] !== c.idx) fail(`dialog ${s} reached u${c.idx} instead of u${d.receiverOf[s]}`);
  if (serverData.sender !== `u${d.senderOf[s]}` || typeof serverData.sendTime !== 'string') fail(`dialog ${s}: wrong sender or no sendTime`);
  if (d.received[s]) fail(`dialog ${s} received twice`);
  d.received[s] = 1;
  const early = d.early.get(messageId);
  if (early) {
    d.early.delete(messageId);
    succeed(d, s, early.sender, early.at);
  } else {
    d.idToSeq.set(messageId, s);
  }
}

function onDelivery(c: Client, status: unknown, messageId: unknown): void {
  const d = dialog;
  if (!d || typeof messageId !== 'string') {
    unexpectedFrames++;
    return;
  }
  const now = performance.now();
  if (status === 'SUCCESS') {
    const s = d.idToSeq.get(messageId);
    if (s === undefined) d.early.set(messageId, { at: now, sender: c.idx });
    else {
      d.idToSeq.delete(messageId);
      succeed(d, s, c.idx, now);
    }
  } else {
    d.errors++;
    d.resolved++;
  }
}

function succeed(d: DialogRun, s: number, sender: number, at: number): void {
  if (d.senderOf[s] !== sender) fail(`DELIVERY of dialog ${s} went to u${sender}, not its sender u${d.senderOf[s]}`);
  if (d.succeeded[s]) fail(`dialog ${s}: two DELIVERY SUCCESS`);
  d.succeeded[s] = 1;
  d.success++;
  d.resolved++;
  if (s >= d.firstMeasured) d.rtt.push(at - d.sentAt[s]);
}

async function runDialogs(rate: number, durationMs: number, warmupMs: number, drainMs: number, seed: number, mark: () => Promise<void>): Promise<DialogResult> {
  const n = online.length;
  const total = Math.round((rate * (warmupMs + durationMs)) / 1000);
  const random = rng(seed);
  const d: DialogRun = {
    senderOf: new Int32Array(total),
    receiverOf: new Int32Array(total),
    sentAt: new Float64Array(total),
    received: new Uint8Array(total),
    succeeded: new Uint8Array(total),
    idToSeq: new Map(),
    early: new Map(),
    rtt: [],
    firstMeasured: total,
    success: 0,
    errors: 0,
    resolved: 0,
  };
  const senders: Client[] = new Array<Client>(total);
  for (let s = 0; s < total; s++) {
    const a = Math.floor(random() * n);
    let b = Math.floor(random() * (n - 1));
    if (b >= a) b++;
    senders[s] = online[a];
    d.senderOf[s] = online[a].idx;
    d.receiverOf[s] = online[b].idx;
  }
  dialog = d;
  let sent = 0;
  let marking = false;
  let measuredStart = 0;
  let measuredEnd = 0;
  const start = performance.now();
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      const elapsed = now - start;
      if (!marking && elapsed >= warmupMs) {
        marking = true;
        void mark().then(() => {
          d.firstMeasured = sent;
          measuredStart = performance.now();
        });
      }
      const due = Math.min(total, Math.floor((elapsed * rate) / 1000));
      while (sent < due) {
        const s = sent++;
        const c = senders[s];
        const receiver = `u${d.receiverOf[s]}`;
        d.sentAt[s] = performance.now();
        if (c.ws) c.ws.send(`{"type":"DIALOG_MESSAGE","clientData":{"s":${s}},"serverData":{"receiver":"${receiver}"}}`);
        else c.sio?.emit('DIALOG_MESSAGE', { clientData: { s }, serverData: { receiver } });
      }
      if (sent >= total) {
        measuredEnd = performance.now();
        resolve();
      } else setTimeout(tick, 1);
    };
    tick();
  });
  const deadline = performance.now() + drainMs;
  while (d.resolved < sent && performance.now() < deadline) await sleep(10);
  // Give early SUCCESSes a moment to meet their receiver's copy.
  if (d.early.size > 0) await sleep(50);
  let lost = 0;
  for (let s = 0; s < sent; s++) if (!d.succeeded[s]) lost++;
  // Messages answered ERROR are reported, not lost (as many unmatched messages as ERRORs).
  lost = Math.max(0, lost - d.errors) + d.early.size;
  if (d.early.size > 0) fail(`${d.early.size} DELIVERY SUCCESS for dialogs the receiver never got`);
  dialog = undefined;
  const sorted = sortNumbers(d.rtt);
  const measuredSent = sent - d.firstMeasured;
  return {
    online: n,
    rate,
    sent,
    sentPerSec: measuredEnd > measuredStart ? (measuredSent / (measuredEnd - measuredStart)) * 1000 : NaN,
    success: d.success,
    deliveryErrors: d.errors,
    lost,
    measured: sorted.length,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.length ? sorted[sorted.length - 1] : NaN,
    failures: takeFailures(),
  };
}

// ---------------------------------------------------------------- churn

function closeClient(c: Client): Promise<void> {
  return new Promise((resolve) => {
    if (c.state === 'closed') return resolve();
    c.closing = true;
    const timer = setTimeout(() => {
      c.ws?.terminate();
      resolve();
    }, 10_000);
    c.closed = () => {
      clearTimeout(timer);
      resolve();
    };
    if (c.ws) c.ws.close(1000);
    else c.sio?.disconnect();
  });
}

async function churn(from: number, size: number, storms: number, concurrency: number, timeoutMs: number): Promise<ChurnResult> {
  const n = online.length;
  const before = sumPresence(online);
  const start = performance.now();
  let lost = 0;
  for (let storm = 0; storm < storms; storm++) {
    const indices = Array.from({ length: size }, (_, i) => from + i);
    const { ok } = await openMany(indices, concurrency, timeoutMs, false);
    if (ok.length !== size) fail(`churn storm ${storm}: ${size - ok.length} logins failed`);
    const shortIn = await settle(online, () => n + ok.length, timeoutMs);
    if (shortIn > 0) {
      lost += shortIn;
      fail(`churn storm ${storm}: ${shortIn} CONNECTs missing`);
    }
    await Promise.all(ok.map((c) => closeClient(c)));
    for (const c of ok) clients.delete(c.idx);
    const shortOut = await settle(online, () => n, timeoutMs);
    if (shortOut > 0) {
      lost += shortOut;
      fail(`churn storm ${storm}: ${shortOut} DISCONNECTs missing`);
    }
  }
  const elapsedMs = performance.now() - start;
  return {
    online: n,
    storms,
    size,
    elapsedMs,
    eventsPerSec: ((2 * size * storms) / elapsedMs) * 1000,
    presenceFrames: sumPresence(online) - before,
    lost,
    failures: takeFailures(),
  };
}

// ---------------------------------------------------------------- IPC

let nextMark = 1;
const markWaiters = new Map<number, () => void>();

/** Asks the orchestrator to take its measurement snapshot now; resolves once it did. */
function mark(): Promise<void> {
  const id = nextMark++;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      markWaiters.delete(id);
      resolve();
    }, 5000);
    markWaiters.set(id, () => {
      clearTimeout(timer);
      resolve();
    });
    process.send?.({ mark: id });
  });
}

async function handle(command: LoadgenCommand): Promise<unknown> {
  switch (command.cmd) {
    case 'init':
      init = command.init;
      bitsetBytes = Math.ceil(init.maxUsers / 8);
      return { pid: process.pid };
    case 'connect':
      return connect(command.from, command.to, command.concurrency, command.timeoutMs, mark);
    case 'broadcast':
      return broadcast(command.messages, command.window, command.timeoutMs, mark);
    case 'dialog':
      return runDialogs(command.rate, command.durationMs, command.warmupMs, command.drainMs, command.seed, mark);
    case 'churn':
      return churn(command.from, command.size, command.storms, command.concurrency, command.timeoutMs);
    case 'idle': {
      const before = framesSeen;
      const closedBefore = unexpectedCloses;
      await sleep(command.durationMs);
      const r: IdleResult = { unexpectedFrames: framesSeen - before, closed: unexpectedCloses - closedBefore };
      return r;
    }
    case 'exit':
      shuttingDown = true;
      for (const c of clients.values()) {
        c.ws?.terminate();
        c.sio?.disconnect();
      }
      setTimeout(() => process.exit(0), 100);
      return { duplicates, anomalies, unexpectedFrames, unexpectedCloses };
  }
}

process.on('message', (message: { id?: number; markAck?: number } & Partial<LoadgenCommand>) => {
  if (message.markAck !== undefined) {
    markWaiters.get(message.markAck)?.();
    markWaiters.delete(message.markAck);
    return;
  }
  const id = message.id ?? 0;
  handle(message as LoadgenCommand).then(
    (result) => process.send?.({ id, ok: true, result }),
    (err: unknown) => process.send?.({ id, ok: false, error: err instanceof Error ? err.stack ?? err.message : String(err) }),
  );
});
process.on('disconnect', () => process.exit(0));
