/**
 * The capacity mode's side of a load generator (bench/src/orchestrator/capacity.ts drives several
 * of them against one server): logging its share of the users in, waiting for presence to settle
 * on a global count, the login-cost probe, and one CHAT counted across processes.
 */
import {
  monoMs,
  type CapacityCommand,
  type CapChatResult,
  type CapOpenResult,
  type CapProbeResult,
  type CapSettleResult,
} from '../common/capacity-messages';
import { chatCapture } from './broadcast';
import { newClient, settle } from './connect';
import { authFailed, onWsFrame } from './frames';
import { LeanWs } from './lean-ws';
import { clients, counters, fail, online, session, takeFailures, type Client } from './state';

/**
 * Opens one client with the minimal WebSocket client (lean-ws.ts), its frames checked by the
 * same code as the ws clients' (frames.ts); resolves true on AUTH SUCCESS. `first`, when given,
 * gets the size of the first frame (the AUTH_MESSAGE).
 */
function open(c: Client, timeoutMs: number, first?: (bytes: number) => void): Promise<boolean> {
  const init = session.init;
  clients.set(c.idx, c);
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => done(false, 'no AUTH_MESSAGE in time'), timeoutMs);
    const done = (ok: boolean, why?: string) => {
      clearTimeout(timer);
      c.authed = undefined;
      if (ok) c.state = 'open';
      else {
        fail(`client u${c.idx}: ${why ?? 'failed'}`);
        c.lean?.terminate();
      }
      resolve(ok);
    };
    c.authed = done;
    let frames = 0;
    c.lean = new LeanWs(init.urls[c.idx % init.urls.length], init.tokens[c.idx], init.localAddress, {
      open: () => undefined,
      message: (data) => {
        if (frames++ === 0) first?.(data.length);
        onWsFrame(c, data);
      },
      close: (code, why) => {
        const was = c.state;
        c.state = 'closed';
        if (c.authed) return authFailed(c, `closed before AUTH SUCCESS (${code}${why ? `: ${why}` : ''})`);
        if (!c.closing && !session.shuttingDown && was === 'open') {
          counters.unexpectedCloses++;
          fail(`client u${c.idx} closed unexpectedly (${code}${why ? `: ${why}` : ''})`);
        }
        c.closed?.();
      },
    });
  });
}

/** Opens clients with at most `concurrency` handshakes in flight; the stable ones join `online`. */
async function openMany(indices: number[], concurrency: number, timeoutMs: number): Promise<{ ok: Client[] }> {
  const ok: Client[] = [];
  let next = 0;
  const worker = async () => {
    while (next < indices.length) {
      const c = newClient(indices[next++]);
      if (await open(c, timeoutMs)) {
        ok.push(c);
        online.push(c);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, indices.length) }, worker));
  return { ok };
}

async function capOpen(indices: number[], wave: number, continuous: boolean, timeoutMs: number): Promise<CapOpenResult> {
  const startAt = monoMs();
  let connected = 0;
  let lastAuthAt = startAt;
  const deadline = performance.now() + timeoutMs;
  const mark = () => {
    lastAuthAt = monoMs();
  };
  if (continuous) {
    const { ok } = await openMany(indices, wave, timeoutMs);
    connected = ok.length;
    mark();
  } else {
    for (let i = 0; i < indices.length; i += wave) {
      const left = deadline - performance.now();
      if (left <= 0) {
        fail(`cap-open: ${indices.length - i} logins not started within ${timeoutMs} ms`);
        break;
      }
      const { ok } = await openMany(indices.slice(i, i + wave), wave, left);
      connected += ok.length;
      if (ok.length > 0) mark();
    }
  }
  return { connected, startAt, lastAuthAt, failures: takeFailures() };
}

async function capSettle(target: number, timeoutMs: number): Promise<CapSettleResult> {
  const short = await settle(online, () => target, timeoutMs);
  if (short > 0) fail(`presence not settled at ${target} online: ${short} CONNECTs missing (or extra) across ${online.length} clients`);
  return { short, clients: online.length, failures: takeFailures() };
}

