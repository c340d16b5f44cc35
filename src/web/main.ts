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

function login(token: string): void {
  ui.loginError.hidden = true;
  client?.close().catch(() => undefined);
  const c = new ChatClient({ url: wsUrl(), token });
  client = c;
  setStatus('Connecting\u2026', 'connecting');
  c.on('online', renderOnline);
  c.on('chat', (m) => addChat(m.sender, m.message, m.sendTime));
  c.on('dialog', (d) => addDialog('in', d.sender, textOf(d.clientData), d.messageId));
  c.on('state', (state) => {
    if (state === 'open') setStatus(`Connected as ${nameOf(c.userId ?? '')}`, 'open');
  });
  c.on('close', (info) => {
    if (client !== c) return;
    if (info.willReconnect) {
      const why = info.authError ? AUTH_ERRORS[info.authError.errorCode] ?? info.authError.message : `connection lost (${info.code})`;
      setStatus(`${why} Reconnecting in ${Math.ceil((info.delayMs ?? 0) / 1000)} s\u2026`, 'reconnecting');
    } else if (ui.app.hidden) {
      setStatus('Not connected', 'idle');
    } else {
      setStatus(`Disconnected (${info.code}${info.reason ? `: ${info.reason}` : ''})`, 'closed');
    }
  });
  c.connect().then(
    (auth) => {
      if (client !== c) return;
      ui.login.hidden = true;
      ui.app.hidden = false;
      ui.logout.hidden = false;
      setStatus(`Connected as ${nameOf(auth.userId)}`, 'open');
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
  login(ui.demoUser.value);
});

ui.tokenForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const token = ui.token.value.trim();
  if (token) login(token);
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
