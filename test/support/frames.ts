/**
 * Protocol frames from the tests' side (docs/protocol.md): predicates to wait for or filter the
 * frames a TestClient received, builders of the frames a test sends, and of the answers it expects
 * (with `expect.any(String)` where the wording is the gateway's).
 *
 *   await bob.next(isConnect(ID.alice));
 *   alice.send(chat('hi'));
 *   expect(await alice.nextOfType('ERROR_MESSAGE')).toEqual(frameError('INVALID_JSON'));
 */
import type { Frame } from './ws-client';

export type FramePredicate = (f: Frame) => boolean;

// ---- predicates ----

/** A frame of this type. */
export const isType =
  (type: string): FramePredicate =>
  (f) =>
    f.type === type;

function presence(connectionStatus: 'CONNECT' | 'DISCONNECT', userId?: string): FramePredicate {
  return (f) =>
    f.type === 'USER_CONNECTION_MESSAGE' &&
    f.serverData?.connectionStatus === connectionStatus &&
    (userId === undefined || f.serverData?.userId === userId);
}

/** A USER_CONNECTION_MESSAGE CONNECT (of this user, when given). */
export const isConnect = (userId?: string): FramePredicate => presence('CONNECT', userId);

/** A USER_CONNECTION_MESSAGE DISCONNECT (of this user, when given). */
export const isDisconnect = (userId?: string): FramePredicate => presence('DISCONNECT', userId);

/** A CHAT_MESSAGE (with this text, when given). */
export const isChat =
  (message?: string): FramePredicate =>
  (f) =>
    f.type === 'CHAT_MESSAGE' && (message === undefined || f.serverData?.message === message);

// ---- frames a client sends ----

/** CHAT_MESSAGE with `message`. */
export const chat = (message: string): Frame => ({ type: 'CHAT_MESSAGE', serverData: { message } });

/** DIALOG_MESSAGE to `receiver`, with a messageId when given. */
export function dialog(receiver: string, clientData: unknown, messageId?: string): Frame {
  return { type: 'DIALOG_MESSAGE', clientData, serverData: { receiver, ...(messageId === undefined ? {} : { messageId }) } };
}

/** The AUTH_MESSAGE of a client that did not offer its token in the upgrade. */
export const authWith = (authToken: string): Frame => ({ type: 'AUTH_MESSAGE', serverData: { authToken } });

// ---- answers a test expects ----

/** AUTH_MESSAGE ERROR with this errorCode ("1", "2", "3"), any message. */
export function authError(errorCode: string): Frame {
  return { type: 'AUTH_MESSAGE', status: 'ERROR', error: { errorCode, message: expect.any(String) } };
}

/** ERROR_MESSAGE with this errorCode, any message, and a requestType exactly when given. */
export function frameError(errorCode: string, requestType?: string): Frame {
  return {
    type: 'ERROR_MESSAGE',
    status: 'ERROR',
    error: { errorCode, message: expect.any(String) },
    ...(requestType === undefined ? {} : { requestType }),
  };
}
