/**
 * Preloaded (`node --expose-gc -r gc-hook.js ...`) into every server the bench starts, ours
 * included, so that no server carries bench code of its own: it answers the orchestrator over the
 * IPC channel with memory after a forced GC, GC pause totals, and CPU profiles of a phase.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';

type HookRequest =
  | { bench: 'mem'; id: number }
  | { bench: 'gcstats'; id: number }
  | { bench: 'mark'; id: number; text: string }
  | { bench: 'profile-start'; id: number; intervalUs: number }
  | { bench: 'profile-stop'; id: number; file: string };

const KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

const gcStats = { count: 0, totalMs: 0, maxMs: 0, byKind: {} as Record<string, { count: number; totalMs: number }> };
let forcing = false;

const observer = new PerformanceObserver((list) => {
  if (forcing) return;
  for (const entry of list.getEntries()) {
    const kind = KINDS[(entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? -1] ?? 'other';
    gcStats.count++;
    gcStats.totalMs += entry.duration;
    if (entry.duration > gcStats.maxMs) gcStats.maxMs = entry.duration;
    const k = (gcStats.byKind[kind] ??= { count: 0, totalMs: 0 });
    k.count++;
    k.totalMs += entry.duration;
  }
});
observer.observe({ entryTypes: ['gc'] });

let session: Session | undefined;

function reply(id: number, body: Record<string, unknown>): void {
  process.send?.({ benchReply: id, ...body });
}

function onRequest(message: HookRequest): void {
  switch (message.bench) {
    case 'mem': {
      const gc = (globalThis as { gc?: () => void }).gc;
      forcing = true;
      gc?.();
      gc?.();
      // Let the concurrent sweeper return the freed pages before reading RSS, then collect once more.
      setTimeout(() => {
        gc?.();
        const m = process.memoryUsage();
        // The observer is called asynchronously: keep ignoring the forced collections until then.
        setTimeout(() => (forcing = false), 50);
        // The young generation's pages (empty after the collection, but V8 keeps them: RSS includes them).
        const youngGen = getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.physical_space_size ?? 0;
        reply(message.id, { forced: gc !== undefined, rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, youngGen });
      }, 300);
      return;
    }
    case 'gcstats':
      reply(message.id, { gc: JSON.parse(JSON.stringify(gcStats)) as unknown });
      return;
    case 'mark':
      process.stdout.write(`BENCH-MARK ${Date.now()} ${message.text}\n`);
      reply(message.id, {});
      return;
    case 'profile-start':
      session ??= new Session();
      session.connect();
      session.post('Profiler.enable', () =>
        session!.post('Profiler.setSamplingInterval', { interval: message.intervalUs }, () =>
          session!.post('Profiler.start', () => reply(message.id, {})),
        ),
      );
      return;
    case 'profile-stop':
      if (!session) {
        reply(message.id, { error: 'no profile running' });
        return;
      }
      session.post('Profiler.stop', (err, result) => {
        if (err) {
          reply(message.id, { error: String(err) });
        } else {
          writeFileSync(message.file, JSON.stringify(result.profile));
          reply(message.id, { file: message.file });
        }
        session?.disconnect();
      });
      return;
  }
}

if (process.send) {
  process.on('message', (message: unknown) => {
    if (typeof message === 'object' && message !== null && 'bench' in message) onRequest(message as HookRequest);
  });
  process.channel?.unref();
  // The orchestrator is gone (crashed or killed): a bench server never outlives it.
  process.on('disconnect', () => process.exit(0));
}
