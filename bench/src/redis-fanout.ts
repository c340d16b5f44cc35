/**
 * Redis's own CPU per PUBLISH on the broadcast channel as the number of subscribed gateway nodes
 * grows (docs/scaling.md builds its Redis model on it): K subscriber connections (one per node),
 * 200-byte messages (a CHAT frame with its bus header), published one at a time, each awaited (what
 * a quiet gateway does: every PUBLISH is its own Redis event-loop turn) and pipelined 100 at a time
 * (what a busy one gets: Redis reads many commands per turn). CPU is Redis's INFO used_cpu_user +
 * used_cpu_sys (µs resolution). A fresh redis-server on a free port of 127.0.0.1.
 *
 *   npm run bench:redis-fanout        (about 30 s; writes bench/results/redis-fanout-latest.md)
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import Redis from 'ioredis';
import { RESULTS } from './orchestrator/paths';
import { freePort } from './procs';

const SUBSCRIBERS = [1, 2, 4, 8, 16, 32];
const MESSAGE = 'x'.repeat(200);

async function redisCpuUs(client: Redis): Promise<number> {
  const info = await client.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
  return (field('used_cpu_user') + field('used_cpu_sys')) * 1e6;
}

async function measure(port: number, subscribers: number, count: number, batch: number): Promise<number> {
  const publisher = new Redis(port, '127.0.0.1');
  const subs: Redis[] = [];
  let received = 0;
  for (let i = 0; i < subscribers; i++) {
    const sub = new Redis(port, '127.0.0.1');
    await sub.subscribe('broadcast');
    sub.on('message', () => received++);
    subs.push(sub);
  }
  const before = await redisCpuUs(publisher);
  for (let sent = 0; sent < count; sent += batch) {
    if (batch === 1) await publisher.publish('broadcast', MESSAGE);
    else {
      const pipeline = publisher.pipeline();
      for (let j = 0; j < batch; j++) pipeline.publish('broadcast', MESSAGE);
      await pipeline.exec();
    }
  }
  const deadline = Date.now() + 30_000;
  while (received < count * subscribers) {
    if (Date.now() > deadline) throw new Error(`lost messages: ${received} of ${count * subscribers}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const cpu = (await redisCpuUs(publisher)) - before;
  publisher.disconnect();
  for (const sub of subs) sub.disconnect();
  return cpu / count;
}

async function main(): Promise<void> {
  const port = await freePort();
  const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  try {
    await new Promise((resolve) => setTimeout(resolve, 300));
    const rows: string[] = [];
    for (const k of SUBSCRIBERS) {
      const single = await measure(port, k, 5000, 1);
      const pipelined = await measure(port, k, 20_000, 100);
      rows.push(`| ${k} | ${single.toFixed(1)} | ${pipelined.toFixed(2)} |`);
      console.log(`K=${k}: ${single.toFixed(1)} µs one at a time, ${pipelined.toFixed(2)} µs pipelined`);
    }
    const load = loadavg().map((l) => l.toFixed(2)).join(' ');
    const md = [
      '# Redis CPU per PUBLISH versus subscribed nodes',
      '',
      `- **Date**: ${new Date().toISOString()}; ${cpus()[0]?.model ?? 'cpu'}, ${cpus().length} cores, Node ${process.version}; load average at the end ${load}.`,
      '- Reproduce: `npm run bench:redis-fanout` (`bench/src/redis-fanout.ts`): a fresh redis-server, K subscriber connections,',
      '  200-byte messages; Redis CPU from INFO (used_cpu_user + used_cpu_sys) divided by the messages published.',
      '',
      '| subscribed nodes K | Redis CPU per PUBLISH, one at a time (µs) | pipelined 100 at a time (µs) |',
      '|---|---|---|',
      ...rows,
      '',
    ].join('\n');
    writeFileSync(`${RESULTS}/redis-fanout-latest.md`, md);
  } finally {
    server.kill();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
