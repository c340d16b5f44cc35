import { BadRequestException, type ArgumentMetadata } from '@nestjs/common';
import { apiValidationPipe } from '../server-api.decorators';
import { PostChatDto } from './chat.dto';
import { PostDialogDto } from './dialog.dto';
import { DisconnectDto, ProfilePatchDto } from './users.dto';

/** The Server API's ValidationPipe on a body of `metatype`: the DTO instance, or the 400's body. */
async function validate(metatype: ArgumentMetadata['metatype'], body: unknown): Promise<{ value?: unknown; refused?: unknown }> {
  try {
    return { value: await apiValidationPipe.transform(body, { type: 'body', metatype }) };
  } catch (err) {
    if (!(err instanceof BadRequestException)) throw err;
    return { refused: err.getResponse() };
  }
}

const fieldsOf = async (metatype: ArgumentMetadata['metatype'], body: unknown) => ((await validate(metatype, body)).refused as { fields?: string[] } | undefined)?.fields;

describe('Server API DTOs (through the API ValidationPipe)', () => {
  describe('PostChatDto', () => {
    it('a sender and a message: valid, as a PostChatDto', async () => {
      const { value } = await validate(PostChatDto, { sender: 'bot', message: 'hi' });
      expect(value).toBeInstanceOf(PostChatDto);
      expect(value).toEqual({ sender: 'bot', message: 'hi' });
    });

    it.each([
      [{}, ['sender', 'message']],
      [{ sender: '', message: 'x' }, ['sender']],
      [{ sender: 'x', message: 7 }, ['message']],
      [{ sender: null, message: 'x' }, ['sender']],
      [{ sender: 'x', message: 'y', type: 'CHAT_MESSAGE' }, ['type']],
    ])('%j -> 400 naming %j', async (body, fields) => {
      expect(await fieldsOf(PostChatDto, body)).toEqual(fields);
    });

    it('the 400 body: every failure in `error`, the fields in `fields`', async () => {
      expect((await validate(PostChatDto, { sender: 1 })).refused).toEqual({
        error: 'sender must be a string; message should not be empty, message must be a string',
        fields: ['sender', 'message'],
      });
    });
  });

  describe('PostDialogDto', () => {
    it.each([{ n: 1 }, [1, 2], 'text', 0, false, null])('clientData %j: valid', async (clientData) => {
      expect((await validate(PostDialogDto, { sender: 's', receiver: 'r', clientData })).refused).toBeUndefined();
    });

    it('a messageId of A-Za-z0-9_- up to 64 characters: valid', async () => {
      expect((await validate(PostDialogDto, { sender: 's', receiver: 'r', clientData: 1, messageId: `a-Z_9${'x'.repeat(59)}` })).refused).toBeUndefined();
    });

    it.each([
      [{ sender: 's', receiver: 'r' }, ['clientData']],
      [{ sender: 's', receiver: '', clientData: 1 }, ['receiver']],
      [{ sender: 's', receiver: 'r', clientData: 1, messageId: '' }, ['messageId']],
      [{ sender: 's', receiver: 'r', clientData: 1, messageId: 'x'.repeat(65) }, ['messageId']],
      [{ sender: 's', receiver: 'r', clientData: 1, messageId: 'a"b' }, ['messageId']],
      [{ sender: 's', receiver: 'r', clientData: 1, messageId: 12 }, ['messageId']],
      [{ sender: 's', receiver: 'r', clientData: 1, messageId: null }, ['messageId']],
      [{ sender: 's', receiver: 'r', clientData: 1, serverData: {} }, ['serverData']],
    ])('%j -> 400 naming %j', async (body, fields) => {
      expect(await fieldsOf(PostDialogDto, body)).toEqual(fields);
    });
  });

  describe('DisconnectDto', () => {
    it.each([{}, { reason: '' }, { reason: 'x'.repeat(123) }, { reason: 'é'.repeat(61) + 'x' }])('%j: valid', async (body) => {
      expect((await validate(DisconnectDto, body)).refused).toBeUndefined();
    });

    it.each([
      [{ reason: 'x'.repeat(124) }],
      [{ reason: 'é'.repeat(62) }],
      // A lone surrogate is sent as the 3 bytes of U+FFFD: 41 of them are 123 bytes, 42 are not.
      [{ reason: '\ud800'.repeat(42) }],
      [{ reason: null }],
      [{ reason: 1 }],
    ])('%j -> 400 naming reason', async (body) => {
      expect(await fieldsOf(DisconnectDto, body)).toEqual(['reason']);
    });

    it('a lone surrogate counts as 3 bytes', async () => {
      expect((await validate(DisconnectDto, { reason: '\ud800'.repeat(41) })).refused).toBeUndefined();
    });
  });

  describe('ProfilePatchDto', () => {
    it('any of nickname, language, status, avatar (empty strings included)', async () => {
      const body = { nickname: 'n', language: 'fr', status: '', avatar: 'https://cdn.example/a.png' };
      expect((await validate(ProfilePatchDto, body)).value).toEqual(body);
      expect((await validate(ProfilePatchDto, { status: 'away' })).value).toEqual({ status: 'away' });
    });

    it.each([
      [{ nickname: null }, ['nickname']],
      [{ language: 3 }, ['language']],
      [{ userId: '9' }, ['userId']],
      [{ lastOnline: 'now', registerDate: 'then' }, ['lastOnline', 'registerDate']],
      [{ avatar: { url: 'x' } }, ['avatar']],
    ])('%j -> 400 naming %j', async (body, fields) => {
      expect(await fieldsOf(ProfilePatchDto, body)).toEqual(fields);
    });
  });
});
