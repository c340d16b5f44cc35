import 'reflect-metadata';
import type { ArgumentMetadata } from '@nestjs/common';
import { Equals, IsInt, IsObject, IsOptional, IsString, Min, ValidateNested } from 'class-validator';
import { ChatMessageDto } from '../chat/dto/chat-message.dto';
import { DialogMessageDto } from '../dialog/dto/dialog-message.dto';
import { AuthMessageDto } from '../gateway/dto/auth-message.dto';
import { ChatClient } from '../messaging/chat-client';
import { FrameError } from './errors';
import { FrameValidationPipe } from './frame-validation.pipe';
import { RAW_CLIENT_DATA } from './inbound';
import { FrameErrorCode } from './protocol';

/** Deepest level: found through `design:type` of its holder only (no @Type anywhere). */
class LeafDto {
  @IsInt()
  @Min(1)
  count!: number;
}

class InnerDto {
  @IsString()
  label!: string;

  @IsObject()
  @ValidateNested()
  leaf!: LeafDto;
}

class OuterDto {
  @Equals('OUTER')
  type!: 'OUTER';

  @IsObject()
  @ValidateNested()
  inner!: InnerDto;

  @IsOptional()
  @IsString()
  note?: string;
}

const body = (metatype: unknown): ArgumentMetadata => ({ type: 'body', metatype: metatype as ArgumentMetadata['metatype'] });

