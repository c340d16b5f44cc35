import { BadRequestException, ForbiddenException, NotFoundException, UnauthorizedException, ValidationPipe } from '@nestjs/common';
import { WsException } from '@nestjs/websockets';
import { IsString, MinLength } from 'class-validator';
import { AuthError, AvatarError, FrameError, invalidMessage, toWireAnswer } from './errors';
import { AuthErrorCode, AvatarErrorCode, CloseCode, FrameErrorCode, MessageType } from './protocol';

class NamedDto {
  @IsString()
  @MinLength(2)
  name!: string;

  @IsString()
  nick!: string;
}

/** The BadRequestException a stock Nest ValidationPipe throws for `value` (class-validator's own texts). */
async function validationFailure(value: object): Promise<BadRequestException> {
  const pipe = new ValidationPipe();
  try {
    await pipe.transform(value, { type: 'body', metatype: NamedDto });
  } catch (err) {
    if (err instanceof BadRequestException) return err;
    throw err;
  }
  throw new Error('the ValidationPipe accepted the value');
}

const errorMessage = (errorCode: string, message: string, requestType?: string) => ({
  frame: { type: 'ERROR_MESSAGE', status: 'ERROR', error: { errorCode, message }, ...(requestType !== undefined ? { requestType } : {}) },
});

