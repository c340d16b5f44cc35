import { AvatarErrorCode, FrameErrorCode, MessageType, Status } from './protocol';

/** A frame that breaks the protocol: answered with ERROR_MESSAGE, the connection stays open. */
export class FrameError extends Error {
  constructor(
    readonly code: FrameErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'FrameError';
  }
}

/** Shorthand for the most common FrameError. */
export function invalidMessage(message: string): FrameError {
  return new FrameError(FrameErrorCode.INVALID_MESSAGE, message);
}

/** A SAVE_AVATAR that cannot be honoured: answered with SAVE_AVATAR ERROR. */
export class AvatarError extends Error {
  constructor(
    readonly code: AvatarErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'AvatarError';
  }
}

/**
 * The one table from domain errors to wire frames. An error not listed here is a bug: the
 * caller logs it and answers nothing (the frame is lost, the connection stays usable).
 */
export function toWireError(err: unknown, requestType: string | undefined): object | undefined {
  if (err instanceof FrameError) {
    return {
      type: MessageType.ERROR,
      status: Status.ERROR,
      error: { errorCode: err.code, message: err.message },
      ...(requestType !== undefined ? { requestType } : {}),
    };
  }
  if (err instanceof AvatarError) {
    return {
      type: MessageType.SAVE_AVATAR,
      status: Status.ERROR,
      error: { errorCode: err.code, message: err.message },
    };
  }
  return undefined;
}
