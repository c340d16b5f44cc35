/**
 * The demo chat page (browser code, bundled by src/web/build.ts into dist/public/assets/app.js).
 * Everything the user sees goes through textContent: names, messages and URLs from the network
 * are never parsed as HTML.
 */
import { ChatClient, ChatClientError, randomMessageId, type UserProfile } from '../client';

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing`);
  return el as T;
};

const ui = {
  status: $<HTMLParagraphElement>('status'),
  logout: $<HTMLButtonElement>('logout'),
  login: $<HTMLElement>('login'),
  demoForm: $<HTMLFormElement>('demo-form'),
  demoUser: $<HTMLSelectElement>('demo-user'),
  tokenForm: $<HTMLFormElement>('token-form'),
  token: $<HTMLInputElement>('token'),
  loginError: $<HTMLDivElement>('login-error'),
  app: $<HTMLDivElement>('app'),
  online: $<HTMLUListElement>('online'),
  onlineCount: $<HTMLSpanElement>('online-count'),
  avatarFile: $<HTMLInputElement>('avatar-file'),
  avatarStatus: $<HTMLParagraphElement>('avatar-status'),
  chatLog: $<HTMLOListElement>('chat-log'),
  chatForm: $<HTMLFormElement>('chat-form'),
  chatInput: $<HTMLInputElement>('chat-input'),
  dialogPeer: $<HTMLSelectElement>('dialog-peer'),
  dialogLog: $<HTMLOListElement>('dialog-log'),
  dialogForm: $<HTMLFormElement>('dialog-form'),
  dialogInput: $<HTMLInputElement>('dialog-input'),
  tokenExpiry: $<HTMLParagraphElement>('token-expiry'),
  tokenNote: $<HTMLParagraphElement>('token-note'),
  autoRefresh: $<HTMLInputElement>('auto-refresh'),
  refreshNow: $<HTMLButtonElement>('refresh-now'),
};

const AUTH_ERRORS: Record<string, string> = {
  '1': 'This user is already connected somewhere else.',
  '2': 'The token was not found or is invalid.',
  '3': 'The authorization server is unavailable; try again later.',
};

const AVATAR_ERRORS: Record<string, string> = {
  '1': 'That image is too large.',
  '2': 'That is not a PNG, JPEG, WebP or GIF image.',
  '3': 'The avatar could not be stored; try again later.',
};

let client: ChatClient | undefined;
/**
 * The base of the current time-windowed token (`<base>~<issuedAt>`, README "Token lifetimes"):
 * a fresh token is `<base>~<now>`. Undefined when the token is not windowed (no refresh possible).
 */
let tokenBase: string | undefined;
let countdown: ReturnType<typeof setInterval> | undefined;

/** A demo user's token issued now: valid for the user's tokenTtlMs (two minutes for the demo users). */
function windowed(base: string): string {
  return `${base}~${Date.now()}`;
}

/** The base of a time-windowed token, if it is one. */
function windowBase(token: string): string | undefined {
  return /^(.+)~[0-9]{1,16}$/.exec(token)?.[1];
}

function clockTime(unixMs: number): string {
  return new Date(unixMs).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** Why a connection ended for good, in words (docs/protocol.md, "Close codes"). */
function closeReason(code: number, reason: string): { text: string; state: string } {
  if (code === 4401 && reason === 'token expired') return { text: 'Your token expired (4401): log out and in again.', state: 'expired' };
  if (code === 4401 && reason === 'token revoked') return { text: 'Your token was revoked (4401).', state: 'expired' };
  if (code === 4401) return { text: 'Your token was refused (4401).', state: 'expired' };
  if (code === 4403) {
    return { text: `Disconnected by the application's backend (4403${reason ? `: ${reason}` : ''}). Not reconnecting.`, state: 'kicked' };
  }
  return { text: `Disconnected (${code}${reason ? `: ${reason}` : ''})`, state: 'closed' };
}

/** The token box: when the token expires, counted down each second. */
function renderTokenExpiry(): void {
  const c = client;
  if (!c || c.state !== 'open') return;
  const expiresAt = c.tokenExpiresAt;
  if (expiresAt === undefined) {
    ui.tokenExpiry.textContent = 'It does not expire.';
  } else {
    const left = Math.max(0, Math.round((expiresAt - Date.now()) / 1000));
    ui.tokenExpiry.textContent = `It expires at ${clockTime(expiresAt)}, in ${left} s.`;
  }
  ui.refreshNow.disabled = tokenBase === undefined;
}

