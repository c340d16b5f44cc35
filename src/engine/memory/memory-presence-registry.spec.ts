import { makeProfile } from '../../../test/support/factories';
import type { Session } from '../engine.ports';
import { MemoryPresenceRegistry } from './memory-presence-registry';

const session = (userId: string, connId: string): Session => ({ userId, nodeId: 'node-a', connId, profile: makeProfile(userId) });

describe('MemoryPresenceRegistry', () => {
  let registry: MemoryPresenceRegistry;

  beforeEach(() => {
    registry = new MemoryPresenceRegistry();
  });

  it('lets a user claim once; a second claim of the same user is refused and changes nothing', async () => {
    await expect(registry.claim(session('u1', 'c1'))).resolves.toBe(true);
    await expect(registry.claim(session('u1', 'c2'))).resolves.toBe(false);
    await expect(registry.locate('u1')).resolves.toMatchObject({ userId: 'u1', connId: 'c1' });
    await expect(registry.list()).resolves.toEqual([makeProfile('u1')]);
  });

  it('lets different users claim', async () => {
    await expect(registry.claim(session('u1', 'c1'))).resolves.toBe(true);
    await expect(registry.claim(session('u2', 'c2'))).resolves.toBe(true);
    const users = await registry.list();
    expect(users.map((u) => u.userId).sort()).toEqual(['u1', 'u2']);
  });

  it('releases only for the same connection id', async () => {
    await registry.claim(session('u1', 'c1'));
    await expect(registry.release(session('u1', 'c-other'))).resolves.toBe(false);
    await expect(registry.locate('u1')).resolves.toMatchObject({ connId: 'c1' });
    await expect(registry.release(session('u1', 'c1'))).resolves.toBe(true);
    await expect(registry.locate('u1')).resolves.toBeUndefined();
    await expect(registry.release(session('u1', 'c1'))).resolves.toBe(false);
  });

  it('lets the user claim again after release', async () => {
    await registry.claim(session('u1', 'c1'));
    await registry.release(session('u1', 'c1'));
    await expect(registry.claim(session('u1', 'c2'))).resolves.toBe(true);
    await expect(registry.locate('u1')).resolves.toMatchObject({ connId: 'c2' });
  });

  it('does not keep a reference to the claimed profile', async () => {
    const s = session('u1', 'c1');
    await registry.claim(s);
    s.profile.nickname = 'changed-outside';
    await expect(registry.list()).resolves.toEqual([makeProfile('u1')]);
  });

  it('keeps a frozen session with a frozen profile as it is (one object per connection), and an update makes a new one', async () => {
    const s = Object.freeze({ ...session('u1', 'c1'), profile: Object.freeze(makeProfile('u1')) });
    await registry.claim(s);
    await expect(registry.locate('u1')).resolves.toBe(s);
    await registry.updateProfile('u1', { nickname: 'renamed' });
    const after = await registry.locate('u1');
    expect(after).not.toBe(s);
    expect(after).toMatchObject({ connId: 'c1', profile: { nickname: 'renamed' } });
    expect(s.profile.nickname).toBe(makeProfile('u1').nickname);
  });

  it('copies a session that is not frozen: changing it afterwards changes nothing here', async () => {
    const s = session('u1', 'c1');
    await registry.claim(s);
    s.connId = 'changed-outside';
    await expect(registry.locate('u1')).resolves.toMatchObject({ connId: 'c1' });
  });

  it('lists frozen profiles in a new array: a caller cannot change the registry', async () => {
    await registry.claim(session('u1', 'c1'));
    const first = await registry.list();
    expect(() => {
      first[0].avatar = 'mutated';
    }).toThrow(TypeError);
    first.push(makeProfile('intruder'));
    await expect(registry.list()).resolves.toEqual([makeProfile('u1')]);
  });

  it('hands out the same profile object until it changes, and a new one after an update', async () => {
    await registry.claim(session('u1', 'c1'));
    const [before] = await registry.list();
    expect((await registry.list())[0]).toBe(before);
    await registry.updateProfile('u1', { avatar: 'http://x/a.png' });
    const [after] = await registry.list();
    expect(after).not.toBe(before);
    expect(before.avatar).toBe(makeProfile('u1').avatar); // the object handed out before is not changed
    expect(Object.isFrozen(after)).toBe(true);
  });

  it('updates the profile of an online user, keeping its userId', async () => {
    await registry.claim(session('u1', 'c1'));
    await registry.updateProfile('u1', { avatar: 'http://x/avatars/a.webp', userId: 'someone-else' });
    await expect(registry.list()).resolves.toEqual([makeProfile('u1', { avatar: 'http://x/avatars/a.webp' })]);
    await expect(registry.locate('u1')).resolves.toMatchObject({ profile: { avatar: 'http://x/avatars/a.webp', nickname: 'nick-u1' } });
  });

  it('ignores an update of a user who is not online', async () => {
    await registry.updateProfile('ghost', { avatar: 'x' });
    await expect(registry.list()).resolves.toEqual([]);
    await expect(registry.locate('ghost')).resolves.toBeUndefined();
  });

  it('locates the session of an online user with its node and connection', async () => {
    await registry.claim({ userId: 'u1', nodeId: 'node-b', connId: 'c9', profile: makeProfile('u1') });
    await expect(registry.locate('u1')).resolves.toEqual({ userId: 'u1', nodeId: 'node-b', connId: 'c9', profile: makeProfile('u1') });
    await expect(registry.locate('u2')).resolves.toBeUndefined();
  });

  describe('the online list as UTF-8 JSON (what an AUTH SUCCESS carries)', () => {
    /** The elements' JSON, each preceded by a comma, in pieces: joined and parsed as a list. */
    const text = async () => Buffer.concat(await registry.listBytes()).toString();
    const listed = async () => JSON.parse(`[${(await text()).slice(1)}]`) as unknown[];

    it('is empty with nobody online, then grows with each claim in login order', async () => {
      await expect(registry.listBytes()).resolves.toEqual([]);
      for (const id of ['u1', 'u2', 'u3']) await registry.claim({ userId: id, nodeId: 'n', connId: `c-${id}`, profile: makeProfile(id) });
      expect((await text()).startsWith(',{')).toBe(true);
      await expect(listed()).resolves.toEqual([makeProfile('u1'), makeProfile('u2'), makeProfile('u3')]);
    });

    it('follows leaves and profile changes, and stays equal to list()', async () => {
      for (const id of ['u1', 'u2', 'u3']) await registry.claim({ userId: id, nodeId: 'n', connId: `c-${id}`, profile: makeProfile(id) });
      await registry.release({ userId: 'u2', nodeId: 'n', connId: 'c-u2', profile: makeProfile('u2') });
      await registry.updateProfile('u3', { avatar: 'http://new.example/a.webp' });
      await registry.claim({ userId: 'u4', nodeId: 'n', connId: 'c-u4', profile: makeProfile('u4') });
      await expect(listed()).resolves.toEqual(await registry.list());
      expect((await listed()).map((p) => (p as { userId: string }).userId)).toEqual(['u1', 'u3', 'u4']);
      // A refused claim or release changes nothing.
      await registry.claim({ userId: 'u1', nodeId: 'n', connId: 'other', profile: makeProfile('u1') });
      await registry.release({ userId: 'u1', nodeId: 'n', connId: 'other', profile: makeProfile('u1') });
      await expect(listed()).resolves.toEqual(await registry.list());
    });

    it('never changes bytes it handed out: a later login, leave or profile change makes the next list, not the last one', async () => {
      for (let i = 0; i < 40; i++) await registry.claim({ userId: `u${i}`, nodeId: 'n', connId: `c${i}`, profile: makeProfile(`u${i}`) });
      const before = await registry.listBytes();
      const copies = before.map((b) => Buffer.from(b));
      await registry.claim({ userId: 'late', nodeId: 'n', connId: 'c-late', profile: makeProfile('late') });
      await registry.release({ userId: 'u3', nodeId: 'n', connId: 'c3', profile: makeProfile('u3') });
      await registry.updateProfile('u5', { status: 'away' });
      expect(before).toEqual(copies);
      const after = await listed();
      expect(after).toEqual(await registry.list());
      expect(after).toHaveLength(40);
    });

    it('does not serialize a profile again for a login: only the new one', async () => {
      for (let i = 0; i < 10; i++) await registry.claim({ userId: `u${i}`, nodeId: 'n', connId: `c${i}`, profile: makeProfile(`u${i}`) });
      await registry.listBytes();
      const stringify = jest.spyOn(JSON, 'stringify');
      try {
        await registry.claim({ userId: 'new', nodeId: 'n', connId: 'c-new', profile: makeProfile('new') });
        await registry.listBytes();
        expect(stringify).toHaveBeenCalledTimes(1);
      } finally {
        stringify.mockRestore();
      }
      await expect(listed()).resolves.toEqual(await registry.list());
    });
  });
});
