/**
 * docs/protocol.md "DIALOG_MESSAGE" and "DELIVERY_MESSAGE": routing to the receiver with clientData
 * forwarded as an equal JSON value, server and client message ids, exactly one DELIVERY per
 * accepted dialog, validation, dedup of (sender, messageId), ordering, and a connection's next
 * frame not waiting for a DELIVERY.
 */
import { ENGINES } from '../../support/deployment';
import { chat, dialog, frameError, isDisconnect, isType } from '../../support/frames';
import { eventually, sleep } from '../../support/time';
import type { Frame } from '../../support/ws-client';
import { ID, protocolScope, QUIET_MS, T } from './harness';

jest.setTimeout(20_000);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

const isDialog = isType('DIALOG_MESSAGE');
const isDelivery = isType('DELIVERY_MESSAGE');

describe.each(ENGINES)('DIALOG_MESSAGE (%s engine)', (engine) => {
  const scope = protocolScope();
  afterEach(() => scope.closeAll());

  describe('routing', () => {
    it('reaches the receiver only, with clientData deep-equal, a UUID, sender and sendTime; the sender gets SUCCESS with that id', async () => {
      const dep = await scope.deployment(engine);
      const [alice, bob, carol] = await scope.loginAll(dep, [T.alice, T.bob, T.carol]);
      const clientData = {
        message: 'hi bob 👋',
        nested: { list: [1, 'two', { three: 3 }, [], {}], deep: { deeper: { deepest: true } } },
        numbers: [0, -1, 1.5, 1e21, 12345678901234],
        nothing: null,
        flags: [true, false],
        tricky: '"quoted" \\ </script> \u2028 \u0000',
      };
      const before = Date.now();
      alice.send(dialog(ID.bob, clientData));
      const got = await bob.next(isDialog);
      expect(got).toEqual({
        type: 'DIALOG_MESSAGE',
        clientData,
        serverData: { messageId: expect.stringMatching(UUID), sender: ID.alice, sendTime: expect.stringMatching(/^[1-9][0-9]*$/) },
      });
      expect(Number(got.serverData.sendTime)).toBeGreaterThanOrEqual(before - 5);
      expect(Number(got.serverData.sendTime)).toBeLessThanOrEqual(Date.now() + 5);
      const delivery = await alice.next(isDelivery);
      expect(delivery).toEqual({ type: 'DELIVERY_MESSAGE', status: 'SUCCESS', serverData: { messageId: got.serverData.messageId } });
      await carol.expectSilence(QUIET_MS, (f) => isDialog(f) || isDelivery(f));
      expect(alice.all('DIALOG_MESSAGE')).toEqual([]);
      expect(bob.all('DELIVERY_MESSAGE')).toEqual([]);
      expect(alice.all('DELIVERY_MESSAGE')).toHaveLength(1);
    });

    it('every dialog gets its own server messageId', async () => {
      const dep = await scope.deployment(engine);
      const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      for (let i = 0; i < 5; i++) alice.send(dialog(ID.bob, { i }));
      const ids = new Set<string>();
      for (let i = 0; i < 5; i++) ids.add((await bob.next(isDialog)).serverData.messageId);
      expect(ids.size).toBe(5);
    });

    it.each([
      ['a string', 'just a string'],
      ['an empty string', ''],
      ['a number', 42.5],
      ['zero', 0],
      ['false', false],
      ['null', null],
      ['an array', [1, [2, [3]], { a: null }]],
      ['an empty object', {}],
    ])('forwards clientData that is %s as an equal JSON value', async (_what, clientData) => {
      const dep = await scope.deployment(engine);
      const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      alice.send(dialog(ID.bob, clientData));
      const got = await bob.next(isDialog);
      expect(got.clientData).toEqual(clientData);
      expect('clientData' in got).toBe(true);
      expect((await alice.next(isDelivery)).status).toBe('SUCCESS');
    });

    it('a receiver that is not online: DELIVERY ERROR, nothing delivered (not even when it logs in later)', async () => {
      const dep = await scope.deployment(engine);
      const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      alice.send(dialog(ID.dave, { to: 'dave' }, 'to-dave-1'));
      alice.send(dialog('no-such-user', { to: 'nobody' }));
      // Two receivers: the protocol orders DELIVERYs per receiver only.
      const deliveries = [await alice.next(isDelivery), await alice.next(isDelivery)];
      expect(deliveries).toContainEqual({ type: 'DELIVERY_MESSAGE', status: 'ERROR', serverData: { messageId: 'to-dave-1' } });
      expect(deliveries).toContainEqual({ type: 'DELIVERY_MESSAGE', status: 'ERROR', serverData: { messageId: expect.stringMatching(UUID) } });
      const dave = await scope.login(dep.wsUrl(2), T.dave);
      // One quiet period watched on both; bob never gets a dialog in this test, before it either.
      await Promise.all([dave.expectSilence(QUIET_MS, isDialog), bob.expectSilence(QUIET_MS, isDialog)]);
      expect(bob.all('DIALOG_MESSAGE')).toEqual([]);
      expect(alice.all('DELIVERY_MESSAGE')).toHaveLength(2);
    });

    it('a receiver that just left gets nothing and the sender gets ERROR', async () => {
      const dep = await scope.deployment(engine);
      const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      await bob.close();
      await alice.next(isDisconnect(ID.bob));
      alice.send(dialog(ID.bob, 'gone?', 'after-leave'));
      expect(await alice.next(isDelivery)).toMatchObject({ status: 'ERROR', serverData: { messageId: 'after-leave' } });
      expect(bob.all('DIALOG_MESSAGE')).toEqual([]);
    });

    it('uses a client-supplied messageId (1 to 64 characters of A-Za-z0-9_-)', async () => {
      const dep = await scope.deployment(engine);
      const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      for (const id of ['a', 'Client_msg-42', 'x'.repeat(64), '0123456789-_ABCxyz']) {
        alice.send(dialog(ID.bob, { id }, id));
        expect((await bob.next(isDialog)).serverData).toMatchObject({ messageId: id, sender: ID.alice });
        expect(await alice.next(isDelivery)).toEqual({ type: 'DELIVERY_MESSAGE', status: 'SUCCESS', serverData: { messageId: id } });
      }
    });

    it('a dialog to oneself is delivered to oneself', async () => {
      const dep = await scope.deployment(engine);
      const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      alice.send(dialog(ID.alice, { note: 'to self' }, 'self-1'));
      const got = await alice.next(isDialog);
      expect(got).toMatchObject({ clientData: { note: 'to self' }, serverData: { messageId: 'self-1', sender: ID.alice } });
      expect(await alice.next(isDelivery)).toMatchObject({ status: 'SUCCESS', serverData: { messageId: 'self-1' } });
      await bob.expectSilence(QUIET_MS, isDialog);
    });
  });

  describe('validation', () => {
    const invalid: [string, Frame][] = [
      ['a messageId of 65 characters', dialog(ID.bob, 'x', 'x'.repeat(65))],
      ['a messageId with a space', dialog(ID.bob, 'x', 'bad id')],
      ['a messageId with a dot', dialog(ID.bob, 'x', 'bad.id')],
      ['a messageId with a non-ASCII letter', dialog(ID.bob, 'x', 'idé')],
      ['an empty messageId', dialog(ID.bob, 'x', '')],
      ['a numeric messageId', { type: 'DIALOG_MESSAGE', clientData: 'x', serverData: { receiver: ID.bob, messageId: 7 } }],
      ['a null messageId', { type: 'DIALOG_MESSAGE', clientData: 'x', serverData: { receiver: ID.bob, messageId: null } }],
      ['an object messageId', { type: 'DIALOG_MESSAGE', clientData: 'x', serverData: { receiver: ID.bob, messageId: { id: 'a' } } }],
      ['no receiver', { type: 'DIALOG_MESSAGE', clientData: 'x', serverData: {} }],
      ['an empty receiver', { type: 'DIALOG_MESSAGE', clientData: 'x', serverData: { receiver: '' } }],
      ['a numeric receiver', { type: 'DIALOG_MESSAGE', clientData: 'x', serverData: { receiver: 2 } }],
      ['no serverData', { type: 'DIALOG_MESSAGE', clientData: 'x' }],
      ['serverData a string', { type: 'DIALOG_MESSAGE', clientData: 'x', serverData: ID.bob }],
      ['no clientData', { type: 'DIALOG_MESSAGE', serverData: { receiver: ID.bob } }],
      ['no clientData and a messageId', { type: 'DIALOG_MESSAGE', serverData: { receiver: ID.bob, messageId: 'm1' } }],
    ];
    it.each(invalid)('%s: INVALID_MESSAGE for DIALOG_MESSAGE, no DELIVERY, nothing delivered', async (_what, frame) => {
      const dep = await scope.deployment(engine);
      const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      alice.send(frame);
      expect(await alice.nextOfType('ERROR_MESSAGE')).toEqual(frameError('INVALID_MESSAGE', 'DIALOG_MESSAGE'));
      // Still usable, and an invalid frame reserved no id. Dialogs and DELIVERYs of one sender to
      // one receiver keep their order, so the first ones seen being these shows the invalid frame
      // was neither delivered nor answered with a DELIVERY.
      alice.send(dialog(ID.bob, 'valid', 'm1'));
      expect(await bob.next()).toMatchObject({ type: 'DIALOG_MESSAGE', clientData: 'valid' });
      expect(await alice.next(isDelivery)).toMatchObject({ status: 'SUCCESS', serverData: { messageId: 'm1' } });
      expect(alice.all('DELIVERY_MESSAGE')).toHaveLength(1);
      expect(alice.all('ERROR_MESSAGE')).toHaveLength(1);
    });

    it('forwards clientData byte-exact: numbers beyond a double and escapes arrive as written, whitespace between tokens dropped', async () => {
      const dep = await scope.deployment(engine);
      const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      const written = '{ "huge": 1e400, "id": 12345678901234567890123, "tiny": 1e-400, "s": "\\u0041\\n", "list": [ 1.50 , -0 ] }';
      alice.send(`{"type":"DIALOG_MESSAGE","clientData":${written},"serverData":{"receiver":"${ID.bob}"}}`);
      await bob.next(isDialog);
      const raw = bob.rawFrames.find((f) => f.includes('"huge"'))!;
      expect(raw).toContain('"clientData":{"huge":1e400,"id":12345678901234567890123,"tiny":1e-400,"s":"\\u0041\\n","list":[1.50,-0]}');
      expect(await alice.next(isDelivery)).toMatchObject({ status: 'SUCCESS' });
    });

    it('DIALOG_MAX_BYTES bounds the UTF-8 bytes of the compact JSON of clientData', async () => {
      const dep = await scope.deployment(engine, { DIALOG_MAX_BYTES: '32' });
      const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      const accepted: [string, unknown][] = [
        ['30 ASCII characters in a string (32 bytes with the quotes)', 'a'.repeat(30)],
        ['15 two-byte characters in a string (32 bytes)', 'é'.repeat(15)],
        ['an object of exactly 32 bytes', { k: 'b'.repeat(24) }], // {"k":"bbbb..."} = 8 + 24
      ];
      for (const [what, clientData] of accepted) {
        expect(Buffer.byteLength(JSON.stringify(clientData))).toBe(32);
        alice.send(dialog(ID.bob, clientData));
        const got = await bob.next(isDialog).catch((e: Error) => Promise.reject(new Error(`${what}: ${e.message}`)));
        expect(got.clientData).toEqual(clientData);
        expect((await alice.next(isDelivery)).status).toBe('SUCCESS');
      }
      // Whitespace in the frame does not count: only the compact JSON is measured.
      alice.send(`{"type":"DIALOG_MESSAGE","clientData":  {  "k" :  "${'c'.repeat(24)}"   } ,"serverData":{"receiver":"${ID.bob}"}}`);
      expect((await bob.next(isDialog)).clientData).toEqual({ k: 'c'.repeat(24) });
      expect((await alice.next(isDelivery)).status).toBe('SUCCESS');

      const refused: unknown[] = ['a'.repeat(31), 'é'.repeat(15) + 'a', { k: 'b'.repeat(25) }, '😀'.repeat(8)];
      for (const clientData of refused) {
        expect(Buffer.byteLength(JSON.stringify(clientData))).toBeGreaterThan(32);
        alice.send(dialog(ID.bob, clientData, 'too-big'));
        expect(await alice.nextOfType('ERROR_MESSAGE')).toEqual(frameError('INVALID_MESSAGE', 'DIALOG_MESSAGE'));
      }
      await alice.expectSilence(QUIET_MS, isDelivery);
      expect(bob.all('DIALOG_MESSAGE')).toHaveLength(4);
      // The refused id was not reserved.
      alice.send(dialog(ID.bob, 'small', 'too-big'));
      expect((await bob.next(isDialog)).serverData.messageId).toBe('too-big');
    });

    it('extra fields are ignored', async () => {
      const dep = await scope.deployment(engine);
      const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      alice.send({ ...dialog(ID.bob, { a: 1 }, 'x1'), messageType: 'private', serverData: { receiver: ID.bob, messageId: 'x1', sender: 'forged', sendTime: '1' } });
      const got = await bob.next(isDialog);
      expect(got.serverData).toEqual({ messageId: 'x1', sender: ID.alice, sendTime: expect.not.stringMatching(/^1$/) });
      expect(got).not.toHaveProperty('messageType');
    });
  });

  describe('dedup of (sender, messageId)', () => {
    it('a repeat after delivery is answered SUCCESS and not delivered again, whatever the receiver or content, even after a reconnect', async () => {
      const dep = await scope.deployment(engine);
      const [alice, bob, carol] = await scope.loginAll(dep, [T.alice, T.bob, T.carol]);
      alice.send(dialog(ID.bob, { v: 1 }, 'dup-1'));
      expect((await bob.next(isDialog)).clientData).toEqual({ v: 1 });
      expect(await alice.next(isDelivery)).toMatchObject({ status: 'SUCCESS', serverData: { messageId: 'dup-1' } });

      alice.send(dialog(ID.bob, { v: 1 }, 'dup-1')); // same
      alice.send(dialog(ID.bob, { v: 2 }, 'dup-1')); // other content
      alice.send(dialog(ID.carol, { v: 3 }, 'dup-1')); // other receiver
      for (let i = 0; i < 3; i++) {
        expect(await alice.next(isDelivery)).toEqual({ type: 'DELIVERY_MESSAGE', status: 'SUCCESS', serverData: { messageId: 'dup-1' } });
      }

      // From a new connection of the same sender.
      await alice.close();
      await bob.next(isDisconnect(ID.alice));
      const alice2 = await scope.login(dep.wsUrl(3), T.alice);
      alice2.send(dialog(ID.bob, { v: 4 }, 'dup-1'));
      expect(await alice2.next(isDelivery)).toMatchObject({ status: 'SUCCESS', serverData: { messageId: 'dup-1' } });

      // One quiet period watched on both; the counts below cover what came before it.
      await Promise.all([bob.expectSilence(QUIET_MS, isDialog), carol.expectSilence(QUIET_MS, isDialog)]);
      expect(bob.all('DIALOG_MESSAGE')).toHaveLength(1);
      expect(carol.all('DIALOG_MESSAGE')).toHaveLength(0);
      expect(alice2.all('DELIVERY_MESSAGE')).toHaveLength(1);
    });

    it('the key includes the sender: another sender may use the same messageId', async () => {
      const dep = await scope.deployment(engine);
      const [alice, bob, carol] = await scope.loginAll(dep, [T.alice, T.bob, T.carol]);
      alice.send(dialog(ID.bob, 'from alice', 'shared-id'));
      expect((await bob.next(isDialog)).serverData).toMatchObject({ sender: ID.alice, messageId: 'shared-id' });
      expect((await alice.next(isDelivery)).status).toBe('SUCCESS');
      carol.send(dialog(ID.bob, 'from carol', 'shared-id'));
      expect(await bob.next(isDialog)).toMatchObject({ clientData: 'from carol', serverData: { sender: ID.carol, messageId: 'shared-id' } });
      expect((await carol.next(isDelivery)).status).toBe('SUCCESS');
    });

    it('a repeat after an ERROR is a new attempt: delivered once the receiver is online', async () => {
      const dep = await scope.deployment(engine);
      const [alice] = await scope.loginAll(dep, [T.alice]);
      alice.send(dialog(ID.dave, { try: 1 }, 'retry-1'));
      expect(await alice.next(isDelivery)).toMatchObject({ status: 'ERROR', serverData: { messageId: 'retry-1' } });
      alice.send(dialog(ID.dave, { try: 2 }, 'retry-1'));
      expect(await alice.next(isDelivery)).toMatchObject({ status: 'ERROR', serverData: { messageId: 'retry-1' } });
      const dave = await scope.login(dep.wsUrl(1), T.dave);
      alice.send(dialog(ID.dave, { try: 3 }, 'retry-1'));
      expect(await dave.next(isDialog)).toMatchObject({ clientData: { try: 3 }, serverData: { messageId: 'retry-1', sender: ID.alice } });
      expect(await alice.next(isDelivery)).toMatchObject({ status: 'SUCCESS', serverData: { messageId: 'retry-1' } });
      // And now it is remembered.
      alice.send(dialog(ID.dave, { try: 4 }, 'retry-1'));
      expect(await alice.next(isDelivery)).toMatchObject({ status: 'SUCCESS', serverData: { messageId: 'retry-1' } });
      await dave.expectSilence(QUIET_MS, isDialog);
      expect(dave.all('DIALOG_MESSAGE')).toHaveLength(1);
    });

    it('DEDUP_WINDOW_MS bounds the memory: after it, the same id is delivered again', async () => {
      const dep = await scope.deployment(engine, { DEDUP_WINDOW_MS: '1000' });
      const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      alice.send(dialog(ID.bob, 'first', 'windowed'));
      expect((await bob.next(isDialog)).clientData).toBe('first');
      alice.send(dialog(ID.bob, 'inside the window', 'windowed'));
      expect((await alice.next(isDelivery)).status).toBe('SUCCESS');
      expect((await alice.next(isDelivery)).status).toBe('SUCCESS');
      await sleep(1500); // past the window
      alice.send(dialog(ID.bob, 'after the window', 'windowed'));
      expect((await bob.next(isDialog)).clientData).toBe('after the window');
      expect(bob.all('DIALOG_MESSAGE')).toHaveLength(2);
    });
  });

  describe('ordering and concurrency', () => {
    it('200 dialogs in a burst arrive in order, with exactly one DELIVERY each, in the same order', async () => {
      const dep = await scope.deployment(engine, { RATE_LIMIT_BURST: '1000', RATE_LIMIT_PER_SEC: '1000' });
      const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      const n = 200;
      // Half with a client messageId (the dedup path), half without (server UUIDs), interleaved.
      for (let i = 0; i < n; i++) alice.send(dialog(ID.bob, { seq: i }, i % 2 === 0 ? `burst-${i}` : undefined));
      await eventually(() => bob.all('DIALOG_MESSAGE').length >= n && alice.all('DELIVERY_MESSAGE').length >= n, 10_000, 'the burst');
      await alice.expectSilence(QUIET_MS, isDelivery);
      const received = bob.all('DIALOG_MESSAGE');
      expect(received.map((f) => f.clientData.seq)).toEqual(Array.from({ length: n }, (_, i) => i));
      const deliveries = alice.all('DELIVERY_MESSAGE');
      expect(deliveries).toHaveLength(n);
      expect(deliveries.every((d) => d.status === 'SUCCESS')).toBe(true);
      expect(deliveries.map((d) => d.serverData.messageId)).toEqual(received.map((f) => f.serverData.messageId));
      expect(received.filter((_, i) => i % 2 === 0).map((f) => f.serverData.messageId)).toEqual(
        Array.from({ length: n / 2 }, (_, k) => `burst-${2 * k}`),
      );
      expect(new Set(received.map((f) => f.serverData.messageId)).size).toBe(n);
    });

    it('dialogs to an offline receiver interleaved with dialogs to an online one: one DELIVERY each, in order', async () => {
      const dep = await scope.deployment(engine, { RATE_LIMIT_BURST: '1000', RATE_LIMIT_PER_SEC: '1000' });
      const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      const n = 60;
      for (let i = 0; i < n; i++) alice.send(dialog(i % 3 === 0 ? ID.dave : ID.bob, { seq: i }, `mix-${i}`));
      await eventually(() => alice.all('DELIVERY_MESSAGE').length >= n, 10_000, 'all deliveries');
      await alice.expectSilence(QUIET_MS, isDelivery);
      const deliveries = alice.all('DELIVERY_MESSAGE');
      expect(deliveries).toHaveLength(n);
      const toBob = deliveries.filter((d) => Number(d.serverData.messageId.slice(4)) % 3 !== 0);
      expect(toBob.map((d) => d.serverData.messageId)).toEqual(bob.all('DIALOG_MESSAGE').map((f) => f.serverData.messageId));
      for (const d of deliveries) {
        expect(d.status).toBe(Number(d.serverData.messageId.slice(4)) % 3 === 0 ? 'ERROR' : 'SUCCESS');
      }
      expect(bob.all('DIALOG_MESSAGE').map((f) => f.clientData.seq)).toEqual(
        Array.from({ length: n }, (_, i) => i).filter((i) => i % 3 !== 0),
      );
    });

    it('the connection\'s next frame is processed while a DELIVERY is still outstanding; a repeat meanwhile gets the same outcome', async () => {
      // bob stops reading: once the socket buffers are full, a dialog to bob cannot be handed over
      // and its DELIVERY waits; alice's next frames must not.
      const big = 1024 * 1024;
      const dep = await scope.deployment(engine, {
        DIALOG_MAX_BYTES: String(big + 64),
        MAX_FRAME_BYTES: String(big + 4096),
        MAX_MESSAGE_FRAME_BYTES: String(big + 4096),
        // alice must be able to send faster than bob reads, whatever the inbound budget.
        INBOUND_BYTES_PER_SEC: String(1024 * 1024 * 1024),
        SEND_BUFFER_MAX_BYTES: String(512 * 1024 * 1024),
      });
      // Both on one node: across nodes, DELIVERY_TIMEOUT_MS would (rightly) turn the stuck
      // hand-over into ERROR; here the point is only that alice's connection is not held up.
      const alice = await scope.login(dep.wsUrl(0), T.alice);
      const bob = await scope.login(dep.wsUrl(0), T.bob);
      await alice.next((f) => f.type === 'USER_CONNECTION_MESSAGE');
      bob.socket.pause();
      const filler = 'f'.repeat(big);
      let sent = 0;
      // Send fillers until the DELIVERYs stop coming: bob's buffers are full. (Several outstanding
      // and none arriving for a while, so that a merely slow machine is not taken for a stall.)
      const delivered = () => alice.all('DELIVERY_MESSAGE').length;
      for (;;) {
        alice.send(dialog(ID.bob, filler, `fill-${sent++}`));
        await sleep(50);
        if (sent - delivered() >= 3) {
          const before = delivered();
          await sleep(400);
          if (delivered() === before) break;
        }
        if (sent >= 100) throw new Error('could not fill the receiver\'s buffers');
      }
      alice.send(dialog(ID.bob, 'stuck', 'stuck-1'));
      alice.send(chat('not blocked'));
      alice.send(dialog(ID.alice, 'to self', 'self-while-stuck'));
      expect((await alice.nextOfType('CHAT_MESSAGE')).serverData.message).toBe('not blocked');
      expect((await alice.next(isDialog)).serverData.messageId).toBe('self-while-stuck');
      expect(await alice.next((f) => isDelivery(f) && f.serverData.messageId === 'self-while-stuck')).toMatchObject({ status: 'SUCCESS' });
      const outstanding = (id: string) => !alice.all('DELIVERY_MESSAGE').some((d) => d.serverData.messageId === id);
      expect(outstanding('stuck-1')).toBe(true);
      // A repeat while the first attempt is pending gets that attempt's outcome, and is not delivered twice.
      alice.send(dialog(ID.bob, 'stuck, again', 'stuck-1'));
      await sleep(100);
      bob.socket.resume();
      await eventually(() => alice.all('DELIVERY_MESSAGE').filter((d) => d.serverData.messageId === 'stuck-1').length === 2, 15_000, 'the stuck DELIVERYs');
      const deliveries = alice.all('DELIVERY_MESSAGE').filter((d) => d.serverData.messageId !== 'self-while-stuck');
      expect(deliveries.map((d) => d.serverData.messageId)).toEqual([...Array.from({ length: sent }, (_, i) => `fill-${i}`), 'stuck-1', 'stuck-1']);
      expect(deliveries.every((d) => d.status === 'SUCCESS')).toBe(true);
      await eventually(() => bob.all('DIALOG_MESSAGE').length === sent + 1, 10_000, 'bob reading everything');
      expect(bob.all('DIALOG_MESSAGE').at(-1)!.clientData).toBe('stuck');
      await bob.expectSilence(QUIET_MS, isDialog);
      expect(bob.all('DIALOG_MESSAGE')).toHaveLength(sent + 1);
    });
  });
});