function stopCountdown(): void {
  if (countdown !== undefined) clearInterval(countdown);
  countdown = undefined;
}

function refreshToken(c: ChatClient): void {
  if (tokenBase === undefined) {
    ui.tokenNote.textContent = 'This token cannot be refreshed here: log in again with a new one.';
    return;
  }
  ui.tokenNote.textContent = 'Refreshing the token\u2026';
  c.refreshToken(windowed(tokenBase)).then(
    (expiresAt) => {
      if (client !== c) return;
      ui.tokenNote.textContent =
        expiresAt === undefined ? 'Token refreshed: it does not expire.' : `Token refreshed at ${clockTime(Date.now())}: valid until ${clockTime(expiresAt)}.`;
      renderTokenExpiry();
    },
    (err: unknown) => {
      if (client !== c) return;
      const code = err instanceof ChatClientError ? String(err.details.errorCode ?? '') : '';
      ui.tokenNote.textContent =
        code === '3'
          ? 'Token not refreshed: the authorization server is unavailable; the current token still holds.'
          : `Token not refreshed: ${err instanceof Error ? err.message : String(err)}`;
    },
  );
}

function avatarMaxBytes(): number {
  const meta = document.querySelector<HTMLMetaElement>('meta[name="chat-avatar-max-bytes"]');
  const value = Number(meta?.content);
  return Number.isSafeInteger(value) && value > 0 ? value : 1_048_576;
}

function wsUrl(): string {
  const meta = document.querySelector<HTMLMetaElement>('meta[name="chat-ws-path"]');
  const path = meta?.content && meta.content.startsWith('/') ? meta.content : '/ws';
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
}

function setStatus(text: string, state: string): void {
  ui.status.textContent = text;
  ui.status.dataset.state = state;
}

function showLoginError(text: string): void {
  ui.loginError.textContent = text;
  ui.loginError.hidden = false;
}

function nameOf(userId: string): string {
  const profile = client?.user(userId);
  return profile?.nickname || `user ${userId}`;
}

