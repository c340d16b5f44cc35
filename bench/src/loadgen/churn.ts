/** presence churn: storms of extra users logging in, then out, while the stable clients watch. */
import { performance } from 'node:perf_hooks';
import type { ChurnResult } from '../common/messages';
import { openMany, settle } from './connect';
import { sumPresence } from './presence';
import { clients, fail, online, takeFailures, type Client } from './state';

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

export async function churn(from: number, size: number, storms: number, concurrency: number, timeoutMs: number): Promise<ChurnResult> {
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
