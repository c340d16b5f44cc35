/** Opening clients (ws or socket.io-client, the token in the authToken header) and waiting for presence to settle. */
import { performance } from 'node:perf_hooks';
import { io as sioConnect } from 'socket.io-client';
import { WebSocket } from 'ws';
import type { ConnectResult } from '../common/messages';
import { onChat } from './broadcast';
import { onDelivery, onDialog } from './dialog';
import { authFailed, onObject, onWsFrame, type Obj } from './frames';
import { forget, know, sumPresence, userIndex } from './presence';
import { clients, counters, fail, online, session, sleep, takeFailures, type Client } from './state';

export function newClient(idx: number): Client {
  return {
    idx,
    state: 'connecting',
    closing: false,
    known: new Uint8Array(session.bitsetBytes),
    knownCount: 0,
    presenceFrames: 0,
    chatReceived: 0,
  };
}

/** Opens one client; resolves true on AUTH SUCCESS, false (with a failure recorded) otherwise. */
function open(c: Client, timeoutMs: number): Promise<boolean> {
  const init = session.init;
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
      if (!c.closing && !session.shuttingDown && was === 'open') {
        counters.unexpectedCloses++;
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
        ...(init.localAddress ? { localAddress: init.localAddress } : {}),
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
        counters.framesSeen++;
        c.presenceFrames++;
        if (data.connectionStatus === 'CONNECT') know(c, userIndex(data.userId));
        else forget(c, userIndex(data.userId));
      });
      s.on('CHAT_MESSAGE', (data: Obj) => {
        counters.framesSeen++;
        if (typeof data.sender !== 'string' || typeof data.sendTime !== 'string' || typeof data.message !== 'string') {
          fail('CHAT_MESSAGE without message, sender or sendTime');
          return;
        }
        onChat(c, Number(data.message.slice(1)));
      });
      s.on('DIALOG_MESSAGE', (frame: Obj) => {
        counters.framesSeen++;
        onDialog(c, frame.clientData as Obj | undefined, (frame.serverData ?? {}) as Obj);
      });
      s.on('DELIVERY_MESSAGE', (frame: Obj) => {
        counters.framesSeen++;
        onDelivery(c, frame.status, ((frame.serverData ?? {}) as Obj).messageId);
      });
      s.on('ERROR_MESSAGE', (frame: Obj) => fail(`ERROR_MESSAGE: ${JSON.stringify(frame).slice(0, 300)}`));
      s.on('connect_error', (err: Error & { data?: unknown }) => authFailed(c, `connect_error ${err.message} ${JSON.stringify(err.data ?? '')}`));
      s.on('disconnect', (reason) => onClose(reason));
    }
  });
}

/** Opens clients [from, to) with at most `concurrency` handshakes in flight. */
export async function openMany(indices: number[], concurrency: number, timeoutMs: number, stable: boolean): Promise<{ ok: Client[]; lastAuthAt: number }> {
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
export async function settle(group: readonly Client[], target: () => number, timeoutMs: number): Promise<number> {
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

export async function connect(from: number, to: number, concurrency: number, timeoutMs: number, mark: () => Promise<void>): Promise<ConnectResult> {
  await mark(); // re-bases the CPU snapshot here, and starts the CPU profile in --profile mode
  const start = performance.now();
  const framesBefore = sumPresence(online);
  const dupBefore = counters.duplicates;
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
    duplicates: counters.duplicates - dupBefore,
    failures: takeFailures(),
  };
}
