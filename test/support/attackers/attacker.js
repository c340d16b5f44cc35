// A hostile client in its own process (so that its CPU and memory are not the gateway's):
//   node attacker.js <wsUrl> <mode> <durationMs> [token]
// It sends the worst frames of its mode as fast as its socket drains, reconnects whenever it is
// closed, and prints one JSON line at the end: {"frames":N,"connections":N,"closes":{"<code>":N}}.
// Modes:
//   preauth  no token; frames of PRE_AUTH size nested as deep as they go, then deep frames typed
//            AUTH_MESSAGE, then oversized ones (1009)
//   joined   with a token; alternates 64 KB frames nested deep, 64 KB frames of many small values
//            (the most parsing per byte), 1.4 MB SAVE_AVATAR frames of escaped quotes (the most
//            scanning per byte) and 1.4 MB frames of '['
//   queue    with a token; after its AUTH SUCCESS one real avatar (argv[6] = path of a PNG), then 1.4 MB
//            frames behind it
/* eslint-disable @typescript-eslint/no-require-imports -- a plain CommonJS script run by node directly */
'use strict';
const fs = require('node:fs');
const WebSocket = require('ws');

const [url, mode, durationArg, token, preAuthArg, imagePath] = process.argv.slice(2);
const deadline = Date.now() + Number(durationArg);
const preAuth = Number(preAuthArg || 16384);
const stats = { frames: 0, connections: 0, closes: {} };

function deep(bytes, type) {
  const head = `{"type":"${type}","x":`;
  const depth = Math.floor((bytes - head.length - 1) / 2);
  return head + '['.repeat(depth) + ']'.repeat(depth) + '}';
}
function manyValues(bytes) {
  const head = '{"type":"DIALOG_MESSAGE","serverData":{"messageId":"x"},"junk":{';
  const parts = [];
  let size = head.length + 2;
  for (let i = 0; size < bytes - 16; i++) {
    const part = `"k${i}":0`;
    parts.push(part);
    size += part.length + 1;
  }
  return head + parts.join(',') + '}}';
}
const MB = 1_400_000;
const framesOf = {
  preauth: [deep(preAuth, 'CHAT_MESSAGE'), deep(preAuth, 'AUTH_MESSAGE'), deep(preAuth - 64, 'AUTH_MESSAGE'), 'x'.repeat(preAuth + 1)],
  joined: [
    deep(65536, 'DIALOG_MESSAGE'),
    manyValues(65536),
    `{"type":"SAVE_AVATAR","serverData":{"imageBase64":"${'\\"'.repeat(MB / 2)}"}}`,
    '['.repeat(MB),
  ],
  queue: [`{"type":"SAVE_AVATAR","serverData":{"imageBase64":"${'A'.repeat(MB)}"}}`],
};

function connect() {
  if (Date.now() > deadline) return finish();
  stats.connections++;
  const headers = mode === 'preauth' ? {} : { authToken: token };
  const ws = new WebSocket(url, { headers, maxPayload: 64 * 1024 * 1024 });
  let i = 0;
  const pump = () => {
    while (ws.readyState === WebSocket.OPEN && Date.now() < deadline && ws.bufferedAmount < 4 * MB) {
      const frames = framesOf[mode];
      ws.send(frames[i++ % frames.length]);
      stats.frames++;
    }
    if (ws.readyState === WebSocket.OPEN && Date.now() < deadline) setTimeout(pump, 5);
    else if (Date.now() >= deadline) ws.terminate();
  };
  // 'queue' waits for its AUTH SUCCESS: a frame over PRE_AUTH_MAX_FRAME_BYTES before it is closed with 1009,
  // which is not what that attack is about. The others start on open, as an attacker would.
  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    if (mode === 'queue' && imagePath) {
      ws.send(JSON.stringify({ type: 'SAVE_AVATAR', serverData: { imageBase64: fs.readFileSync(imagePath).toString('base64') } }));
    }
    pump();
  };
  ws.on('open', () => {
    if (mode !== 'queue') start();
  });
  ws.on('message', () => start());
  ws.on('error', () => undefined);
  ws.on('unexpected-response', (_req, res) => {
    stats.closes[`http${res.statusCode}`] = (stats.closes[`http${res.statusCode}`] || 0) + 1;
    res.resume();
  });
  ws.on('close', (code) => {
    stats.closes[code] = (stats.closes[code] || 0) + 1;
    if (mode === 'queue') return finish();
    setTimeout(connect, 20);
  });
}

let finished = false;
function finish() {
  if (finished) return;
  finished = true;
  process.stdout.write(`${JSON.stringify(stats)}\n`);
  process.exit(0);
}
setTimeout(finish, Number(durationArg) + 2000).unref();
connect();
