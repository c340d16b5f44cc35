/**
 * README, "Add a message type": a module written the way the Nest docs teach (test/e2e/extension/
 * typing.module.ts: a @WebSocketGateway class with a ValidationPipe DTO, a guard, an interceptor
 * and a filter of its own) imported into the app, with no edit of the gateway: its message type
 * works, in order with the others, behind the login, and each Nest piece does what Nest documents.
 */
import { startGateway, type TestGateway } from '../../support/gateway';
import { Scope } from '../../support/scope';
import { sleep } from '../../support/time';
import { allowAddedFrameTypes } from '../../support/ws-client';
import { seen, TypingModule } from './typing.module';

allowAddedFrameTypes('TYPING_MESSAGE', 'TYPING_ACK', 'TYPING_ERROR');

describe('a message type added by a module (README, "Add a message type")', () => {
  /** The app with the module, for the whole file. */
  const shared = new Scope();
  /** What each test starts. */
  const scope = new Scope();
  let gw: TestGateway;
  const login = (token: string) => scope.login(gw.wsUrl, token);

  beforeAll(async () => {
    gw = await shared.gateway({}, { imports: [TypingModule] });
  });
  afterEach(async () => {
    await scope.closeAll();
    seen.length = 0;
  });
  afterAll(() => shared.closeAll());

  it('is routed to the module\'s handler, through its guard, interceptor and pipe, with the ChatClient', async () => {
    const alice = await login('alice-token');
    const bob = await login('bob-token');
    alice.send({ type: 'TYPING_MESSAGE', serverData: { receiver: '2' }, extra: 'ignored' });
    expect(await bob.nextOfType('TYPING_MESSAGE')).toEqual({ type: 'TYPING_MESSAGE', serverData: { sender: '1', stamp: expect.any(String) } });
    // What the handler returned came back to the sender, through the interceptor.
    expect(await alice.nextOfType('TYPING_ACK')).toEqual({ type: 'TYPING_ACK', serverData: { receiver: '2' } });
    expect(seen.filter((s) => !s.startsWith('connect'))).toEqual(['guard:ws:1', 'before:TYPING_MESSAGE', 'after:TYPING_ACK']);
  });

  it('keeps the order of a connection\'s frames across the module\'s type and the gateway\'s own', async () => {
    const alice = await login('alice-token');
    const bob = await login('bob-token');
    for (let i = 0; i < 5; i++) {
      alice.send({ type: 'TYPING_MESSAGE', serverData: { receiver: '2' } });
      alice.send({ type: 'DIALOG_MESSAGE', clientData: { i }, serverData: { receiver: '2' } });
    }
    const got: string[] = [];
    for (let i = 0; i < 10; i++) {
      const f = await bob.next((frame) => frame.type === 'TYPING_MESSAGE' || frame.type === 'DIALOG_MESSAGE');
      got.push(f.type === 'DIALOG_MESSAGE' ? `dialog ${f.clientData.i}` : 'typing');
    }
    expect(got).toEqual(['typing', 'dialog 0', 'typing', 'dialog 1', 'typing', 'dialog 2', 'typing', 'dialog 3', 'typing', 'dialog 4']);
  });

  it('answers a DTO that does not validate (ValidationPipe) with the protocol\'s INVALID_MESSAGE', async () => {
    const alice = await login('alice-token');
    alice.send({ type: 'TYPING_MESSAGE', serverData: { receiver: 42 } });
    expect(await alice.nextOfType('ERROR_MESSAGE')).toEqual({
      type: 'ERROR_MESSAGE',
      status: 'ERROR',
      error: { errorCode: 'INVALID_MESSAGE', message: expect.stringContaining('receiver') },
      requestType: 'TYPING_MESSAGE',
    });
  });

  it('answers a frame its own guard refuses with FORBIDDEN, and the handler does not run', async () => {
    const alice = await login('alice-token');
    alice.send({ type: 'TYPING_MESSAGE', serverData: { receiver: 'blocked' } });
    expect(await alice.nextOfType('ERROR_MESSAGE')).toMatchObject({ error: { errorCode: 'FORBIDDEN' }, requestType: 'TYPING_MESSAGE' });
    expect(seen.some((s) => s.startsWith('before:'))).toBe(false);
  });

  it('lets its own exception filter answer its own error', async () => {
    const alice = await login('alice-token');
    alice.send({ type: 'TYPING_MESSAGE', serverData: { receiver: 'nobody' } });
    expect(await alice.nextOfType('TYPING_ERROR')).toEqual({ type: 'TYPING_ERROR', serverData: { reason: 'nobody is not online' } });
    await alice.expectSilence(200, (f) => f.type === 'ERROR_MESSAGE');
    expect(seen).toContain('filter');
  });

  it('never runs for a connection that has not logged in: its frames are discarded like any other', async () => {
    const anonymous = await scope.connect(gw.wsUrl);
    anonymous.send({ type: 'TYPING_MESSAGE', serverData: { receiver: '2' } });
    await anonymous.expectSilence(300);
    expect(seen.filter((s) => s.startsWith('guard') || s.startsWith('before'))).toEqual([]);
  });

  it('gets the gateway\'s ChatClient in its connection and disconnect hooks', async () => {
    const alice = await login('alice-token');
    await alice.close();
    await sleep(100);
    const connects = seen.filter((s) => s.startsWith('connect:'));
    const disconnects = seen.filter((s) => s.startsWith('disconnect:'));
    expect(connects).toHaveLength(1);
    expect(disconnects).toEqual([connects[0].replace('connect:', 'disconnect:')]);
  });
});

describe('a gateway that asks for an endpoint of its own', () => {
  it('stops the app at start with an error that says why', async () => {
    const { WebSocketGateway } = await import('@nestjs/websockets');
    const { Module } = await import('@nestjs/common');
    @WebSocketGateway({ path: '/other' })
    class OtherPathGateway {}
    @Module({ providers: [OtherPathGateway] })
    class OtherPathModule {}
    await expect(startGateway({}, { imports: [OtherPathModule] })).rejects.toThrow(/one WebSocket endpoint.*WS_PATH/);
  });
});
