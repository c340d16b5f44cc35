import type { IncomingMessage } from 'node:http';
import { BadRequestException, ForbiddenException, Logger } from '@nestjs/common';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host';
import { WsException } from '@nestjs/websockets';
import { FakeTransport } from '../../test/support/fake-client';
import { ChatClient } from '../messaging/chat-client';
import { AuthError, AvatarError, FrameError } from '../protocol/errors';
import { AvatarErrorCode, FrameErrorCode, MessageType } from '../protocol/protocol';
import { ProtocolExceptionFilter } from './protocol-exception.filter';

/** The host Nest's WsProxy hands a filter: [client, data, pattern]. */
function wsHost(client: ChatClient, data: unknown, pattern: string | undefined): ExecutionContextHost {
  const host = new ExecutionContextHost([client, data, pattern]);
  host.setType('ws');
  return host;
}

describe('ProtocolExceptionFilter', () => {
  let filter: ProtocolExceptionFilter;
  let transport: FakeTransport;
  let client: ChatClient;
  let logError: jest.SpyInstance;
  let logInfo: jest.SpyInstance;

  beforeAll(() => Logger.overrideLogger(false));

  beforeEach(() => {
    filter = new ProtocolExceptionFilter();
    transport = new FakeTransport();
    client = new ChatClient(transport, {} as IncomingMessage);
    logError = jest.spyOn(Logger.prototype, 'error');
    logInfo = jest.spyOn(Logger.prototype, 'log');
  });

  afterEach(() => jest.restoreAllMocks());

  it('sends the ERROR_MESSAGE of a FrameError with the pattern as requestType, and keeps the connection open', () => {
    filter.catch(new FrameError(FrameErrorCode.INVALID_MESSAGE, 'serverData.message must be a string'), wsHost(client, { type: 'CHAT_MESSAGE' }, 'CHAT_MESSAGE'));
    expect(transport.frames).toEqual([
      { type: 'ERROR_MESSAGE', status: 'ERROR', error: { errorCode: 'INVALID_MESSAGE', message: 'serverData.message must be a string' }, requestType: 'CHAT_MESSAGE' },
    ]);
    expect(transport.calls).toEqual(['write']);
    expect(client.isOpen).toBe(true);
  });

  it('leaves requestType out when there is no pattern (a frame without a string type)', () => {
    filter.catch(new FrameError(FrameErrorCode.INVALID_JSON, 'the frame is not valid JSON'), wsHost(client, undefined, undefined));
    expect(transport.frames).toEqual([{ type: 'ERROR_MESSAGE', status: 'ERROR', error: { errorCode: 'INVALID_JSON', message: 'the frame is not valid JSON' } }]);
  });

  it.each<[string, unknown, object]>([
    ['an AvatarError', new AvatarError(AvatarErrorCode.TOO_LARGE, 'image too large'), { type: 'SAVE_AVATAR', status: 'ERROR', error: { errorCode: '1', message: 'image too large' } }],
    ['a BadRequestException', new BadRequestException(['serverData must be an object']), { type: 'ERROR_MESSAGE', status: 'ERROR', error: { errorCode: 'INVALID_MESSAGE', message: 'serverData must be an object' }, requestType: 'SAVE_AVATAR' }],
    ['a ForbiddenException', new ForbiddenException(), { type: 'ERROR_MESSAGE', status: 'ERROR', error: { errorCode: 'FORBIDDEN', message: 'Forbidden' }, requestType: 'SAVE_AVATAR' }],
    ["a guard's refusal", new WsException('Forbidden resource'), { type: 'ERROR_MESSAGE', status: 'ERROR', error: { errorCode: 'FORBIDDEN', message: 'Forbidden resource' }, requestType: 'SAVE_AVATAR' }],
  ])('sends the mapped frame of %s without closing', (_case, err, frame) => {
    filter.catch(err, wsHost(client, {}, MessageType.SAVE_AVATAR));
    expect(transport.frames).toEqual([frame]);
    expect(transport.calls).toEqual(['write']);
  });

  it('answers an AuthError with AUTH_MESSAGE ERROR, then closes with its code and the wire message (never the why)', () => {
    filter.catch(AuthError.unavailable('auth server: timeout'), wsHost(client, {}, MessageType.AUTH));
    expect(transport.frames).toEqual([
      { type: 'AUTH_MESSAGE', status: 'ERROR', error: { errorCode: '3', message: 'authorization server unavailable, try again later' } },
    ]);
    expect(transport.calls).toEqual(['write', 'close:1013:authorization server unavailable, try again later']);
    expect(transport.written.join()).not.toContain('timeout');
    expect(client.isOpen).toBe(false);
    // The why goes to the log line, with the connection id.
    expect(logInfo).toHaveBeenCalledWith({ connId: client.id, closeCode: 1013 }, 'authentication refused: auth server: timeout');
  });

  it.each<[string, AuthError, number]>([
    ['invalid', AuthError.invalid(), 4401],
    ['deadline', AuthError.deadline(), 4408],
    ['alreadyConnected', AuthError.alreadyConnected(), 4409],
  ])('closes after AuthError.%s with %i', (_name, err, code) => {
    filter.catch(err, wsHost(client, {}, MessageType.AUTH));
    expect(transport.calls).toEqual(['write', `close:${code}:${err.message}`]);
  });

  it('logs an error the table does not know (connection id, requestType, stack), sends nothing and keeps the connection open', () => {
    const bug = new TypeError("Cannot read properties of undefined (reading 'x')");
    filter.catch(bug, wsHost(client, { type: 'CHAT_MESSAGE', serverData: { message: 'secret text' } }, 'CHAT_MESSAGE'));
    expect(transport.calls).toEqual([]);
    expect(client.isOpen).toBe(true);
    expect(logError).toHaveBeenCalledTimes(1);
    const [fields, message] = logError.mock.calls[0] as [Record<string, unknown>, string];
    expect(message).toBe('handler failed');
    expect(fields).toEqual({ connId: client.id, requestType: 'CHAT_MESSAGE', err: bug.stack });
    // The frame is never logged.
    expect(JSON.stringify(logError.mock.calls)).not.toContain('secret text');
  });

  it('logs a thrown non-Error as a string', () => {
    filter.catch('just a string', wsHost(client, {}, 'X'));
    expect(transport.calls).toEqual([]);
    expect(logError).toHaveBeenCalledWith({ connId: client.id, requestType: 'X', err: 'just a string' }, 'handler failed');
  });

  it('sends nothing and closes nothing when the client is already closed', () => {
    client.close(1000, 'bye');
    transport.calls.length = 0;
    filter.catch(new FrameError(FrameErrorCode.INVALID_MESSAGE, 'late'), wsHost(client, {}, 'CHAT_MESSAGE'));
    filter.catch(AuthError.invalid(), wsHost(client, {}, MessageType.AUTH));
    expect(transport.calls).toEqual([]);
    expect(transport.written).toEqual([]);
  });

  it('sends nothing when the transport went away under an open client state', () => {
    transport.isOpen = false;
    filter.catch(AuthError.invalid(), wsHost(client, {}, MessageType.AUTH));
    expect(transport.calls).toEqual([]);
  });
});