/** The probe's clients, logged in by cap-probe and out by cap-probe-close. */
let probes: Client[] = [];

async function capProbe(indices: number[], timeoutMs: number): Promise<CapProbeResult> {
  const authBytes: number[] = [];
  const loginMs: number[] = [];
  for (const idx of indices) {
    const c = newClient(idx);
    const started = monoMs();
    let bytes = NaN;
    if (!(await open(c, timeoutMs, (n) => (bytes = n)))) continue;
    loginMs.push(monoMs() - started);
    authBytes.push(bytes);
    probes.push(c);
  }
  return { logins: loginMs.length, authBytes, loginMs, failures: takeFailures() };
}

function closeOne(c: Client, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (c.state === 'closed') return resolve();
    c.closing = true;
    const timer = setTimeout(() => {
      c.lean?.terminate();
      resolve();
    }, timeoutMs);
    c.closed = () => {
      clearTimeout(timer);
      resolve();
    };
    c.lean?.close(1000);
  });
}

async function capProbeClose(timeoutMs: number): Promise<{ closed: number; failures: string[] }> {
  const closing = probes;
  probes = [];
  for (const c of closing) {
    await closeOne(c, timeoutMs);
    clients.delete(c.idx);
  }
  return { closed: closing.length, failures: takeFailures() };
}

/** The CHAT being counted: receipts per client of this process. */
let chat: { k: number; got: Uint8Array; received: number; firstAt: number; lastAt: number; done?: () => void } | undefined;
const clientPos = new Map<number, number>();

function capChatArm(k: number): { armed: number } {
  clientPos.clear();
  online.forEach((c, i) => clientPos.set(c.idx, i));
  chat = { k, got: new Uint8Array(online.length), received: 0, firstAt: NaN, lastAt: NaN };
  chatCapture.on = (c, got) => {
    const run = chat;
    const i = clientPos.get(c.idx);
    if (!run || got !== run.k || i === undefined) {
      fail(`CHAT m${got} to u${c.idx}: not the message being counted`);
      return;
    }
    if (run.got[i]) {
      fail(`CHAT m${got} reached u${c.idx} twice`);
      return;
    }
    const now = monoMs();
    run.got[i] = 1;
    if (run.received++ === 0) run.firstAt = now;
    run.lastAt = now;
    if (run.received === run.got.length) run.done?.();
  };
  return { armed: online.length };
}

function capChatSend(k: number): { sentAt: number } {
  const sender = online[0];
  if (!sender?.lean) throw new Error('no client to send the CHAT from');
  const sentAt = monoMs();
  sender.lean.send(`{"type":"CHAT_MESSAGE","serverData":{"message":"m${k}"}}`);
  return { sentAt };
}

async function capChatWait(k: number, timeoutMs: number): Promise<CapChatResult> {
  const run = chat;
  if (!run || run.k !== k) throw new Error(`CHAT m${k} was not armed`);
  if (run.received < run.got.length) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      run.done = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
  chatCapture.on = undefined;
  chat = undefined;
  if (run.received < run.got.length) fail(`CHAT m${k}: ${run.got.length - run.received} of ${run.got.length} clients did not get it within ${timeoutMs} ms`);
  return { received: run.received, expected: run.got.length, firstAt: run.firstAt, lastAt: run.lastAt, failures: takeFailures() };
}

export function handleCapacity(command: CapacityCommand): Promise<unknown> | unknown {
  switch (command.cmd) {
    case 'cap-open':
      return capOpen(command.indices, command.wave, command.continuous, command.timeoutMs);
    case 'cap-settle':
      return capSettle(command.target, command.timeoutMs);
    case 'cap-probe':
      return capProbe(command.indices, command.timeoutMs);
    case 'cap-probe-close':
      return capProbeClose(command.timeoutMs);
    case 'cap-chat-arm':
      return capChatArm(command.k);
    case 'cap-chat-send':
      return capChatSend(command.k);
    case 'cap-chat-wait':
      return capChatWait(command.k, command.timeoutMs);
  }
}
