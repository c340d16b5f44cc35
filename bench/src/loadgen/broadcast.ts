/** broadcast: CHAT messages from rotating senders, `window` in flight; counted per message and per client. */
import { performance } from 'node:perf_hooks';
import type { BroadcastResult } from '../common/messages';
import { percentile, sortNumbers } from '../common/stats';
import { counters, fail, online, takeFailures, type Client } from './state';

let chatBase = 0;
/** Per message of the running broadcast: receipts still missing, send time. */
let chatRemaining = new Int32Array(0);
let chatSentAt = new Float64Array(0);
let chatFirst = 0;
let onChatComplete: ((k: number, at: number) => void) | undefined;

/** The capacity mode's own count of a CHAT (loadgen/capacity.ts): when set, it takes every receipt. */
export const chatCapture: { on?: (c: Client, k: number) => void } = {};

export function onChat(c: Client, k: number): void {
  if (chatCapture.on) return chatCapture.on(c, k);
  c.chatReceived++;
  const i = k - chatFirst;
  if (i < 0 || i >= chatRemaining.length) {
    counters.unexpectedFrames++;
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

export async function broadcast(messages: number, window: number, timeoutMs: number, mark: () => Promise<void>): Promise<BroadcastResult> {
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
