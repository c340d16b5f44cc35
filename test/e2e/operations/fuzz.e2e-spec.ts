/**
 * Property-based fuzzing of the inbound path (fast-check) against one real listening app with two
 * authenticated users, A (alice, "1") and B (bob, "2"); carol ("3") is offline unless a property
 * logs her in.
 *
 * For every frame A sends (arbitrary text, arbitrary JSON, near-valid protocol frames, binary):
 * - the server keeps serving and A's connection stays open and usable (a marker CHAT round-trips
 *   after every frame);
 * - A's answer is exactly what an independent model of docs/protocol.md predicts: the normal answer,
 *   or one ERROR_MESSAGE with the expected code (INVALID_JSON, INVALID_MESSAGE, UNKNOWN_TYPE) and
 *   requestType, or SAVE_AVATAR ERROR / DELIVERY_MESSAGE for those types;
 * - B receives exactly what the frame entitles it to (a CHAT, a DIALOG to B, a USER_UPDATE after a
 *   saved avatar) and nothing else.
 * Frames of a connection that has not authenticated (no token in the upgrade) reach nobody and are
 * never answered, except a token-bearing AUTH_MESSAGE.
 */
import fc from 'fast-check';
import sharp from 'sharp';
import { authWith, chat, isConnect, isDisconnect } from '../../support/frames';
import type { TestGateway } from '../../support/gateway';
import { httpGet } from '../../support/http';
import { Scope } from '../../support/scope';
import { closedWithin, type Frame, type TestClient } from '../../support/ws-client';

jest.setTimeout(60_000);

const A = '1';
const B = '2';
const C = '3';
const CHAT_MAX_LENGTH = 50;
const DIALOG_MAX_BYTES = 200;
const CLIENT_MESSAGE_ID = /^[A-Za-z0-9_-]{1,64}$/;
const DEMO_TOKENS = new Set(['alice-token', 'bob-token', 'carol-token', 'dave-token']);
const NUM_RUNS = 200;
/**
 * Bounds one property, shrinking included, so that a failure cannot run away with the suite. A
 * property cut short by the limit fails (`markInterruptAsFailure`): without it fast-check reports
 * success after any single passing run, so a slow or stuck gateway would pass with a fraction of
 * `numRuns` checked.
 */
const FC_OPTIONS = { numRuns: NUM_RUNS, interruptAfterTimeLimit: 20_000, markInterruptAsFailure: true };

const scope = new Scope();
let gw: TestGateway;
let alice: TestClient;
let bob: TestClient;
let pngBase64: string;
let markerSeq = 0;
/** messageIds of A's dialogs delivered so far (the server's dedup memory, as the protocol defines it). */
const deliveredIds = new Set<string>();

beforeAll(async () => {
  pngBase64 = (await sharp({ create: { width: 3, height: 2, channels: 3, background: '#3366cc' } }).png().toBuffer()).toString('base64');
  gw = await scope.gateway({
    RATE_LIMIT_PER_SEC: '1000000',
    RATE_LIMIT_BURST: '1000000',
    CHAT_MAX_LENGTH: String(CHAT_MAX_LENGTH),
    DIALOG_MAX_BYTES: String(DIALOG_MAX_BYTES),
    // The model has no per-user upload quota, no inbound byte budget: keep both out of its way.
    AVATAR_SAVES_PER_MINUTE: '100000',
    INBOUND_BYTES_PER_SEC: String(1024 * 1024 * 1024),
  });
  alice = await scope.login(gw.wsUrl, 'alice-token');
  bob = await scope.login(gw.wsUrl, 'bob-token');
  await alice.next(isConnect(B));
});

afterAll(() => scope.closeAll());

// ------------------------------------------------------------------------------------------------
// The model: what the protocol says a frame from an authenticated client leads to.

type Expectation =
  | { kind: 'error'; code: 'INVALID_JSON' | 'INVALID_MESSAGE' | 'UNKNOWN_TYPE'; requestType?: string }
  | { kind: 'chat'; message: string }
  | { kind: 'dialog'; receiver: string; clientData: unknown; messageId?: string }
  | { kind: 'avatar'; imageIsString: boolean };

