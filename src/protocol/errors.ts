import { BadRequestException, ForbiddenException, HttpException } from '@nestjs/common';
import { WsException } from '@nestjs/websockets';
import type { AuthErrorFrame, ErrorMessageFrame, SaveAvatarErrorFrame } from './frames';
import { AuthErrorCode, AvatarErrorCode, CloseCode, FrameErrorCode, MessageType, Status } from './protocol';

/** A frame that breaks the protocol: answered with ERROR_MESSAGE, the connection stays open. */
export class FrameError extends Error {
  constructor(
    readonly code: FrameErrorCode,
    message: string,
    /** The frame's type, when it was read before the frame was refused (by the scan, before parsing). */
    readonly requestType?: string,
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

/** A login that fails: AUTH_MESSAGE ERROR, then the connection is closed with `close`. Never holds a token. */
export class AuthError extends Error {
  constructor(
    readonly code: AuthErrorCode,
    message: string,
    readonly close: CloseCode,
    /** Why, for the log line only (never sent, never a token). */
    readonly why: string,
  ) {
    super(message);
    this.name = 'AuthError';
  }

  static missing(why = 'no token'): AuthError {
    return new AuthError(AuthErrorCode.INVALID_TOKEN, 'token not found or invalid', CloseCode.UNAUTHORIZED, why);
  }

  static invalid(why = 'token rejected'): AuthError {
    return new AuthError(AuthErrorCode.INVALID_TOKEN, 'token not found or invalid', CloseCode.UNAUTHORIZED, why);
  }

  static deadline(): AuthError {
    return new AuthError(AuthErrorCode.INVALID_TOKEN, 'no token arrived in time', CloseCode.AUTH_DEADLINE, 'auth deadline passed');
  }

  static gaveWay(): AuthError {
    return new AuthError(
      AuthErrorCode.INVALID_TOKEN,
      'no token arrived in time: the node is full and gave your place to a login',
      CloseCode.AUTH_DEADLINE,
      'gave way to a login (node full)',
    );
  }

  static alreadyConnected(): AuthError {
    return new AuthError(AuthErrorCode.ALREADY_CONNECTED, 'this user is already connected', CloseCode.ALREADY_CONNECTED, 'user already connected');
  }

  static unavailable(why: string): AuthError {
    return new AuthError(AuthErrorCode.AUTH_UNAVAILABLE, 'authorization server unavailable, try again later', CloseCode.TRY_AGAIN_LATER, why);
  }
}

/** What the gateway answers to an error: a frame, and for a failed login the close that follows. */
export interface WireAnswer {
  frame: AuthErrorFrame | SaveAvatarErrorFrame | ErrorMessageFrame;
  /** For a failed login: the close that follows, and why (for the log line). */
  close?: CloseCode;
  why?: string;
}

/** The messages of a ValidationPipe's BadRequestException (class-validator constraint texts). */
function validationMessage(err: HttpException): string {
  const response = err.getResponse();
  const message = typeof response === 'object' && response !== null ? (response as { message?: unknown }).message : response;
  if (Array.isArray(message)) return message.map(String).join('; ');
  return typeof message === 'string' ? message : err.message;
}

function errorMessage(code: FrameErrorCode, message: string, requestType: string | undefined): WireAnswer {
  return {
    frame: {
      type: MessageType.ERROR,
      status: Status.ERROR,
      error: { errorCode: code, message },
      ...(requestType !== undefined ? { requestType } : {}),
    },
  };
}

/**
 * The one table from errors to wire frames (docs/protocol.md, "Invalid frames", "AUTH_MESSAGE",
 * "SAVE_AVATAR"): the gateway's domain errors, and the exceptions of the Nest pipeline of an
 * added message type (a ValidationPipe's BadRequestException, a guard's refusal, a WsException).
 * An error not listed here is a bug: the caller logs it and answers nothing.
 */
export function toWireAnswer(err: unknown, requestType: string | undefined): WireAnswer | undefined {
  if (err instanceof FrameError) return errorMessage(err.code, err.message, requestType);
  if (err instanceof AvatarError) {
    return { frame: { type: MessageType.SAVE_AVATAR, status: Status.ERROR, error: { errorCode: err.code, message: err.message } } };
  }
  if (err instanceof AuthError) {
    return { frame: { type: MessageType.AUTH, status: Status.ERROR, error: { errorCode: err.code, message: err.message } }, close: err.close, why: err.why };
  }
  if (err instanceof BadRequestException) return errorMessage(FrameErrorCode.INVALID_MESSAGE, validationMessage(err), requestType);
  if (err instanceof ForbiddenException) return errorMessage(FrameErrorCode.FORBIDDEN, err.message, requestType);
  if (err instanceof WsException) {
    const error = err.getError();
    // A guard that returns false: Nest throws WsException('Forbidden resource').
    if (error === 'Forbidden resource') return errorMessage(FrameErrorCode.FORBIDDEN, error, requestType);
    if (typeof error === 'object' && error !== null) {
      const { errorCode, message } = error as { errorCode?: unknown; message?: unknown };
      const code = Object.values(FrameErrorCode).find((c) => c === errorCode) ?? FrameErrorCode.INVALID_MESSAGE;
      return errorMessage(code, typeof message === 'string' ? message : err.message, requestType);
    }
    return errorMessage(FrameErrorCode.INVALID_MESSAGE, String(error), requestType);
  }
  return undefined;
}