function timeOf(unixMs: string): string {
  const date = new Date(Number(unixMs));
  return Number.isFinite(date.getTime()) ? date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '';
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function isHttpUrl(value: string): boolean {
  return /^https?:\/\//i.test(value);
}

function avatarOf(profile: UserProfile): HTMLElement {
  const initials = el('span', 'avatar initials', (profile.nickname || profile.userId).slice(0, 1).toUpperCase());
  initials.setAttribute('aria-hidden', 'true');
  if (!isHttpUrl(profile.avatar)) return initials;
  const img = el('img', 'avatar');
  img.alt = '';
  img.width = 40;
  img.height = 40;
  img.src = profile.avatar;
  img.addEventListener('error', () => img.replaceWith(initials), { once: true });
  return img;
}

function appendTo(log: HTMLOListElement, item: HTMLLIElement): void {
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(item);
  if (atBottom) log.scrollTop = log.scrollHeight;
}

function renderOnline(users: readonly UserProfile[]): void {
  const me = client?.userId;
  const sorted = [...users].sort((a, b) => (a.userId === me ? -1 : b.userId === me ? 1 : a.nickname.localeCompare(b.nickname)));
  ui.online.replaceChildren(
    ...sorted.map((profile) => {
      const li = el('li', 'user');
      li.dataset.userId = profile.userId;
      const name = el('span', 'name', profile.nickname || `user ${profile.userId}`);
      li.append(avatarOf(profile), name);
      if (profile.userId === me) {
        li.append(el('span', 'me', '(you)'));
      } else {
        const talk = el('button', 'link', 'Message');
        talk.type = 'button';
        talk.setAttribute('aria-label', `Private message to ${name.textContent ?? ''}`);
        talk.addEventListener('click', () => {
          ui.dialogPeer.value = profile.userId;
          ui.dialogInput.focus();
        });
        li.append(talk);
      }
      if (profile.status) li.title = profile.status;
      return li;
    }),
  );
  ui.onlineCount.textContent = `(${users.length})`;
  // The dialog peer picker: everyone else online; keeps the current choice when still there.
  const chosen = ui.dialogPeer.value;
  const others = sorted.filter((p) => p.userId !== me);
  ui.dialogPeer.replaceChildren(
    ...others.map((p) => {
      const option = el('option', undefined, p.nickname || `user ${p.userId}`);
      option.value = p.userId;
      return option;
    }),
  );
  if (others.some((p) => p.userId === chosen)) ui.dialogPeer.value = chosen;
  ui.dialogPeer.disabled = others.length === 0;
  if (others.length === 0) {
    const none = el('option', undefined, 'nobody else is online');
    none.value = '';
    ui.dialogPeer.append(none);
  }
}

function addChat(sender: string, message: string, sendTime: string): void {
  const li = el('li', sender === client?.userId ? 'msg mine' : 'msg');
  const time = el('time', 'time', timeOf(sendTime));
  time.dateTime = new Date(Number(sendTime)).toISOString();
  li.append(time, el('b', 'from', nameOf(sender)), el('span', 'text', message));
  appendTo(ui.chatLog, li);
}

function textOf(clientData: unknown): string {
  if (typeof clientData === 'string') return clientData;
  if (clientData && typeof clientData === 'object' && typeof (clientData as { message?: unknown }).message === 'string') {
    return (clientData as { message: string }).message;
  }
  return JSON.stringify(clientData);
}

function addDialog(direction: 'in' | 'out', peer: string, text: string, messageId: string): HTMLLIElement {
  const li = el('li', direction === 'out' ? 'msg mine' : 'msg');
  li.dataset.messageId = messageId;
  const who = direction === 'out' ? `you \u2192 ${nameOf(peer)}` : `${nameOf(peer)} \u2192 you`;
  li.append(el('b', 'from', who), el('span', 'text', text));
  appendTo(ui.dialogLog, li);
  return li;
}

function setTick(li: HTMLLIElement, state: 'pending' | 'SUCCESS' | 'ERROR'): void {
  let tick = li.querySelector<HTMLSpanElement>('.tick');
  if (!tick) {
    tick = el('span', 'tick');
    li.append(tick);
  }
  tick.dataset.delivery = state;
  const [symbol, label] =
    state === 'SUCCESS' ? ['\u2713', 'delivered'] : state === 'ERROR' ? ['\u2717', 'not delivered'] : ['\u2026', 'sending'];
  tick.textContent = symbol;
  tick.title = label;
  const hidden = el('span', 'visually-hidden', ` ${label}`);
  tick.append(hidden);
}

function login(token: string, base: string | undefined): void {
  ui.loginError.hidden = true;
  client?.close().catch(() => undefined);
  stopCountdown();
  const c = new ChatClient({ url: wsUrl(), token });
  client = c;
  tokenBase = base;
  ui.tokenNote.textContent = '';
  ui.tokenExpiry.textContent = '';
  setStatus('Connecting\u2026', 'connecting');
  c.on('online', renderOnline);
  c.on('chat', (m) => addChat(m.sender, m.message, m.sendTime));
  c.on('dialog', (d) => addDialog('in', d.sender, textOf(d.clientData), d.messageId));
  c.on('state', (state) => {
    if (state === 'open') setStatus(`Connected as ${nameOf(c.userId ?? '')}`, 'open');
  });
  c.on('tokenExpiring', ({ inMs }) => {
    if (client !== c) return;
    if (ui.autoRefresh.checked && tokenBase !== undefined) refreshToken(c);
    else ui.tokenNote.textContent = `Your token expires in ${Math.round(inMs / 1000)} s: refresh it, or the gateway closes the connection.`;
  });
  c.on('close', (info) => {
    if (client !== c) return;
    if (info.willReconnect) {
      const why = info.authError ? AUTH_ERRORS[info.authError.errorCode] ?? info.authError.message : `connection lost (${info.code})`;
      setStatus(`${why} Reconnecting in ${Math.ceil((info.delayMs ?? 0) / 1000)} s\u2026`, 'reconnecting');
    } else if (ui.app.hidden) {
      setStatus('Not connected', 'idle');
    } else {
      stopCountdown();
      const { text, state } = closeReason(info.code, info.reason);
      setStatus(text, state);
      ui.tokenExpiry.textContent = '';
      ui.refreshNow.disabled = true;
    }
  });
  c.connect().then(
    (auth) => {
      if (client !== c) return;
      ui.login.hidden = true;
      ui.app.hidden = false;
      ui.logout.hidden = false;
      setStatus(`Connected as ${nameOf(auth.userId)}`, 'open');
      renderTokenExpiry();
      stopCountdown();
      countdown = setInterval(renderTokenExpiry, 1000);
      ui.chatInput.focus();
    },
    (err: unknown) => {
      if (client !== c) return;
      client = undefined;
      let text = `Could not connect: ${String(err)}`;
      if (err instanceof ChatClientError && err.code === 'AUTH_FAILED') {
        const code = String(err.details.errorCode ?? '');
        text = `Login refused: ${AUTH_ERRORS[code] ?? err.message} (error ${code}, close code ${err.details.closeCode ?? '?'})`;
      } else if (err instanceof ChatClientError) {
        text = `Could not connect (close code ${err.details.closeCode ?? '?'}). Is the gateway running?`;
      }
      showLoginError(text);
      setStatus('Not connected', 'error');
      ui.login.hidden = false;
      ui.app.hidden = true;
      ui.logout.hidden = true;
    },
  );
}

function logout(): void {
  const c = client;
  client = undefined;
  tokenBase = undefined;
  stopCountdown();
  ui.tokenNote.textContent = '';
  ui.tokenExpiry.textContent = '';
  void c?.close();
  ui.app.hidden = true;
  ui.login.hidden = false;
  ui.logout.hidden = true;
  ui.chatLog.replaceChildren();
  ui.dialogLog.replaceChildren();
  ui.online.replaceChildren();
  ui.avatarStatus.textContent = '';
  setStatus('Not connected', 'idle');
}

function readAsDataUrl(file: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error ?? new Error('could not read the file'));
    reader.readAsDataURL(file);
  });
}

