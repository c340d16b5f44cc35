/**
 * A minimal WebSocket client (RFC 6455) for the capacity mode: the upgrade with the `authToken`
 * header, unmasked server frames read in place (a whole message is handed over as a view into
 * the read buffer, without a copy), masked text frames out, close and ping answered. No
 * extensions, no subprotocol, no UTF-8 validation.
 *
 * Why not `ws`: filling a node with 19,000 clients delivers ~180 million presence frames
 * (N²/2) to the load generators, whose CPU shares the machine's two cores with the server under
 * test; ws's receiver (a stream with an event per frame) costs several times more per frame than
 * this loop (bench/README.md, "Capacity of one node"). The frames themselves are checked by the
 * same code as the `ws` clients' (loadgen/frames.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const HEAD_END = Buffer.from('\r\n\r\n');

export interface LeanHandlers {
  /** The upgrade succeeded. */
  open(): void;
  /** One whole text message: a view into the read buffer, valid during the call only. */
  message(data: Buffer): void;
  /** The connection is gone: the close code the server sent (1006 without a close frame), and why when it failed. */
  close(code: number, why?: string): void;
}

export class LeanWs {
  readonly socket: Socket;
  private readonly key = randomBytes(16).toString('base64');
  private upgraded = false;
  /** Bytes of an incomplete header or head (small): read again with the next chunk. */
  private rest?: Buffer;
  /** An incomplete frame: its chunks so far, their length, and the frame's whole length. */
  private parts: Buffer[] = [];
  private have = 0;
  private want = 0;
  /** A message in continuation frames. */
  private fragments?: Buffer[];
  private finished = false;
  private closeCode = 1006;

  constructor(url: string, token: string, localAddress: string | undefined, private readonly on: LeanHandlers) {
    const u = new URL(url);
    const request =
      `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${this.key}\r\nSec-WebSocket-Version: 13\r\nauthToken: ${token}\r\n\r\n`;
    this.socket = connect({ host: u.hostname, port: Number(u.port), noDelay: true, ...(localAddress ? { localAddress } : {}) });
    this.socket.once('connect', () => this.socket.write(request));
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.once('close', () => this.finish(this.closeCode));
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.finish(1006, `socket error ${err.code ?? err.message}`));
  }

  /** A text message, masked as a client's must be. */
  send(text: string): void {
    this.frame(0x1, Buffer.from(text));
  }

  /** Starts the close handshake; the server answers with its close frame and ends the connection. */
  close(code = 1000): void {
    if (this.finished) return;
    const payload = Buffer.alloc(2);
    payload.writeUInt16BE(code);
    this.frame(0x8, payload);
  }

  terminate(): void {
    this.socket.destroy();
  }

  private frame(opcode: number, payload: Buffer): void {
    if (this.socket.destroyed) return;
    const len = payload.length;
    const head = Buffer.alloc(len < 126 ? 6 : len < 65536 ? 8 : 14);
    head[0] = 0x80 | opcode;
    let pos = 2;
    if (len < 126) head[1] = 0x80 | len;
    else if (len < 65536) {
      head[1] = 0x80 | 126;
      head.writeUInt16BE(len, 2);
      pos = 4;
    } else {
      head[1] = 0x80 | 127;
      head.writeBigUInt64BE(BigInt(len), 2);
      pos = 10;
    }
    const mask = randomBytes(4);
    mask.copy(head, pos);
    const masked = Buffer.allocUnsafe(len);
    for (let i = 0; i < len; i++) masked[i] = payload[i] ^ mask[i & 3];
    this.socket.write(Buffer.concat([head, masked]));
  }

  private finish(code: number, why?: string): void {
    if (this.finished) return;
    this.finished = true;
    this.socket.destroy();
    this.on.close(code, why);
  }

  private fail(why: string): void {
    this.finish(1006, why);
  }

  private onData(chunk: Buffer): void {
    let buf = chunk;
    if (this.want > 0) {
      this.parts.push(chunk);
      this.have += chunk.length;
      if (this.have < this.want) return;
      buf = Buffer.concat(this.parts, this.have); // one copy per large frame, however many reads it took
      this.parts = [];
      this.have = 0;
      this.want = 0;
    } else if (this.rest) {
      buf = Buffer.concat([this.rest, chunk]);
      this.rest = undefined;
    }
    let pos = 0;
    if (!this.upgraded) {
      const end = buf.indexOf(HEAD_END);
      if (end < 0) {
        this.rest = Buffer.from(buf);
        return;
      }
      const head = buf.toString('latin1', 0, end);
      if (!/^HTTP\/1\.1 101 /.test(head)) return this.fail(`upgrade refused: ${head.split('\r\n', 1)[0]}`);
      const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(head)?.[1];
      if (accept !== createHash('sha1').update(this.key + GUID).digest('base64')) return this.fail('upgrade: wrong Sec-WebSocket-Accept');
      this.upgraded = true;
      this.on.open();
      pos = end + HEAD_END.length;
    }
    while (buf.length - pos >= 2) {
      const b0 = buf[pos];
      const b1 = buf[pos + 1];
      if (b1 & 0x80) return this.fail('a masked frame from the server');
      let len = b1 & 0x7f;
      let header = 2;
      if (len === 126) {
        if (buf.length - pos < 4) break;
        len = buf.readUInt16BE(pos + 2);
        header = 4;
      } else if (len === 127) {
        if (buf.length - pos < 10) break;
        len = Number(buf.readBigUInt64BE(pos + 2));
        header = 10;
      }
      if (buf.length - pos < header + len) {
        // An incomplete frame: gather its chunks, then concatenate them once.
        this.want = header + len;
        this.parts = [buf.subarray(pos)];
        this.have = buf.length - pos;
        return;
      }
      const payload = buf.subarray(pos + header, pos + header + len);
      pos += header + len;
      this.onFrame((b0 & 0x80) !== 0, b0 & 0x0f, payload);
      if (this.finished) return;
    }
    if (pos < buf.length) this.rest = Buffer.from(buf.subarray(pos));
  }

  private onFrame(fin: boolean, opcode: number, payload: Buffer): void {
    switch (opcode) {
      case 0x0: // continuation
        if (!this.fragments) return this.fail('a continuation frame without a message');
        this.fragments.push(Buffer.from(payload));
        if (fin) {
          const whole = Buffer.concat(this.fragments);
          this.fragments = undefined;
          this.on.message(whole);
        }
        return;
      case 0x1: // text
      case 0x2: // binary: handed over the same way (the checks say what it is)
        if (this.fragments) return this.fail('a new message inside a fragmented one');
        if (fin) this.on.message(payload);
        else this.fragments = [Buffer.from(payload)];
        return;
      case 0x8: // close: answer it, the server ends the connection
        this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        if (!this.socket.destroyed) {
          this.frame(0x8, payload.subarray(0, 2));
          this.socket.end();
        }
        return;
      case 0x9: // ping
        this.frame(0xa, Buffer.from(payload));
        return;
      case 0xa: // pong
        return;
      default:
        this.fail(`unknown opcode ${opcode}`);
    }
  }
}