describe('FrameValidationPipe', () => {
  const pipe = new FrameValidationPipe();

  /** The message of the FrameError the pipe throws (failing the test for anything else). */
  async function problem(value: unknown, metatype: unknown): Promise<string> {
    try {
      await pipe.transform(value, body(metatype));
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      expect(err.code).toBe(FrameErrorCode.INVALID_MESSAGE);
      return err.message;
    }
    throw new Error('the pipe accepted the value');
  }

  describe('valid frames', () => {
    it.each<[string, object, unknown]>([
      ['CHAT_MESSAGE', { type: 'CHAT_MESSAGE', serverData: { message: 'hi' } }, ChatMessageDto],
      ['DIALOG_MESSAGE with null clientData', { type: 'DIALOG_MESSAGE', clientData: null, serverData: { receiver: '2', messageId: 'm-1' } }, DialogMessageDto],
      ['AUTH_MESSAGE without serverData (handshake)', { type: 'AUTH_MESSAGE' }, AuthMessageDto],
      ['AUTH_MESSAGE with a token', { type: 'AUTH_MESSAGE', serverData: { authToken: 't' } }, AuthMessageDto],
      ['a nested DTO', { type: 'OUTER', inner: { label: 'x', leaf: { count: 2 } } }, OuterDto],
    ])('passes %s unchanged: the very same object, not a copy or an instance', async (_case, frame, metatype) => {
      const before = JSON.stringify(frame);
      const out = await pipe.transform(frame, body(metatype));
      expect(out).toBe(frame);
      expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
      expect(JSON.stringify(out)).toBe(before);
    });

    it('ignores fields the DTO does not declare, and keeps them', async () => {
      const frame = { type: 'CHAT_MESSAGE', serverData: { message: 'hi', extra: [1, 2] }, messageType: 7 };
      expect(await pipe.transform(frame, body(ChatMessageDto))).toBe(frame);
      expect(frame).toEqual({ type: 'CHAT_MESSAGE', serverData: { message: 'hi', extra: [1, 2] }, messageType: 7 });
    });

    it('keeps the byte-exact clientData the parser attached (RAW_CLIENT_DATA)', async () => {
      const frame = { type: 'DIALOG_MESSAGE', clientData: { big: Infinity }, serverData: { receiver: '2' } };
      Object.defineProperty(frame, RAW_CLIENT_DATA, { value: '{"big":1e400}' });
      const out = (await pipe.transform(frame, body(DialogMessageDto))) as Record<symbol, unknown>;
      expect(out[RAW_CLIENT_DATA]).toBe('{"big":1e400}');
    });
  });

  describe('invalid frames', () => {
    it.each<[string, unknown, unknown, string]>([
      ['a missing nested object', { type: 'CHAT_MESSAGE' }, ChatMessageDto, 'serverData must be an object'],
      ['a mistyped nested field', { type: 'CHAT_MESSAGE', serverData: { message: 3 } }, ChatMessageDto, 'serverData.message must be a string'],
      ['an empty nested field', { type: 'CHAT_MESSAGE', serverData: { message: '' } }, ChatMessageDto, 'serverData.message should not be empty'],
      ['a wrong type', { type: 'CHAT', serverData: { message: 'hi' } }, ChatMessageDto, 'type must be equal to CHAT_MESSAGE'],
      ['a missing clientData', { type: 'DIALOG_MESSAGE', serverData: { receiver: '2' } }, DialogMessageDto, 'clientData is required'],
      ['a custom message that already names its path', { type: 'DIALOG_MESSAGE', clientData: 1, serverData: { receiver: '2', messageId: 'a b' } }, DialogMessageDto, 'serverData.messageId must be 1 to 64 characters of A-Za-z0-9_-'],
      ['an array where an object is due', { type: 'DIALOG_MESSAGE', clientData: 1, serverData: [] }, DialogMessageDto, 'serverData must be an object'],
      ['a non-string token', { type: 'AUTH_MESSAGE', serverData: { authToken: 1 } }, AuthMessageDto, 'serverData.authToken must be a string'],
    ])('refuses %s with INVALID_MESSAGE naming the field with its path', async (_case, frame, metatype, message) => {
      expect(await problem(frame, metatype)).toBe(message);
    });

    it('names only the first failing field', async () => {
      expect(await problem({ type: 'NOPE', serverData: { message: 3 } }, ChatMessageDto)).toBe('type must be equal to CHAT_MESSAGE');
      expect(await problem({ type: 'OUTER', inner: { label: 1, leaf: { count: 0 } }, note: 5 }, OuterDto)).toBe('inner.label must be a string');
    });

    it('finds nested DTOs through design:type, to any depth, without @Type', async () => {
      expect(await problem({ type: 'OUTER', inner: { label: 'x', leaf: { count: 0 } } }, OuterDto)).toBe('inner.leaf.count must not be less than 1');
      expect(await problem({ type: 'OUTER', inner: { label: 'x', leaf: { count: 1.5 } } }, OuterDto)).toBe('inner.leaf.count must be an integer number');
      expect(await problem({ type: 'OUTER', inner: { label: 'x', leaf: 'flat' } }, OuterDto)).toBe('inner.leaf must be an object');
    });

    it.each<[string, unknown]>([
      ['null', null],
      ['an array', [{ type: 'CHAT_MESSAGE', serverData: { message: 'hi' } }]],
      ['a string', '{"type":"CHAT_MESSAGE"}'],
      ['a number', 42],
      ['undefined', undefined],
    ])('refuses %s as a value with "a frame must be a JSON object"', async (_case, value) => {
      expect(await problem(value, ChatMessageDto)).toBe('a frame must be a JSON object');
    });
  });

  describe('what it never reads', () => {
    it('never touches a field the DTO does not declare (a getter that throws stays unread)', async () => {
      const frame = { type: 'CHAT_MESSAGE', serverData: { message: 'hi' } };
      Object.defineProperty(frame, 'undeclared', { enumerable: true, get: () => { throw new Error('undeclared field read'); } });
      Object.defineProperty(frame.serverData, 'undeclaredToo', { enumerable: true, get: () => { throw new Error('nested undeclared field read'); } });
      expect(await pipe.transform(frame, body(ChatMessageDto))).toBe(frame);
    });

    it('reads exactly the declared properties of the frame and of its nested DTOs', async () => {
      const read: string[] = [];
      const spy = <T extends object>(target: T, at: string): T =>
        new Proxy(target, {
          get(t, key, receiver) {
            if (typeof key === 'string') read.push(`${at}${key}`);
            return Reflect.get(t, key, receiver) as unknown;
          },
          ownKeys(t) {
            read.push(`${at}<keys>`);
            return Reflect.ownKeys(t);
          },
        });
      const frame = spy({ type: 'CHAT_MESSAGE', serverData: spy({ message: 'hi', junk: 1 }, 'serverData.'), junk: 2 }, '');
      expect(await pipe.transform(frame, body(ChatMessageDto))).toBe(frame);
      // `then`: resolving the async transform's promise with the frame looks it up (not the pipe's doing).
      expect([...new Set(read)].filter((key) => key !== 'then').sort()).toEqual(['serverData', 'serverData.message', 'type']);
    });

    it('treats clientData as opaque: never read or walked, even when every access to it throws', async () => {
      // (class-validator does ask `value instanceof Promise` of every value: that is no walk.)
      const hostile = new Proxy(
        {},
        {
          get: () => { throw new Error('clientData read'); },
          ownKeys: () => { throw new Error('clientData walked'); },
        },
      );
      const frame = { type: 'DIALOG_MESSAGE', clientData: hostile, serverData: { receiver: '2' } };
      const out = (await pipe.transform(frame, body(DialogMessageDto))) as typeof frame;
      expect(out).toBe(frame);
      expect(out.clientData).toBe(hostile);
    });

    it('validates a frame of 100,000 unknown keys in a few milliseconds', async () => {
      const frame: Record<string, unknown> = { type: 'CHAT_MESSAGE', serverData: { message: 'hi' } };
      const junk: Record<string, unknown> = {};
      for (let i = 0; i < 100_000; i++) {
        frame[`k${i}`] = { v: i };
        junk[`j${i}`] = i;
      }
      (frame.serverData as Record<string, unknown>).junk = junk;
      await pipe.transform({ type: 'CHAT_MESSAGE', serverData: { message: 'warm-up' } }, body(ChatMessageDto));
      const wrongType = { ...frame, type: 'NOPE' };
      const start = process.hrtime.bigint();
      const passed = pipe.transform(frame, body(ChatMessageDto));
      const refused = problem(wrongType, ChatMessageDto);
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      expect(await passed).toBe(frame);
      expect(await refused).toBe('type must be equal to CHAT_MESSAGE');
      // Whitelisting 100,000 keys one by one takes hundreds of ms; the bound leaves room for a loaded CI machine.
      expect(ms).toBeLessThan(100);
    });
  });

  describe('what it leaves alone', () => {
    it('returns values without a DTO class as they are (no metatype, or a primitive one)', async () => {
      const frame = { anything: true };
      expect(await pipe.transform(frame, { type: 'body' })).toBe(frame);
      expect(await pipe.transform('text', body(String))).toBe('text');
      expect(await pipe.transform(frame, body(Object))).toBe(frame);
    });

    it('passes the @ConnectedSocket() client through (a class without validation metadata)', async () => {
      const client = new ChatClient(
        { isOpen: true, write: () => true, writeBroadcast: () => undefined, probe: () => Promise.resolve(true), close: () => undefined, drop: () => undefined },
        {} as never,
      );
      expect(await pipe.transform(client, { type: 'custom', metatype: ChatClient })).toBe(client);
      expect(await pipe.transform(client, body(ChatClient))).toBe(client);
    });
  });
});