type Sent = { text: string } | { binary: Uint8Array };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The text the server decodes from a text frame (ws sends UTF-8: lone surrogates become U+FFFD). */
function serverView(text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8');
}

function parseServerSide(sent: Sent): { ok: true; value: unknown } | { ok: false } {
  if ('binary' in sent) return { ok: false };
  try {
    return { ok: true, value: JSON.parse(serverView(sent.text)) as unknown };
  } catch {
    return { ok: false };
  }
}

function model(sent: Sent): Expectation {
  const parsed = parseServerSide(sent);
  if (!parsed.ok) return { kind: 'error', code: 'INVALID_JSON' };
  const frame = parsed.value;
  if (!isObject(frame) || typeof frame.type !== 'string') return { kind: 'error', code: 'INVALID_MESSAGE' };
  const type = frame.type;
  const invalid: Expectation = { kind: 'error', code: 'INVALID_MESSAGE', requestType: type };
  switch (type) {
    case 'CHAT_MESSAGE': {
      const sd = frame.serverData;
      if (!isObject(sd)) return invalid;
      const message = sd.message;
      if (typeof message !== 'string' || message.length === 0 || [...message].length > CHAT_MAX_LENGTH) return invalid;
      return { kind: 'chat', message };
    }
    case 'DIALOG_MESSAGE': {
      const sd = frame.serverData;
      if (!isObject(sd)) return invalid;
      const receiver = sd.receiver;
      if (typeof receiver !== 'string' || receiver.length === 0) return invalid;
      if (!Object.prototype.hasOwnProperty.call(frame, 'clientData')) return invalid;
      if (Buffer.byteLength(JSON.stringify(frame.clientData)) > DIALOG_MAX_BYTES) return invalid;
      const messageId = sd.messageId;
      if (messageId !== undefined && (typeof messageId !== 'string' || !CLIENT_MESSAGE_ID.test(messageId))) return invalid;
      return { kind: 'dialog', receiver, clientData: frame.clientData, messageId: messageId as string | undefined };
    }
    case 'SAVE_AVATAR': {
      const sd = frame.serverData;
      return { kind: 'avatar', imageIsString: isObject(sd) && typeof sd.imageBase64 === 'string' && sd.imageBase64.length > 0 };
    }
    default:
      return { kind: 'error', code: 'UNKNOWN_TYPE', requestType: type };
  }
}

// ------------------------------------------------------------------------------------------------
// One exchange: A sends a frame, then a marker CHAT; everything A and B got before the marker
// (and A's DELIVERY, which may come after it) is the frame's effect.

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
const isMarker = (marker: string) => (f: Frame) => f.type === 'CHAT_MESSAGE' && f.serverData?.sender === A && f.serverData?.message === marker;

/** Index of the first frame at or after `from` that matches; waits for it (event-driven) up to 3 s. */
function waitIndex(client: TestClient, from: number, match: (f: Frame) => boolean, what: string): Promise<number> {
  const find = () => client.frames.findIndex((f, i) => i >= from && match(f));
  const found = find();
  if (found !== -1) return Promise.resolve(found);
  return new Promise<number>((resolve, reject) => {
    const socket = client.socket;
    const done = (err?: Error, index?: number) => {
      clearTimeout(timer);
      socket.off('message', onMessage);
      socket.off('close', onClose);
      if (err) reject(err);
      else resolve(index!);
    };
    // TestClient records frames in its own, earlier 'message' listener: the frame is there already.
    const onMessage = () => {
      const index = find();
      if (index !== -1) done(undefined, index);
    };
    const onClose = () => done(new Error(`${what}: connection closed ${JSON.stringify(client.closeInfo)}`));
    const timer = setTimeout(() => done(new Error(`timed out waiting for ${what}`)), 3000);
    socket.on('message', onMessage);
    socket.on('close', onClose);
  });
}

function sendFrom(client: TestClient, sent: Sent): void {
  if ('binary' in sent) client.socket.send(Buffer.from(sent.binary), { binary: true });
  else client.socket.send(sent.text);
}