ui.demoForm.addEventListener('submit', (event) => {
  event.preventDefault();
  // A demo user logs in with a time-windowed token: it expires, and the page refreshes it.
  login(windowed(ui.demoUser.value), ui.demoUser.value);
});

ui.tokenForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const token = ui.token.value.trim();
  if (token) login(token, windowBase(token));
});

ui.refreshNow.addEventListener('click', () => {
  if (client) refreshToken(client);
});

ui.logout.addEventListener('click', logout);

ui.chatForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.chatInput.value;
  if (!text.trim() || !client) return;
  try {
    client.chat(text);
    ui.chatInput.value = '';
  } catch (err) {
    setStatus(`Not sent: ${String(err)}`, 'error');
  }
});

ui.dialogForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.dialogInput.value;
  const peer = ui.dialogPeer.value;
  if (!text.trim() || !peer || !client) return;
  const messageId = randomMessageId();
  const li = addDialog('out', peer, text, messageId);
  setTick(li, 'pending');
  ui.dialogInput.value = '';
  client.dialog(peer, { message: text }, { messageId }).then(
    (status) => setTick(li, status),
    () => setTick(li, 'ERROR'),
  );
});

ui.avatarFile.addEventListener('change', () => {
  const file = ui.avatarFile.files?.[0];
  if (!file || !client) return;
  const c = client;
  const max = avatarMaxBytes();
  if (file.size > max) {
    // Checked here: a frame over the gateway's limit would end the connection (1009).
    ui.avatarStatus.textContent = `Avatar not saved: that image is too large (${Math.ceil(file.size / 1024)} KiB, at most ${Math.floor(max / 1024)} KiB).`;
    ui.avatarFile.value = '';
    return;
  }
  ui.avatarStatus.textContent = 'Uploading\u2026';
  readAsDataUrl(file)
    .then((dataUrl) => c.saveAvatar(dataUrl))
    .then(
      () => {
        ui.avatarStatus.textContent = 'Avatar saved: everyone sees it now.';
      },
      (err: unknown) => {
        const code = err instanceof ChatClientError ? String(err.details.errorCode ?? '') : '';
        ui.avatarStatus.textContent = `Avatar not saved: ${AVATAR_ERRORS[code] ?? String(err)}`;
      },
    )
    .finally(() => {
      ui.avatarFile.value = '';
    });
});
