/**
 * dialogs: open loop at a fixed rate between random pairs (seeded); round trip = from the send to
 * the DELIVERY SUCCESS at the sender, the receiver's copy matched by messageId whichever comes first.
 */
import { performance } from 'node:perf_hooks';
import type { DialogResult } from '../common/messages';
import { percentile, rng, sortNumbers } from '../common/stats';
import type { Obj } from './frames';
import { counters, fail, online, session, sleep, takeFailures, type Client } from './state';

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

export function onDialog(c: Client, clientData: Obj | undefined, serverData: Obj): void {
  const d = dialog;
  const s = typeof clientData?.s === 'number' ? clientData.s : -1;
  const messageId = serverData.messageId;
  if (!d || s < 0 || s >= d.sentAt.length || typeof messageId !== 'string') {
    counters.unexpectedFrames++;
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

export function onDelivery(c: Client, status: unknown, messageId: unknown): void {
  const d = dialog;
  if (!d || typeof messageId !== 'string') {
    counters.unexpectedFrames++;
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

/** The node a client is connected to: client i connects to urls[i % urls.length] (loadgen/connect.ts). */
const nodeOf = (c: Client) => c.idx % session.init.urls.length;

export async function runDialogs(
  rate: number,
  durationMs: number,
  warmupMs: number,
  drainMs: number,
  seed: number,
  mark: () => Promise<void>,
  samples = false,
  crossNode = false,
): Promise<DialogResult> {
  const n = online.length;
  const byNode: Client[][] = Array.from({ length: session.init.urls.length }, () => []);
  for (const c of online) byNode[nodeOf(c)].push(c);
  if (crossNode && byNode.filter((g) => g.length > 0).length < 2) throw new Error('cross-node dialogs need clients on two nodes');
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
  let crossed = 0;
  for (let s = 0; s < total; s++) {
    const a = Math.floor(random() * n);
    let receiver: Client;
    if (crossNode) {
      // Uniform among the clients of the other nodes.
      const home = nodeOf(online[a]);
      let r = Math.floor(random() * (n - byNode[home].length));
      let node = 0;
      for (; ; node++) {
        if (node === home) continue;
        if (r < byNode[node].length) break;
        r -= byNode[node].length;
      }
      receiver = byNode[node][r];
    } else {
      let b = Math.floor(random() * (n - 1));
      if (b >= a) b++;
      receiver = online[b];
    }
    if (nodeOf(receiver) !== nodeOf(online[a])) crossed++;
    senders[s] = online[a];
    d.senderOf[s] = online[a].idx;
    d.receiverOf[s] = receiver.idx;
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
    crossNode: crossed,
    sent,
    sentPerSec: measuredEnd > measuredStart ? (measuredSent / (measuredEnd - measuredStart)) * 1000 : NaN,
    success: d.success,
    deliveryErrors: d.errors,
    lost,
    measured: sorted.length,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.length ? sorted[sorted.length - 1] : NaN,
    ...(samples ? { rttMs: Array.from(sorted, (x) => Math.round(x * 1000) / 1000) } : {}),
    failures: takeFailures(),
  };
}
