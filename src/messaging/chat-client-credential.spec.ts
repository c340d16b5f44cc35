/**
 * ChatClient's credential (docs/protocol.md, "Token lifecycle"): the token a connection holds now
 * and its expiry, in memory only (not even a serializer or util.inspect reaches it), renewed by a
 * refresh for the same user only. (The login's expiry in its AUTH SUCCESS is SessionService's.)
 */
import type { IncomingMessage } from 'node:http';
import { inspect } from 'node:util';
import { makeProfile } from '../../test/support/factories';
import { ChatClient, type Transport } from './chat-client';

const TOKEN = 'secret-token-Qx81Zr';
const ALICE = makeProfile('1');
const AUTH_SUCCESS = JSON.stringify({ type: 'AUTH_MESSAGE', status: 'SUCCESS', serverData: { userId: '1', userList: [ALICE] } });

function transport(): Transport & { written: string[] } {
  const written: string[] = [];
  return {
    written,
    isOpen: true,
    write: (text: string) => {
      written.push(text);
      return true;
    },
    writeBroadcast: () => undefined,
    probe: () => Promise.resolve(true),
    close: () => undefined,
    drop: () => undefined,
  };
}

const request = {} as IncomingMessage;

describe('ChatClient credential', () => {
  it('holds no token before its login was verified', () => {
    const client = new ChatClient(transport(), request);
    expect(client.token).toBeUndefined();
    expect(client.tokenExpiresAt).toBeUndefined();
  });

  it('keeps the verified token and its expiry', () => {
    const client = new ChatClient(transport(), request);
    client.authenticate(ALICE, { token: TOKEN, expiresAt: 1736933400000 });
    expect(client.token).toBe(TOKEN);
    expect(client.tokenExpiresAt).toBe(1736933400000);
  });

  it('never shows the token to a serializer or to util.inspect', () => {
    const client = new ChatClient(transport(), request);
    client.authenticate(ALICE, { token: TOKEN, expiresAt: 1 });
    expect(inspect(client, { depth: 5, showHidden: true })).not.toContain(TOKEN);
    expect(JSON.stringify({ ...client })).not.toContain(TOKEN);
    expect(Object.values(client).map(String).join(' ')).not.toContain(TOKEN);
  });

  it('takes a renewed credential (and the new profile) for the same user only, never once closing', () => {
    const client = new ChatClient(transport(), request);
    client.authenticate(ALICE, { token: TOKEN, expiresAt: 1 });
    const renamed = makeProfile('1', { nickname: 'alice2' });
    client.renewCredential({ token: 'second', expiresAt: 2 }, renamed);
    expect([client.token, client.tokenExpiresAt, client.user]).toEqual(['second', 2, renamed]);
    client.renewCredential({ token: 'third' });
    expect([client.token, client.tokenExpiresAt, client.user]).toEqual(['third', undefined, renamed]);
    client.renewCredential({ token: 'bob-s', expiresAt: 9 }, makeProfile('2'));
    expect(client.token).toBe('third');
    client.close(4401, 'token expired');
    client.renewCredential({ token: 'late', expiresAt: 10 });
    expect(client.token).toBe('third');
  });

  it('renews nothing before its login was verified', () => {
    const client = new ChatClient(transport(), request);
    client.renewCredential({ token: 'x', expiresAt: 1 }, ALICE);
    expect(client.token).toBeUndefined();
    expect(client.user).toBeUndefined();
  });

  it('writes the AUTH SUCCESS as given (SessionService puts the expiry in it)', () => {
    const t = transport();
    const client = new ChatClient(t, request);
    client.authenticate(ALICE, { token: TOKEN });
    client.beginJoin(ALICE);
    client.completeJoin(AUTH_SUCCESS);
    expect(t.written).toEqual([AUTH_SUCCESS]);
  });
});
