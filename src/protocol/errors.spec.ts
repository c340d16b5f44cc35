import { AvatarError, FrameError, invalidMessage, toWireError } from './errors';
import { AvatarErrorCode, FrameErrorCode } from './protocol';

describe('toWireError: domain errors to wire frames', () => {
  it.each(Object.values(FrameErrorCode))('maps FrameError %s to ERROR_MESSAGE with requestType', (code) => {
    expect(toWireError(new FrameError(code, 'why'), 'CHAT_MESSAGE')).toStrictEqual({
      type: 'ERROR_MESSAGE',
      status: 'ERROR',
      error: { errorCode: code, message: 'why' },
      requestType: 'CHAT_MESSAGE',
    });
  });

  it('leaves requestType out (not even undefined) when the frame had no string type', () => {
    const frame = toWireError(new FrameError(FrameErrorCode.INVALID_JSON, 'not JSON'), undefined);
    expect(frame).toStrictEqual({ type: 'ERROR_MESSAGE', status: 'ERROR', error: { errorCode: 'INVALID_JSON', message: 'not JSON' } });
    expect(JSON.stringify(frame)).not.toContain('requestType');
  });

  it('keeps an empty-string requestType (the frame had a string type)', () => {
    expect(toWireError(new FrameError(FrameErrorCode.UNKNOWN_TYPE, 'unknown'), '')).toHaveProperty('requestType', '');
  });

  it.each(Object.values(AvatarErrorCode))('maps AvatarError %s to SAVE_AVATAR ERROR, without requestType', (code) => {
    expect(toWireError(new AvatarError(code, 'image too large'), 'SAVE_AVATAR')).toStrictEqual({
      type: 'SAVE_AVATAR',
      status: 'ERROR',
      error: { errorCode: code, message: 'image too large' },
    });
  });

  it.each<[string, unknown]>([
    ['an Error', new Error('boom')],
    ['a TypeError', new TypeError('x is undefined')],
    ['a look-alike object', { code: 'INVALID_MESSAGE', message: 'fake', name: 'FrameError' }],
    ['a string', 'INVALID_MESSAGE'],
    ['undefined', undefined],
    ['null', null],
  ])('maps %s to nothing (a bug: logged, not answered)', (_case, err) => {
    expect(toWireError(err, 'CHAT_MESSAGE')).toBeUndefined();
  });

  it('invalidMessage builds an INVALID_MESSAGE FrameError', () => {
    const err = invalidMessage('serverData must be an object');
    expect(err).toBeInstanceOf(FrameError);
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe(FrameErrorCode.INVALID_MESSAGE);
    expect(err.message).toBe('serverData must be an object');
    expect(err.name).toBe('FrameError');
  });

  it('names AvatarError for logs', () => {
    expect(new AvatarError(AvatarErrorCode.STORE_FAILED, 'x').name).toBe('AvatarError');
  });
});
