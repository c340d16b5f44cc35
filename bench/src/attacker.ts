/**
 * A hostile client, in its own process (forked by the orchestrator, like the load generator), so
 * that neither the gateway's nor the load generator's event loop runs it. It sends the worst
 * frames of its mode as fast as its socket drains and reconnects 20 ms after every close, until
 * told to stop (after test/support/attackers/attacker.js, the e2e tests' attacker):
 *
 *   preauth  no token: frames of PRE_AUTH_MAX_FRAME_BYTES nested as deep as they go (typed
 *            CHAT_MESSAGE, then AUTH_MESSAGE, the kind the gateway must scan), then one byte over
 *            the limit (closed with 1009), and again on a new connection
 *   joined   with a token, once logged in: MAX_MESSAGE_FRAME_BYTES frames nested as deep as they go,
 *            frames of that size made of many small values (the most parsing per byte), and frames
 *            just under MAX_FRAME_BYTES: a SAVE_AVATAR whose image is escaped quotes (the most
 *            scanning per byte, and the only frame type allowed that size) and one of '['
 *
 * Its frames go out with an all-zero mask, so that masking costs it nothing while the server
 * still unmasks every byte: the cheapest attack for the attacker on the machine it shares.
 *
 * IPC: { cmd: 'start', spec } begins; { cmd: 'stop' } stops (the socket is destroyed) and answers
 * what it did since the start; { cmd: 'exit' }, or the orchestrator gone, ends the process.
 */
import { WebSocket } from 'ws';
import type { AttackerCommand, AttackerSpec, AttackerStats } from './common/messages';

function deep(bytes: number, type: string): string {
  const head = `{"type":"${type}","x":`;
  const depth = Math.floor((bytes - head.length - 1) / 2);
  return head + '['.repeat(depth) + ']'.repeat(depth) + '}';
}

function manyValues(bytes: number): string {
  const head = '{"type":"DIALOG_MESSAGE","serverData":{"messageId":"x"},"junk":{';
  const parts: string[] = [];
  let size = head.length + 2;
  for (let i = 0; size < bytes - 16; i++) {
    const part = `"k${i}":0`;
    parts.push(part);
    size += part.length + 1;
  }
  return `${head}${parts.join(',')}}}`;
}

function framesOf(spec: AttackerSpec): Buffer[] {
  const { preAuthFrameBytes: pre, messageFrameBytes: msg, maxFrameBytes: max } = spec.limits;
  // Just under the frame limit: a frame over it would be refused by ws from its header alone.
  const big = max - 1024;
  const avatarHead = '{"type":"SAVE_AVATAR","serverData":{"imageBase64":"';
  const quotes = Math.floor((big - avatarHead.length - 3) / 2);
  const frames =
    spec.mode === 'preauth'
      ? [deep(pre, 'CHAT_MESSAGE'), deep(pre, 'AUTH_MESSAGE'), deep(pre - 64, 'AUTH_MESSAGE'), 'x'.repeat(pre + 1)]
      : [deep(msg, 'DIALOG_MESSAGE'), manyValues(msg), `${avatarHead}${'\\"'.repeat(quotes)}"}}`, '['.repeat(big)];
  return frames.map((f) => Buffer.from(f));
}

let spec: AttackerSpec | undefined;
let frames: Buffer[] = [];
let socket: WebSocket | undefined;
let running = false;
let stats: AttackerStats = emptyStats();

function emptyStats(): AttackerStats {
  return { frames: 0, bytes: 0, connections: 0, logins: 0, answers: 0, closes: {} };
}

function count(key: string): void {
  stats.closes[key] = (stats.closes[key] ?? 0) + 1;
}

function connect(): void {
  if (!running || !spec) return;
  stats.connections++;
  const s = spec;
  const headers: Record<string, string> = s.mode === 'joined' && s.token ? { authToken: s.token } : {};
  const ws = new WebSocket(s.url, {
    headers,
    perMessageDeflate: false,
    maxPayload: 64 * 1024 * 1024,
    generateMask: (mask: Buffer) => void mask.fill(0),
  });
  socket = ws;
  const high = 2 * Math.max(...frames.map((f) => f.length));
  let i = 0;
  let pumping = false;
  const pump = () => {
    while (running && ws.readyState === WebSocket.OPEN && ws.bufferedAmount < high) {
      const frame = frames[i++ % frames.length];
      ws.send(frame, { binary: false });
      stats.frames++;
      stats.bytes += frame.length;
    }
    if (running && ws.readyState === WebSocket.OPEN) setTimeout(pump, 5);
  };
  const startPumping = () => {
    if (pumping) return;
    pumping = true;
    pump();
  };
  ws.on('open', () => {
    if (s.mode === 'preauth') startPumping();
  });
  ws.on('message', (data: Buffer) => {
    stats.answers++;
    // A joined attacker attacks the logged-in path: before AUTH SUCCESS its frames would only be pre-auth ones.
    if (s.mode === 'joined' && !pumping && data.includes('"AUTH_MESSAGE"') && data.includes('"SUCCESS"')) {
      stats.logins++;
      startPumping();
    }
  });
  ws.on('error', () => undefined);
  ws.on('unexpected-response', (_req, res) => {
    count(`http ${res.statusCode}`);
    res.resume();
  });
  ws.on('close', (code: number) => {
    if (socket === ws) socket = undefined;
    if (!running) return;
    count(String(code));
    setTimeout(connect, 20);
  });
}

function handle(command: AttackerCommand): unknown {
  switch (command.cmd) {
    case 'start':
      spec = command.spec;
      frames = framesOf(spec);
      stats = emptyStats();
      running = true;
      connect();
      return { pid: process.pid, frameBytes: frames.map((f) => f.length) };
    case 'stop': {
      running = false;
      socket?.terminate();
      socket = undefined;
      const done = stats;
      stats = emptyStats();
      return done;
    }
    case 'exit':
      running = false;
      socket?.terminate();
      setTimeout(() => process.exit(0), 50);
      return {};
  }
}

process.on('message', (message: AttackerCommand & { id: number }) => {
  try {
    process.send?.({ id: message.id, ok: true, result: handle(message) });
  } catch (err) {
    process.send?.({ id: message.id, ok: false, error: err instanceof Error ? err.stack ?? err.message : String(err) });
  }
});
process.on('disconnect', () => process.exit(0));
