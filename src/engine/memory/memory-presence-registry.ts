import type { UserProfile } from '../../protocol/protocol';
import { sessionValue, type PresenceRegistry, type Session } from '../engine.ports';
import { OnlineList, type ListEntry, type OnlineListBlock } from './online-list';

/** The registry's record of a session: the session as claimed, and where its profile is in the online list. */
class Entry implements ListEntry {
  listBlock?: OnlineListBlock;

  constructor(public session: Session) {}
}

const profileJson = (entry: Entry) => JSON.stringify(entry.session.profile);

/**
 * Presence of a single node: a map from user id to its one session, and the online list as UTF-8
 * JSON kept up to date as users come and go (OnlineList): a login appends its profile's JSON to
 * it, a leave or a profile change rewrites the one block of a few hundred users it is in, and an
 * AUTH SUCCESS hands the list's bytes to the socket as they are.
 */
export class MemoryPresenceRegistry implements PresenceRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly online = new OnlineList<Entry>(profileJson);

  async claim(session: Session): Promise<boolean> {
    if (this.entries.has(session.userId)) return false;
    const entry = new Entry(sessionValue(session));
    this.entries.set(session.userId, entry);
    this.online.add(entry);
    return true;
  }

  async release(session: Session): Promise<boolean> {
    const entry = this.entries.get(session.userId);
    if (!entry || entry.session.connId !== session.connId) return false;
    this.entries.delete(session.userId);
    this.online.remove(entry);
    return true;
  }

  /** The joining user is in it: its claim came first, on this same map. */
  async listBytes(): Promise<Buffer[]> {
    return this.online.parts();
  }

  /**
   * The registry's own profile objects, not copies: they are frozen (updateProfile replaces
   * them), so callers may keep them, and cache what they derive from them.
   */
  async list(): Promise<UserProfile[]> {
    return Array.from(this.entries.values(), (e) => e.session.profile);
  }

  async locate(userId: string): Promise<Session | undefined> {
    return this.entries.get(userId)?.session;
  }

  async updateProfile(userId: string, patch: Partial<UserProfile>): Promise<void> {
    const entry = this.entries.get(userId);
    if (!entry) return;
    // A new session value: the one handed to claim may be frozen, and is the caller's.
    entry.session = { ...entry.session, profile: Object.freeze({ ...entry.session.profile, ...patch, userId }) };
    this.online.changed(entry);
  }

  onExpired(_handler: (userIds: string[]) => void): void {
    // sessions of one node never expire behind its back
  }

  onSessionLost(_handler: (session: Session) => void): void {
    // nobody else can take a session of the only node
  }

  onSessionsRestored(_handler: (sessions: Session[]) => void): void {
    // nothing is ever lost, so nothing is restored
  }
}