function checkSendTime(f: Frame): void {
  const t = f.serverData?.sendTime;
  expect(typeof t).toBe('string');
  expect(t).toMatch(/^\d+$/);
  expect(Math.abs(Number(t) - Date.now())).toBeLessThan(60_000);
}

async function exchange(sent: Sent): Promise<void> {
  const expected = model(sent);
  const a0 = alice.frames.length;
  const b0 = bob.frames.length;
  sendFrom(alice, sent);
  const marker = `marker-${++markerSeq}`;
  alice.send(chat(marker));
  const aEnd = await waitIndex(alice, a0, isMarker(marker), `A's marker ${marker}`);
  const bEnd = await waitIndex(bob, b0, isMarker(marker), `B's marker ${marker}`);
  let aFrames = alice.frames.slice(a0, aEnd);
  const bFrames = bob.frames.slice(b0, bEnd);
  const context = () => `sent ${JSON.stringify(sent)}; expected ${JSON.stringify(expected)}; A got ${JSON.stringify(aFrames)}; B got ${JSON.stringify(bFrames)}`;

  try {
    switch (expected.kind) {
      case 'error': {
        expect(aFrames).toHaveLength(1);
        const [err] = aFrames;
        expect(err.type).toBe('ERROR_MESSAGE');
        expect(err.status).toBe('ERROR');
        expect(err.error?.errorCode).toBe(expected.code);
        expect(typeof err.error?.message).toBe('string');
        if (expected.requestType !== undefined) expect(err.requestType).toBe(expected.requestType);
        else expect(err).not.toHaveProperty('requestType');
        expect(bFrames).toEqual([]);
        break;
      }
      case 'chat': {
        expect(aFrames).toHaveLength(1);
        expect(bFrames).toHaveLength(1);
        for (const f of [aFrames[0], bFrames[0]]) {
          expect(f.type).toBe('CHAT_MESSAGE');
          expect(f.serverData.message).toBe(expected.message);
          expect(f.serverData.sender).toBe(A);
          checkSendTime(f);
        }
        break;
      }
      case 'dialog': {
        // The DELIVERY_MESSAGE may come after the marker: wait for it.
        const dIndex = await waitIndex(alice, a0, (f) => f.type === 'DELIVERY_MESSAGE', 'DELIVERY_MESSAGE');
        const delivery = alice.frames[dIndex];
        aFrames = alice.frames.slice(a0, Math.max(aEnd, dIndex + 1)).filter((f) => !isMarker(marker)(f));
        const repeat = expected.messageId !== undefined && deliveredIds.has(expected.messageId);
        const online = expected.receiver === A || expected.receiver === B;
        const delivered = online && !repeat;
        expect(delivery.status).toBe(delivered || repeat ? 'SUCCESS' : 'ERROR');
        if (expected.messageId !== undefined) expect(delivery.serverData.messageId).toBe(expected.messageId);
        else expect(typeof delivery.serverData.messageId).toBe('string');
        const toA = delivered && expected.receiver === A ? 1 : 0;
        const toB = delivered && expected.receiver === B ? 1 : 0;
        expect(aFrames).toHaveLength(1 + toA);
        expect(bFrames).toHaveLength(toB);
        const dialog = toA ? aFrames.find((f) => f.type === 'DIALOG_MESSAGE') : toB ? bFrames[0] : undefined;
        if (dialog) {
          expect(dialog.type).toBe('DIALOG_MESSAGE');
          expect(sameJson(dialog.clientData, expected.clientData)).toBe(true);
          expect(dialog.serverData.sender).toBe(A);
          expect(dialog.serverData.messageId).toBe(delivery.serverData.messageId);
          checkSendTime(dialog);
        }
        if (delivered && expected.messageId !== undefined) deliveredIds.add(expected.messageId);
        break;
      }
      case 'avatar': {
        expect(aFrames).toHaveLength(1);
        const [answer] = aFrames;
        expect(answer.type).toBe('SAVE_AVATAR');
        if (answer.status === 'SUCCESS') {
          expect(expected.imageIsString).toBe(true);
          expect(typeof answer.serverData.avatar).toBe('string');
          expect(bFrames).toEqual([{ type: 'USER_UPDATE_MESSAGE', serverData: { userId: A, avatar: answer.serverData.avatar } }]);
        } else {
          expect(answer.status).toBe('ERROR');
          expect(['1', '2', '3']).toContain(answer.error?.errorCode);
          if (!expected.imageIsString) expect(answer.error.errorCode).toBe('2');
          expect(bFrames).toEqual([]);
        }
        break;
      }
    }
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${context()}`);
  }
}

// ------------------------------------------------------------------------------------------------
// Generators.

const anyJson = fc.jsonValue({ maxDepth: 3 });
const shortText = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.string({ unit: 'grapheme', minLength: 40, maxLength: 60 }),
  fc.constant(''),
);
const KNOWN_TYPES = ['CHAT_MESSAGE', 'DIALOG_MESSAGE', 'SAVE_AVATAR'];
const OTHER_TYPES = ['AUTH_MESSAGE', 'DELIVERY_MESSAGE', 'USER_CONNECTION_MESSAGE', 'USER_UPDATE_MESSAGE', 'ERROR_MESSAGE', 'chat_message', 'CHAT_MESSAGE '];

function nearValidFrame(png: () => string): fc.Arbitrary<Record<string, unknown>> {
  const type = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...KNOWN_TYPES) },
    { weight: 2, arbitrary: fc.constantFrom(...OTHER_TYPES) },
    { weight: 1, arbitrary: fc.string() },
    { weight: 1, arbitrary: anyJson },
  );
  const message = fc.oneof({ weight: 4, arbitrary: shortText }, { weight: 1, arbitrary: anyJson });
  const receiver = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(A, B, C, 'nobody', '') }, { weight: 1, arbitrary: anyJson });
  const goodMessageId = fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/), fc.constantFrom('dup-1', 'dup-2', 'dup-3', 'x'.repeat(64)));
  const messageId = fc.oneof(
    { weight: 3, arbitrary: goodMessageId },
    { weight: 1, arbitrary: fc.constantFrom('y'.repeat(65), 'bad id', '', 'é') },
    { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
    { weight: 1, arbitrary: anyJson },
  );
  const imageBase64 = fc.oneof(
    fc.constant(null).map(() => png()),
    fc.constant(null).map(() => `data:image/png;base64,${png()}`),
    fc.base64String({ maxLength: 40 }),
    fc.string({ maxLength: 20 }),
    anyJson,
  );
  const clientData = fc.oneof(
    { weight: 4, arbitrary: anyJson },
    { weight: 1, arbitrary: fc.string({ minLength: DIALOG_MAX_BYTES - 12, maxLength: DIALOG_MAX_BYTES + 10 }) },
  );
  const extra = { messageType: anyJson, extra: anyJson };

  // Valid frames (the normal answer path), each with optional unknown extra fields.
  const validChat = fc.record(
    {
      type: fc.constant('CHAT_MESSAGE'),
      serverData: fc.record({
        message: fc.oneof(
          fc.string({ minLength: 1, maxLength: CHAT_MAX_LENGTH + 5 }),
          // Around the limit, in code points: astral characters are 2 UTF-16 units but 1 code point.
          fc.tuple(fc.integer({ min: CHAT_MAX_LENGTH - 2, max: CHAT_MAX_LENGTH + 2 }), fc.constantFrom('a', '\u00e9', '\u{1F600}', '\u{10FFFF}')).map(([n, c]) => c.repeat(n)),
        ),
      }),
      ...extra,
    },
    { requiredKeys: ['type', 'serverData'] },
  );
  const validDialog = fc.record(
    {
      type: fc.constant('DIALOG_MESSAGE'),
      clientData,
      serverData: fc.record({ receiver: fc.constantFrom(A, B, B, C, 'nobody'), messageId: goodMessageId }, { requiredKeys: ['receiver'] }),
      ...extra,
    },
    { requiredKeys: ['type', 'clientData', 'serverData'] },
  );
  const validAvatar = fc.record({ type: fc.constant('SAVE_AVATAR'), serverData: fc.record({ imageBase64 }) });
  // Near-valid: any type, any subset of the fields, each of any shape.
  const serverData = fc.oneof(
    { weight: 6, arbitrary: fc.record({ message, receiver, messageId, imageBase64, extra: anyJson }, { requiredKeys: [] }) },
    { weight: 1, arbitrary: anyJson },
  );
  const mutated = fc.record({ type, serverData, clientData, ...extra }, { requiredKeys: [] });
  return fc.oneof(
    { weight: 2, arbitrary: validChat },
    { weight: 3, arbitrary: validDialog },
    { weight: 1, arbitrary: validAvatar },
    { weight: 4, arbitrary: mutated },
  );
}

const arbitraryText: fc.Arbitrary<Sent> = fc
  .oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 200 }), fc.json({ maxDepth: 3 }), fc.constantFrom('', ' ', '{', '[]', 'null', '"CHAT_MESSAGE"', '{"type":1}'))
  .map((text) => ({ text }));
const arbitraryJson: fc.Arbitrary<Sent> = fc
  .oneof(anyJson, fc.anything({ maxDepth: 3 }))
  .map((value) => ({ text: JSON.stringify(value) ?? 'null' }));
const arbitraryBinary: fc.Arbitrary<Sent> = fc.uint8Array({ maxLength: 64 }).map((binary) => ({ binary }));

// ------------------------------------------------------------------------------------------------

describe('fuzzing the inbound path of an authenticated client', () => {
  it('arbitrary strings', async () => {
    await fc.assert(fc.asyncProperty(arbitraryText, exchange), FC_OPTIONS);
  });

  it('arbitrary JSON values', async () => {
    await fc.assert(fc.asyncProperty(arbitraryJson, exchange), FC_OPTIONS);
  });

  it('near-valid protocol frames (known and unknown types, random serverData / clientData shapes)', async () => {
    await fc.assert(
      fc.asyncProperty(
        nearValidFrame(() => pngBase64),
        (frame) => exchange({ text: JSON.stringify(frame) }),
      ),
      { ...FC_OPTIONS, numRuns: 400 },
    );
  });

  it('binary frames are INVALID_JSON', async () => {
    await fc.assert(fc.asyncProperty(arbitraryBinary, exchange), { ...FC_OPTIONS, numRuns: 50 });
  });

  it('afterwards the process still serves, logged no error, and A and B chat normally', async () => {
    expect((await httpGet(`${gw.httpUrl}/health/live`)).status).toBe(200);
    expect((await httpGet(`${gw.httpUrl}/health/ready`)).status).toBe(200);
    // No handler threw an unexpected error ("handler failed") nor anything else at error level.
    expect(gw.logs.filter((l) => /"level":"(error|fatal)"/.test(l))).toEqual([]);
    expect(alice.closeInfo).toBeUndefined();
    expect(bob.closeInfo).toBeUndefined();
    bob.send(chat('after the fuzz'));
    expect((await alice.next((f) => f.type === 'CHAT_MESSAGE' && f.serverData.sender === B)).serverData.message).toBe('after the fuzz');
    const dave = await scope.login(gw.wsUrl, 'dave-token');
    await dave.close();
    await bob.next(isDisconnect('4'));
    await alice.next(isDisconnect('4'));
  });
});

describe('fuzzing an unauthenticated connection', () => {
  /** Frames that the server does NOT read as an AUTH_MESSAGE. */
  const notAuth = (sent: Sent) => {
    const parsed = parseServerSide(sent);
    return !(parsed.ok && typeof parsed.value === 'object' && parsed.value !== null && (parsed.value as { type?: unknown }).type === 'AUTH_MESSAGE');
  };
  const junk: fc.Arbitrary<Sent> = fc
    .oneof(arbitraryText, arbitraryJson, arbitraryBinary, nearValidFrame(() => pngBase64).map((f) => ({ text: JSON.stringify(f) })))
    .filter(notAuth);

  /** Sends the junk, then carol's AUTH_MESSAGE: only AUTH SUCCESS comes back; A and B see carol's CONNECT and nothing before it. */
  async function discardedBeforeAuth(anon: TestClient, frames: Sent[], a0: number, b0: number): Promise<void> {
    for (const f of frames) sendFrom(anon, f);
    anon.send(authWith('carol-token'));
    const auth = await anon.nextOfType('AUTH_MESSAGE', 3000);
    // Nothing was answered before AUTH SUCCESS (frames of one connection are handled in order).
    expect(anon.frames[0]).toBe(auth);
    if (auth.status !== 'SUCCESS') throw new Error(`carol's login failed: ${JSON.stringify(auth)}`);
    const bConnect = await waitIndex(bob, b0, isConnect(C), "carol's CONNECT at B");
    const aConnect = await waitIndex(alice, a0, isConnect(C), "carol's CONNECT at A");
    expect(bob.frames.slice(b0, bConnect)).toEqual([]);
    expect(alice.frames.slice(a0, aConnect)).toEqual([]);
    // The connection is usable now.
    anon.send(chat('carol is in'));
    expect((await bob.next((f) => f.type === 'CHAT_MESSAGE' && f.serverData.sender === C, 3000)).serverData.message).toBe('carol is in');
    await anon.close();
    await waitIndex(bob, bConnect, isDisconnect(C), "carol's DISCONNECT at B");
    await waitIndex(alice, aConnect, isDisconnect(C), "carol's DISCONNECT at A");
    expect(bob.frames.length).toBe(bConnect + 3);
  }

  it('discards arbitrary frames before AUTH_MESSAGE: no answer, nothing reaches anyone, the later AUTH_MESSAGE works', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(junk, { minLength: 1, maxLength: 8 }), async (frames) => {
        const b0 = bob.frames.length;
        const a0 = alice.frames.length;
        const anon = await scope.connect(gw.wsUrl);
        try {
          await discardedBeforeAuth(anon, frames, a0, b0);
        } finally {
          // Whatever happened, carol is offline again before the next run.
          if (!anon.closeInfo) {
            await anon.close();
            await waitIndex(bob, b0, isDisconnect(C), "carol's DISCONNECT at B").catch(() => undefined);
          }
        }
      }),
      { ...FC_OPTIONS, numRuns: 80 },
    );
  });

  it('an AUTH_MESSAGE frame with any serverData but no valid token is refused with "2" and closed 4401; nothing reaches anyone', async () => {
    const authFrame = fc
      .record(
        {
          type: fc.constant('AUTH_MESSAGE'),
          serverData: fc.oneof(anyJson, fc.record({ authToken: fc.oneof(fc.string({ maxLength: 40 }), anyJson), other: anyJson }, { requiredKeys: [] })),
          clientData: anyJson,
        },
        { requiredKeys: ['type'] },
      )
      .filter((f) => !DEMO_TOKENS.has((f.serverData as { authToken?: unknown } | undefined)?.authToken as string));
    await fc.assert(
      fc.asyncProperty(fc.array(junk, { maxLength: 3 }), authFrame, fc.array(junk, { maxLength: 3 }), async (before, frame, after) => {
        const b0 = bob.frames.length;
        const anon = await scope.connect(gw.wsUrl);
        for (const f of before) sendFrom(anon, f);
        anon.send(frame);
        for (const f of after) sendFrom(anon, f);
        const closed = await closedWithin(anon, 3000);
        expect(closed.code).toBe(4401);
        expect(anon.frames).toHaveLength(1);
        expect(anon.frames[0]).toMatchObject({ type: 'AUTH_MESSAGE', status: 'ERROR', error: { errorCode: '2' } });
        const marker = `marker-${++markerSeq}`;
        alice.send(chat(marker));
        const bEnd = await waitIndex(bob, b0, isMarker(marker), `B's marker ${marker}`);
        expect(bob.frames.slice(b0, bEnd)).toEqual([]);
      }),
      { ...FC_OPTIONS, numRuns: 60 },
    );
  });
});
