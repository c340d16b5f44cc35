/**
 * docs/protocol.md "Events": a Nest service consumes the events with `@EventPattern` on Nest's NATS
 * transport (@nestjs/microservices, Transport.NATS), as the README shows. Nest maps a message that
 * is not its own `{pattern, data}` envelope to `{pattern: <subject>, data: <the message>}`, and one
 * without an `id` is an event: so `@EventPattern('mpgp.events.chat')` gets each chat event's
 * payload. Checked with core NATS and with JetStream publishing (where each message carries a
 * reply subject for the stream's acknowledgement, which the consumer must not answer).
 */
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, NatsContext, Payload, Transport, type MicroserviceOptions } from '@nestjs/microservices';
import { chat, isChat } from '../../support/frames';
import { createStream, readStream } from '../../support/nats-events';
import { startNatsServer, type NatsServer } from '../../support/nats-server';
import { Scope } from '../../support/scope';
import { eventually } from '../../support/time';

jest.setTimeout(30_000);

/** The payload of `mpgp.events.chat` (docs/protocol.md, "Events"). */
interface ChatEvent {
  id: string;
  time: string;
  node: string;
  message: string;
  sender: string;
  sendTime: string;
}

/** The payload of `mpgp.events.dialog`. */
interface DialogEvent {
  id: string;
  messageId: string;
  sender: string;
  receiver: string;
  clientData: unknown;
  status: 'SUCCESS' | 'ERROR';
}

const received: { subject: string; data: unknown }[] = [];

/** A consumer written as the Nest docs teach (and as the README's example). */
@Controller()
class ChatEventsController {
  @EventPattern('mpgp.events.chat')
  onChat(@Payload() event: ChatEvent, @Ctx() context: NatsContext): void {
    received.push({ subject: context.getSubject(), data: event });
  }

  @EventPattern('mpgp.events.dialog')
  onDialog(@Payload() event: DialogEvent, @Ctx() context: NatsContext): void {
    received.push({ subject: context.getSubject(), data: event });
  }
}

@Module({ controllers: [ChatEventsController] })
class ChatEventsModule {}

const scope = new Scope();
let nats: NatsServer;
let consumer: INestMicroservice;

beforeAll(async () => {
  nats = await startNatsServer();
  consumer = await NestFactory.createMicroservice<MicroserviceOptions>(ChatEventsModule, {
    transport: Transport.NATS,
    options: { servers: [nats.url] },
    logger: false,
  });
  await consumer.listen();
});
afterAll(async () => {
  await consumer?.close();
  await nats?.remove();
});
beforeEach(() => received.splice(0));
afterEach(() => scope.closeAll());

describe.each([
  ['core NATS', {}],
  ['JetStream', { EVENTS_JETSTREAM: 'true' }],
])('a Nest microservice with @EventPattern (%s)', (mode, env: Record<string, string>) => {
  it('receives each chat and dialog event, its payload as published', async () => {
    if (mode === 'JetStream') await createStream(nats.url, 'NEST_CONSUMER', ['mpgp.events.>']);
    const gw = await scope.gateway({ EVENTS_NATS_URL: nats.url, ...env });
    const alice = await scope.login(gw.wsUrl, 'alice-token');
    const bob = await scope.login(gw.wsUrl, 'bob-token');
    alice.send(chat(`hello nest (${mode})`));
    await bob.next(isChat(`hello nest (${mode})`));
    alice.send({ type: 'DIALOG_MESSAGE', clientData: { secret: 'for bob' }, serverData: { receiver: '2', messageId: 'nest-1' } });
    await alice.nextOfType('DELIVERY_MESSAGE');

    await eventually(() => received.length === 2, 4000, 'the chat and the dialog at the consumer');
    const chatEvent = received.find((r) => r.subject === 'mpgp.events.chat')!;
    expect(chatEvent.data).toEqual({
      id: expect.any(String),
      time: expect.stringMatching(/^\d+$/),
      node: expect.any(String),
      message: `hello nest (${mode})`,
      sender: '1',
      sendTime: expect.stringMatching(/^\d+$/),
    });
    const dialogEvent = received.find((r) => r.subject === 'mpgp.events.dialog')!;
    expect(dialogEvent.data).toMatchObject({ messageId: 'nest-1', sender: '1', receiver: '2', clientData: { secret: 'for bob' }, status: 'SUCCESS' });

    if (mode === 'JetStream') {
      // The stream acknowledged them all: the consumer's subscription did not answer in its place.
      await eventually(async () => (await readStream(nats.url, 'NEST_CONSUMER')).length === 4, 4000, 'connect x2, chat, dialog in the stream');
    }
  });
});