describe('toWireAnswer: errors to wire frames', () => {
  describe('FrameError -> ERROR_MESSAGE', () => {
    it.each(Object.values(FrameErrorCode))('maps FrameError %s with the requestType given', (code) => {
      expect(toWireAnswer(new FrameError(code, 'why'), 'CHAT_MESSAGE')).toStrictEqual(errorMessage(code, 'why', 'CHAT_MESSAGE'));
    });

    it('leaves requestType out (not even undefined) when none is given', () => {
      const answer = toWireAnswer(new FrameError(FrameErrorCode.INVALID_JSON, 'not JSON'), undefined);
      expect(answer).toStrictEqual(errorMessage('INVALID_JSON', 'not JSON'));
      expect(answer!.frame).not.toHaveProperty('requestType');
      expect(JSON.stringify(answer)).not.toContain('requestType');
    });

    it('keeps an empty-string requestType (the frame had a string type)', () => {
      expect(toWireAnswer(new FrameError(FrameErrorCode.UNKNOWN_TYPE, 'unknown'), '')!.frame).toHaveProperty('requestType', '');
    });

    it('never has a close', () => {
      const answer = toWireAnswer(invalidMessage('x'), 'CHAT_MESSAGE')!;
      expect(answer).not.toHaveProperty('close');
      expect(answer).not.toHaveProperty('why');
    });
  });

  describe('AvatarError -> SAVE_AVATAR ERROR', () => {
    it.each(Object.values(AvatarErrorCode))('maps AvatarError %s, without requestType even when given', (code) => {
      expect(toWireAnswer(new AvatarError(code, 'image too large'), 'SAVE_AVATAR')).toStrictEqual({
        frame: { type: 'SAVE_AVATAR', status: 'ERROR', error: { errorCode: code, message: 'image too large' } },
      });
    });
  });

  describe('AuthError -> AUTH_MESSAGE ERROR, then the close', () => {
    it.each<[string, AuthError, AuthErrorCode, CloseCode]>([
      ['missing', AuthError.missing(), AuthErrorCode.INVALID_TOKEN, CloseCode.UNAUTHORIZED],
      ['invalid', AuthError.invalid(), AuthErrorCode.INVALID_TOKEN, CloseCode.UNAUTHORIZED],
      ['deadline', AuthError.deadline(), AuthErrorCode.INVALID_TOKEN, CloseCode.AUTH_DEADLINE],
      ['gaveWay', AuthError.gaveWay(), AuthErrorCode.INVALID_TOKEN, CloseCode.AUTH_DEADLINE],
      ['alreadyConnected', AuthError.alreadyConnected(), AuthErrorCode.ALREADY_CONNECTED, CloseCode.ALREADY_CONNECTED],
      ['unavailable', AuthError.unavailable('auth server: timeout'), AuthErrorCode.AUTH_UNAVAILABLE, CloseCode.TRY_AGAIN_LATER],
    ])('maps AuthError.%s to errorCode and close code, why kept for the log only', (_name, err, code, close) => {
      const answer = toWireAnswer(err, MessageType.AUTH);
      expect(answer).toStrictEqual({
        frame: { type: 'AUTH_MESSAGE', status: 'ERROR', error: { errorCode: code, message: err.message } },
        close,
        why: err.why,
      });
      // The why is not on the wire.
      expect(JSON.stringify(answer!.frame)).not.toContain(err.why);
    });

    it('says "2" with 4401 and the protocol message for a bad token', () => {
      expect(toWireAnswer(AuthError.invalid('token rejected'), undefined)).toMatchObject({
        frame: { error: { errorCode: '2', message: 'token not found or invalid' } },
        close: 4401,
        why: 'token rejected',
      });
    });

    it('has no requestType even when one is given', () => {
      expect(toWireAnswer(AuthError.missing(), MessageType.AUTH)!.frame).not.toHaveProperty('requestType');
    });
  });

  describe('Nest pipeline exceptions -> ERROR_MESSAGE', () => {
    it("maps a ValidationPipe's BadRequestException to INVALID_MESSAGE with class-validator's messages", async () => {
      const err = await validationFailure({ name: 'x', nick: 3 });
      expect(toWireAnswer(err, 'NAMED')).toStrictEqual(errorMessage('INVALID_MESSAGE', 'name must be longer than or equal to 2 characters; nick must be a string', 'NAMED'));
    });

    it('maps a BadRequestException with one string message, and one without a message', () => {
      expect(toWireAnswer(new BadRequestException('serverData is missing'), 'X')).toStrictEqual(errorMessage('INVALID_MESSAGE', 'serverData is missing', 'X'));
      expect(toWireAnswer(new BadRequestException(), undefined)).toStrictEqual(errorMessage('INVALID_MESSAGE', 'Bad Request'));
      expect(toWireAnswer(new BadRequestException({ reason: 'no message field' }), undefined)).toStrictEqual(errorMessage('INVALID_MESSAGE', 'Bad Request Exception'));
    });

    it('maps a ForbiddenException to FORBIDDEN', () => {
      expect(toWireAnswer(new ForbiddenException('not for you'), 'ADMIN')).toStrictEqual(errorMessage('FORBIDDEN', 'not for you', 'ADMIN'));
      expect(toWireAnswer(new ForbiddenException(), undefined)).toStrictEqual(errorMessage('FORBIDDEN', 'Forbidden'));
    });

    it("maps Nest's refusal of a guard that returned false, WsException('Forbidden resource'), to FORBIDDEN", () => {
      expect(toWireAnswer(new WsException('Forbidden resource'), 'ADMIN')).toStrictEqual(errorMessage('FORBIDDEN', 'Forbidden resource', 'ADMIN'));
    });

    it('maps a WsException with a string to INVALID_MESSAGE with that string', () => {
      expect(toWireAnswer(new WsException('bad frame'), 'X')).toStrictEqual(errorMessage('INVALID_MESSAGE', 'bad frame', 'X'));
    });

    it.each<[string, object, string, string]>([
      ['a known errorCode and a message', { errorCode: 'UNKNOWN_TYPE', message: 'nope' }, 'UNKNOWN_TYPE', 'nope'],
      ['FORBIDDEN', { errorCode: 'FORBIDDEN', message: 'admins only' }, 'FORBIDDEN', 'admins only'],
      ['an errorCode the protocol does not have', { errorCode: 'TEAPOT', message: 'short and stout' }, 'INVALID_MESSAGE', 'short and stout'],
      ['no errorCode', { message: 'plain' }, 'INVALID_MESSAGE', 'plain'],
      ['a non-string message', { errorCode: 'RATE_LIMITED', message: 42 }, 'RATE_LIMITED', 'Ws Exception'],
      ['neither', {}, 'INVALID_MESSAGE', 'Ws Exception'],
    ])('maps a WsException with an object holding %s', (_case, error, code, message) => {
      expect(toWireAnswer(new WsException(error), 'X')).toStrictEqual(errorMessage(code, message, 'X'));
    });

    it('leaves requestType out of Nest exceptions too when none is given', () => {
      for (const err of [new BadRequestException('x'), new ForbiddenException(), new WsException('x'), new WsException({ message: 'x' })]) {
        expect(toWireAnswer(err, undefined)!.frame).not.toHaveProperty('requestType');
      }
    });
  });

  it.each<[string, unknown]>([
    ['an Error', new Error('boom')],
    ['a TypeError', new TypeError('x is undefined')],
    ['another HttpException (404)', new NotFoundException()],
    ['another HttpException (401)', new UnauthorizedException()],
    ['a look-alike object', { code: 'INVALID_MESSAGE', message: 'fake', name: 'FrameError' }],
    ['a look-alike AuthError', { code: '2', message: 'x', close: 4401, why: 'x', name: 'AuthError' }],
    ['a string', 'INVALID_MESSAGE'],
    ['undefined', undefined],
    ['null', null],
  ])('maps %s to nothing (a bug: logged, not answered)', (_case, err) => {
    expect(toWireAnswer(err, 'CHAT_MESSAGE')).toBeUndefined();
  });

  it('invalidMessage builds an INVALID_MESSAGE FrameError', () => {
    const err = invalidMessage('serverData must be an object');
    expect(err).toBeInstanceOf(FrameError);
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe(FrameErrorCode.INVALID_MESSAGE);
    expect(err.message).toBe('serverData must be an object');
    expect(err.name).toBe('FrameError');
  });

  it('names the errors for logs', () => {
    expect(new AvatarError(AvatarErrorCode.STORE_FAILED, 'x').name).toBe('AvatarError');
    expect(AuthError.missing().name).toBe('AuthError');
  });
});
