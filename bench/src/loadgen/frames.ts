/**
 * What a client receives: ws frames are read in place where the type allows it (presence, CHAT,
 * AUTH SUCCESS), cheaply enough for 10k connections; anything else is parsed (the slow path).
 */
import { onChat } from './broadcast';
import { onDelivery, onDialog } from './dialog';
import { forget, know, userIndex } from './presence';
import { counters, fail, type Client } from './state';

const PREFIX = Buffer.from('{"type":"');
const N_USERLIST = Buffer.from('"userList":');
const N_USERID_U = Buffer.from('"userId":"u');
const N_STATUS = Buffer.from('"connectionStatus":"');
const N_MESSAGE_M = Buffer.from('"message":"m');
const N_SENDER = Buffer.from('"sender":"u');
const N_SENDTIME = Buffer.from('"sendTime":"');
const N_SUCCESS = Buffer.from('"status":"SUCCESS"');

/** The decimal number at buf[pos...]; -1 when there is no digit there. */
function digitsAt(buf: Buffer, pos: number): number {
  let n = 0;
  let any = false;
  for (let i = pos; i < buf.length; i++) {
    const b = buf[i];
    if (b < 48 || b > 57) break;
    n = n * 10 + (b - 48);
    any = true;
  }
  return any ? n : -1;
}

export function onWsFrame(c: Client, buf: Buffer): void {
  counters.framesSeen++;
  if (buf.length < 12 || buf.compare(PREFIX, 0, 9, 0, 9) !== 0) return onObject(c, safeParse(buf));
  switch (buf[9]) {
    case 65 /* A: AUTH_MESSAGE */: {
      if (buf.indexOf(N_SUCCESS) < 0 || buf.indexOf(N_SUCCESS) > 64) return onObject(c, safeParse(buf));
      let pos = buf.indexOf(N_USERLIST);
      if (pos < 0) return onObject(c, safeParse(buf));
      for (;;) {
        pos = buf.indexOf(N_USERID_U, pos);
        if (pos < 0) break;
        pos += N_USERID_U.length;
        know(c, digitsAt(buf, pos));
      }
      return authed(c);
    }
    case 85 /* U: USER_CONNECTION_MESSAGE or USER_UPDATE_MESSAGE */: {
      const s = buf.indexOf(N_STATUS);
      const u = buf.indexOf(N_USERID_U);
      if (s < 0 || u < 0) return onObject(c, safeParse(buf));
      c.presenceFrames++;
      const user = digitsAt(buf, u + N_USERID_U.length);
      if (buf[s + N_STATUS.length] === 67 /* C */) know(c, user);
      else forget(c, user);
      return;
    }
    case 67 /* C: CHAT_MESSAGE */: {
      const m = buf.indexOf(N_MESSAGE_M);
      if (m < 0 || buf.indexOf(N_SENDER) < 0 || buf.indexOf(N_SENDTIME) < 0) {
        fail(`CHAT_MESSAGE without message, sender or sendTime: ${buf.toString().slice(0, 200)}`);
        return;
      }
      return onChat(c, digitsAt(buf, m + N_MESSAGE_M.length));
    }
    default:
      return onObject(c, safeParse(buf));
  }
}

function safeParse(buf: Buffer): Record<string, unknown> | undefined {
  try {
    return JSON.parse(buf.toString()) as Record<string, unknown>;
  } catch {
    fail(`invalid JSON from the server: ${buf.toString().slice(0, 200)}`);
    return undefined;
  }
}

export type Obj = Record<string, unknown>;

/** The slow path: any frame as a parsed object. */
export function onObject(c: Client, frame: Obj | undefined): void {
  if (!frame) return;
  const data = (frame.serverData ?? {}) as Obj;
  switch (frame.type) {
    case 'AUTH_MESSAGE':
      if (frame.status !== 'SUCCESS') {
        const err = frame.error as Obj | undefined;
        return authFailed(c, `AUTH ERROR ${String(err?.errorCode)}: ${String(err?.message)}`);
      }
      for (const u of (data.userList ?? []) as Obj[]) know(c, userIndex(u.userId));
      return authed(c);
    case 'USER_CONNECTION_MESSAGE':
      c.presenceFrames++;
      if (data.connectionStatus === 'CONNECT') know(c, userIndex(data.userId));
      else forget(c, userIndex(data.userId));
      return;
    case 'CHAT_MESSAGE':
      if (typeof data.sender !== 'string' || typeof data.sendTime !== 'string' || typeof data.message !== 'string') {
        fail(`CHAT_MESSAGE without message, sender or sendTime`);
        return;
      }
      return onChat(c, Number(data.message.slice(1)));
    case 'DIALOG_MESSAGE':
      return onDialog(c, frame.clientData as Obj | undefined, data);
    case 'DELIVERY_MESSAGE':
      return onDelivery(c, frame.status, data.messageId);
    case 'ERROR_MESSAGE':
      fail(`ERROR_MESSAGE: ${JSON.stringify(frame).slice(0, 300)}`);
      return;
    default:
      counters.unexpectedFrames++;
  }
}

function authed(c: Client): void {
  const cb = c.authed;
  c.authed = undefined;
  cb?.(true);
}

export function authFailed(c: Client, why: string): void {
  const cb = c.authed;
  c.authed = undefined;
  if (cb) cb(false, why);
  else fail(`client u${c.idx}: ${why}`);
}
