import { Logger } from '@nestjs/common';
import { FakeClient, testProfile } from '../../test/support/fake-client';
import { strictMock } from '../../test/support/strict-mock';
import type { AvatarIndex } from '../engine/engine.ports';
import { ProbeOutcome, type ClusterBus, type PresenceRegistry, type ProbeRequest, type Session } from '../engine/engine.ports';
import type { RegisteredConnection } from '../messaging/client';
import type { ConnectionRegistry } from '../messaging/connection-registry';
import type { Messenger } from '../messaging/messenger';
import type { UserProfile } from '../protocol/protocol';
import { JoinOutcome, PresenceService } from './presence.service';

const NODE = 'node-a';
const SAVED_AVATAR = 'http://gw.example/avatars/0123456789abcdef0123456789abcdef.webp';

const disconnect = (userId: string) => ({ type: 'USER_CONNECTION_MESSAGE', serverData: { connectionStatus: 'DISCONNECT', userId } });

describe('PresenceService', () => {
  /** Every collaborator call, in order, to check the join sequence. */
  let log: string[];
  let claim: jest.Mock<Promise<boolean>, [Session]>;
  let release: jest.Mock<Promise<boolean>, [Session]>;
  let list: jest.Mock<Promise<UserProfile[]>, []>;
  let registryUpdate: jest.Mock<Promise<void>, [string, Partial<UserProfile>]>;
  let onExpired: jest.Mock<void, [(userIds: string[]) => void]>;
  let onSessionLost: jest.Mock<void, [(session: Session) => void]>;
  let onSessionsRestored: jest.Mock<void, [(sessions: Session[]) => void]>;
  let locate: jest.Mock<Promise<Session | undefined>, [string]>;
  let busProbe: jest.Mock<Promise<ProbeOutcome>, [string, ProbeRequest, number]>;
  let onProbe: jest.Mock<void, [(request: ProbeRequest, timeoutMs: number) => Promise<ProbeOutcome>]>;
  let avatarGet: jest.Mock<Promise<string | undefined>, [string]>;
  let register: jest.Mock<void, [RegisteredConnection]>;
  let unregister: jest.Mock<void, [RegisteredConnection]>;
  let connectionsGet: jest.Mock<RegisteredConnection | undefined, [string]>;
  let broadcast: jest.Mock<void, [object | string, string?]>;
  let service: PresenceService;
  let client: FakeClient;

  /** The broadcasts, parsed, with the user they skip. */
  const broadcasts = () =>
    broadcast.mock.calls.map(([frame, except]) => ({ frame: typeof frame === 'string' ? (JSON.parse(frame) as unknown) : frame, except }));

  /** A jest.fn typed like method F that records its name in `log` before running impl. */
  function logged<F extends (...args: never[]) => unknown>(
    name: string,
    impl: (...args: Parameters<F>) => ReturnType<F>,
  ): jest.Mock<ReturnType<F>, Parameters<F>> {
    return jest.fn((...args: Parameters<F>) => {
      log.push(name);
      return impl(...args);
    });
  }

  beforeAll(() => Logger.overrideLogger(false));

  beforeEach(() => {
    log = [];
    claim = logged<PresenceRegistry['claim']>('claim', async () => true);
    release = logged<PresenceRegistry['release']>('release', async () => true);
    list = logged<PresenceRegistry['list']>('list', async () => [testProfile('bob')]);
    registryUpdate = logged<PresenceRegistry['updateProfile']>('registry.updateProfile', async () => undefined);
    onExpired = jest.fn();
    onSessionLost = jest.fn();
    onSessionsRestored = jest.fn();
    locate = logged<PresenceRegistry['locate']>('locate', async () => undefined);
    busProbe = logged<ClusterBus['probe']>('bus.probe', async () => ProbeOutcome.ALIVE);
    onProbe = jest.fn();
    avatarGet = logged<AvatarIndex['get']>('avatars.get', async () => undefined);
    register = logged<ConnectionRegistry['register']>('register', () => undefined);
    unregister = logged<ConnectionRegistry['unregister']>('unregister', () => undefined);
    connectionsGet = jest.fn();
    broadcast = logged<Messenger['broadcast']>('broadcast', () => undefined);
    service = new PresenceService(
      strictMock<PresenceRegistry>(
        { claim, release, list, locate, updateProfile: registryUpdate, onExpired, onSessionLost, onSessionsRestored },
        'registry',
      ),
      strictMock<AvatarIndex>({ get: avatarGet }, 'avatars'),
      strictMock<ClusterBus>({ nodeId: NODE, probe: busProbe, onProbe }, 'bus'),
      strictMock<ConnectionRegistry>({ register, unregister, get: connectionsGet }, 'connections'),
      strictMock<Messenger>({ broadcast }, 'messenger'),
      { duplicateProbeMs: 2000 },
    );
    client = new FakeClient('pending-user', 'conn-1');
    const beginJoin = client.beginJoin.bind(client);
    client.beginJoin = (p) => {
      log.push('beginJoin');
      beginJoin(p);
    };
    const completeJoin = client.completeJoin.bind(client);
    client.completeJoin = (f) => {
      log.push('completeJoin');
      completeJoin(f);
    };
  });

  describe('join', () => {
    it('claims, registers, sends AUTH SUCCESS with the online list, then broadcasts CONNECT to the others', async () => {
      const alice = testProfile('alice');
      await expect(service.join(client, alice)).resolves.toBe(JoinOutcome.JOINED);

      expect(log).toEqual(['avatars.get', 'claim', 'beginJoin', 'register', 'list', 'completeJoin', 'broadcast']);
      expect(claim).toHaveBeenCalledWith({ userId: 'alice', nodeId: NODE, connId: 'conn-1', profile: alice });
      expect(register).toHaveBeenCalledWith(client);
      expect(client.session).toEqual({ userId: 'alice', nodeId: NODE, connId: 'conn-1', profile: alice });
      expect(client.userId).toBe('alice');

      // bob was online; alice is not in the registry's answer yet, so she is added
      expect(client.frames).toEqual([
        { type: 'AUTH_MESSAGE', status: 'SUCCESS', serverData: { userId: 'alice', userList: [testProfile('bob'), alice] } },
      ]);
      expect(broadcasts()).toEqual([
        { frame: { type: 'USER_CONNECTION_MESSAGE', serverData: { connectionStatus: 'CONNECT', ...alice } }, except: 'alice' },
      ]);
    });

    it('lists every user with all seven fields, the connecting user once', async () => {
      const alice = testProfile('alice');
      list.mockResolvedValueOnce([testProfile('bob'), alice, testProfile('carol')]);
      await service.join(client, alice);
      const auth = client.frames[0] as { serverData: { userList: UserProfile[] } };
      expect(auth.serverData.userList.map((u) => u.userId)).toEqual(['bob', 'alice', 'carol']);
      for (const user of auth.serverData.userList) {
        expect(Object.keys(user).sort()).toEqual(['avatar', 'language', 'lastOnline', 'nickname', 'registerDate', 'status', 'userId']);
      }
    });

    it('shares a frozen verified profile as is (no copy per login), and freezes a copy of any other', async () => {
      const shared = Object.freeze(testProfile('alice'));
      await service.join(client, shared);
      expect(claim.mock.calls[0][0].profile).toBe(shared);
      const other = new FakeClient('bob');
      const mutable = testProfile('bob');
      await service.join(other, mutable);
      const claimed = claim.mock.calls[1][0].profile;
      expect(claimed).not.toBe(mutable);
      expect(claimed).toEqual(mutable);
      expect(Object.isFrozen(claimed)).toBe(true);
    });

    it('uses the saved avatar over the one the authorization server reported', async () => {
      avatarGet.mockResolvedValueOnce(SAVED_AVATAR);
      const verified = testProfile('alice');
      await service.join(client, verified);
      expect(avatarGet).toHaveBeenCalledWith('alice');
      const expected = { ...verified, avatar: SAVED_AVATAR };
      expect(claim.mock.calls[0][0].profile).toEqual(expected);
      expect(client.profile).toEqual(expected);
      expect(broadcasts()[0].frame).toEqual({ type: 'USER_CONNECTION_MESSAGE', serverData: { connectionStatus: 'CONNECT', ...expected } });
      expect(verified.avatar).toBe('http://auth.example/alice.png'); // the verified profile is not mutated
    });

    it('refuses a user whose session on another node answers the probe: nothing registered, sent or broadcast', async () => {
      claim.mockResolvedValueOnce(false);
      locate.mockResolvedValueOnce({ userId: 'alice', nodeId: 'node-b', connId: 'old', profile: testProfile('alice') });
      await expect(service.join(client, testProfile('alice'))).resolves.toBe(JoinOutcome.ALREADY_CONNECTED);
      expect(busProbe).toHaveBeenCalledWith('node-b', { userId: 'alice', connId: 'old' }, 2000);
      expect(client.session).toBeUndefined();
      expect(register).not.toHaveBeenCalled();
      expect(client.sent).toEqual([]);
      expect(client.events).toEqual([]);
      expect(broadcast).not.toHaveBeenCalled();
    });

    it.each([ProbeOutcome.ALIVE, ProbeOutcome.UNREACHABLE])('refuses when the other node says %s', async (outcome) => {
      claim.mockResolvedValueOnce(false);
      locate.mockResolvedValueOnce({ userId: 'alice', nodeId: 'node-b', connId: 'old', profile: testProfile('alice') });
      busProbe.mockResolvedValueOnce(outcome);
      await expect(service.join(client, testProfile('alice'))).resolves.toBe(JoinOutcome.ALREADY_CONNECTED);
      expect(claim).toHaveBeenCalledTimes(1);
    });

    it('claims again when the other node dropped the unresponsive connection (GONE), and joins', async () => {
      claim.mockResolvedValueOnce(false);
      locate.mockResolvedValueOnce({ userId: 'alice', nodeId: 'node-b', connId: 'old', profile: testProfile('alice') });
      busProbe.mockResolvedValueOnce(ProbeOutcome.GONE);
      await expect(service.join(client, testProfile('alice'))).resolves.toBe(JoinOutcome.JOINED);
      expect(claim).toHaveBeenCalledTimes(2);
      const [first, second] = claim.mock.invocationCallOrder;
      expect(first).toBeLessThan(locate.mock.invocationCallOrder[0]);
      expect(locate.mock.invocationCallOrder[0]).toBeLessThan(busProbe.mock.invocationCallOrder[0]);
      expect(busProbe.mock.invocationCallOrder[0]).toBeLessThan(second);
    });

    it('refuses when the second claim loses to a racing newcomer', async () => {
      claim.mockResolvedValueOnce(false).mockResolvedValueOnce(false);
      locate.mockResolvedValueOnce({ userId: 'alice', nodeId: 'node-b', connId: 'old', profile: testProfile('alice') });
      busProbe.mockResolvedValueOnce(ProbeOutcome.GONE);
      await expect(service.join(client, testProfile('alice'))).resolves.toBe(JoinOutcome.ALREADY_CONNECTED);
      expect(register).not.toHaveBeenCalled();
    });

    it('claims again at once when the session vanished before it could be located', async () => {
      claim.mockResolvedValueOnce(false);
      await expect(service.join(client, testProfile('alice'))).resolves.toBe(JoinOutcome.JOINED);
      expect(busProbe).not.toHaveBeenCalled();
    });

    describe('a duplicate of a connection of this node', () => {
      let old: FakeClient;
      beforeEach(async () => {
        old = new FakeClient('pending-old', 'conn-old');
        await service.join(old, testProfile('alice'));
        expect(old.session).toBeDefined();
        claim.mockClear();
        claim.mockResolvedValueOnce(false);
        locate.mockResolvedValueOnce(old.session);
        broadcast.mockClear();
      });

      it('is refused when the old connection answers the ping; the old one is untouched', async () => {
        await expect(service.join(client, testProfile('alice'))).resolves.toBe(JoinOutcome.ALREADY_CONNECTED);
        expect(old.probes).toEqual([2000]);
        expect(old.dropped).toBe(false);
        expect(old.session).toBeDefined();
        expect(busProbe).not.toHaveBeenCalled();
      });

      it('replaces an old connection that does not answer: dropped, DISCONNECT, then the newcomer joins', async () => {
        old.answersProbe = false;
        await expect(service.join(client, testProfile('alice'))).resolves.toBe(JoinOutcome.JOINED);
        expect(old.dropped).toBe(true);
        expect(old.session).toBeUndefined();
        const frames = broadcasts().map((b) => b.frame);
        expect(frames[0]).toEqual(disconnect('alice'));
        expect(frames[1]).toMatchObject({ serverData: { connectionStatus: 'CONNECT', userId: 'alice' } });
      });
    });

    it('answers probes from other nodes about its connections', async () => {
      service.onModuleInit();
      const handler = onProbe.mock.calls[0][0];
      const old = new FakeClient('pending-old', 'conn-old');
      await service.join(old, testProfile('alice'));
      await expect(handler({ userId: 'alice', connId: 'conn-old' }, 1000)).resolves.toBe(ProbeOutcome.ALIVE);
      expect(old.probes).toEqual([1000]);
      old.answersProbe = false;
      await expect(handler({ userId: 'alice', connId: 'conn-old' }, 1000)).resolves.toBe(ProbeOutcome.GONE);
      expect(old.dropped).toBe(true);
      expect(release).toHaveBeenCalledTimes(1);
      // Unknown here (already gone): GONE, and a stale session of this node is released.
      locate.mockResolvedValueOnce({ userId: 'bob', nodeId: NODE, connId: 'conn-x', profile: testProfile('bob') });
      await expect(handler({ userId: 'bob', connId: 'conn-x' }, 1000)).resolves.toBe(ProbeOutcome.GONE);
      expect(release).toHaveBeenCalledTimes(2);
    });

    it('answers UNAVAILABLE when the claim cannot be made', async () => {
      claim.mockRejectedValueOnce(new Error('redis down'));
      await expect(service.join(client, testProfile('alice'))).resolves.toBe(JoinOutcome.UNAVAILABLE);
      expect(client.session).toBeUndefined();
      expect(register).not.toHaveBeenCalled();
      expect(client.sent).toEqual([]);
      expect(broadcast).not.toHaveBeenCalled();
    });

    it('does not claim for a connection that closed before', async () => {
      client.isOpen = false;
      await expect(service.join(client, testProfile('alice'))).resolves.toBe(JoinOutcome.CLOSED);
      expect(claim).not.toHaveBeenCalled();
      expect(register).not.toHaveBeenCalled();
      expect(client.session).toBeUndefined();
    });

    it('releases the claim of a connection that closed while claiming', async () => {
      claim.mockImplementationOnce(async () => {
        client.isOpen = false;
        return true;
      });
      await expect(service.join(client, testProfile('alice'))).resolves.toBe(JoinOutcome.CLOSED);
      expect(release).toHaveBeenCalledWith(expect.objectContaining({ userId: 'alice', connId: 'conn-1' }));
      expect(client.session).toBeUndefined();
      expect(register).not.toHaveBeenCalled();
      expect(client.sent).toEqual([]);
      expect(client.events).toEqual([]);
    });

    it('aborts the join and releases the claim when the online list cannot be read', async () => {
      list.mockRejectedValueOnce(new Error('redis down'));
      await expect(service.join(client, testProfile('alice'))).resolves.toBe(JoinOutcome.UNAVAILABLE);
      expect(client.events).toEqual(['beginJoin', 'abortJoin']);
      expect(unregister).toHaveBeenCalledWith(client);
      expect(release).toHaveBeenCalledWith(expect.objectContaining({ userId: 'alice', connId: 'conn-1' }));
      expect(client.session).toBeUndefined();
      expect(client.sent).toEqual([]); // no AUTH SUCCESS
      expect(broadcasts().map((b) => (b.frame as { serverData: { connectionStatus: string } }).serverData.connectionStatus)).not.toContain('CONNECT');
    });
  });

  describe('leave', () => {
    beforeEach(async () => {
      await service.join(client, testProfile('alice'));
      log.length = 0;
      broadcast.mockClear();
    });

    it('unregisters, releases and broadcasts DISCONNECT (only userId) to everyone else', async () => {
      const session = client.session;
      await service.leave(client);
      expect(log).toEqual(['unregister', 'release', 'broadcast']);
      expect(unregister).toHaveBeenCalledWith(client);
      expect(release).toHaveBeenCalledWith(session);
      expect(client.session).toBeUndefined();
      expect(broadcasts()).toEqual([{ frame: disconnect('alice'), except: 'alice' }]);
    });

    it('is idempotent: a second leave does nothing', async () => {
      await service.leave(client);
      await service.leave(client);
      expect(release).toHaveBeenCalledTimes(1);
      expect(broadcast).toHaveBeenCalledTimes(1);
    });

    it('broadcasts nothing when the session was not this connection\'s any more', async () => {
      release.mockResolvedValueOnce(false);
      await service.leave(client);
      expect(broadcast).not.toHaveBeenCalled();
    });

    it('still broadcasts DISCONNECT when the registry cannot be reached', async () => {
      release.mockRejectedValueOnce(new Error('redis down'));
      await service.leave(client);
      expect(broadcasts()).toEqual([{ frame: disconnect('alice'), except: 'alice' }]);
    });
  });

  it('leave of a client that never joined touches nothing', async () => {
    await service.leave(client);
    expect(log).toEqual([]);
  });

  it('broadcasts DISCONNECT for every user whose session expired on a dead node', () => {
    service.onModuleInit();
    expect(onExpired).toHaveBeenCalledTimes(1);
    onExpired.mock.calls[0][0](['u1', 'u2']);
    expect(broadcasts()).toEqual([
      { frame: disconnect('u1'), except: 'u1' },
      { frame: disconnect('u2'), except: 'u2' },
    ]);
  });

  it('closes with 4409, without DISCONNECT, a local connection whose session a newer login took during an outage', () => {
    service.onModuleInit();
    const local = new FakeClient('alice', 'conn-7');
    local.session = { userId: 'alice', nodeId: NODE, connId: 'conn-7', profile: testProfile('alice') };
    connectionsGet.mockReturnValue(local);
    onSessionLost.mock.calls[0][0]({ ...local.session });
    expect(local.closes).toEqual([4409]);
    expect(local.session).toBeUndefined();
    expect(unregister).toHaveBeenCalledWith(local);
    expect(broadcasts()).toEqual([]);
  });

  it('leaves alone a local connection of the same user that is not the lost session', () => {
    service.onModuleInit();
    const local = new FakeClient('alice', 'conn-8');
    connectionsGet.mockReturnValue(local);
    onSessionLost.mock.calls[0][0]({ userId: 'alice', nodeId: NODE, connId: 'conn-7', profile: testProfile('alice') });
    expect(local.closes).toEqual([]);
  });

  it('broadcasts CONNECT again for sessions restored after the others announced them gone', () => {
    service.onModuleInit();
    const profile = testProfile('u1');
    onSessionsRestored.mock.calls[0][0]([{ userId: 'u1', nodeId: NODE, connId: 'c', profile }]);
    expect(broadcasts()).toEqual([
      { frame: { type: 'USER_CONNECTION_MESSAGE', serverData: { connectionStatus: 'CONNECT', ...profile } }, except: 'u1' },
    ]);
  });

  describe('updateProfile', () => {
    it('patches the local connection\'s profile and the registry', async () => {
      const local = new FakeClient('alice');
      connectionsGet.mockReturnValueOnce(local);
      const before = Object.freeze(testProfile('alice'));
      local.profile = before;
      await service.updateProfile('alice', { avatar: SAVED_AVATAR });
      expect(local.profile).toEqual(testProfile('alice', { avatar: SAVED_AVATAR }));
      expect(local.profile).not.toBe(before); // replaced, never changed in place
      expect(before.avatar).toBe(testProfile('alice').avatar);
      expect(Object.isFrozen(local.profile)).toBe(true);
      expect(registryUpdate).toHaveBeenCalledWith('alice', { avatar: SAVED_AVATAR });
    });

    it('patches the registry for a user connected elsewhere', async () => {
      connectionsGet.mockReturnValueOnce(undefined);
      await service.updateProfile('bob', { avatar: SAVED_AVATAR });
      expect(registryUpdate).toHaveBeenCalledWith('bob', { avatar: SAVED_AVATAR });
    });

    it('rejects when the registry cannot be updated', async () => {
      registryUpdate.mockRejectedValueOnce(new Error('redis down'));
      await expect(service.updateProfile('bob', { avatar: SAVED_AVATAR })).rejects.toThrow('redis down');
    });
  });
});
