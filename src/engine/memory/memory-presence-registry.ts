import type { UserProfile } from '../../protocol/protocol';
import type { PresenceRegistry, Session } from '../engine.ports';

/**
 * Presence of a single node: a map from user id to its one session, and the online list as JSON
 * text kept up to date as users come and go: a login appends its profile's JSON (no work for the
 * others), a leave or a profile change has the text joined again at the next login.
 */
export class MemoryPresenceRegistry implements PresenceRegistry {
  private readonly sessions = new Map<string, Session>();
  /** Each online user's profile as JSON, in the order of `sessions`. */
  private readonly profileJson = new Map<string, string>();
  /** The online list's elements as JSON, comma-separated; undefined when it must be joined again. */
  private json?: string = '';

  async claim(session: Session): Promise<boolean> {
    if (this.sessions.has(session.userId)) return false;
    // A frozen profile is a value and is kept as is; any other is copied (the caller may change it).
    const profile = Object.isFrozen(session.profile) ? session.profile : Object.freeze({ ...session.profile });
    const json = JSON.stringify(profile);
    this.sessions.set(session.userId, { ...session, profile });
    this.profileJson.set(session.userId, json);
    if (this.json !== undefined) this.json = this.json === '' ? json : `${this.json},${json}`;
    return true;
  }

  async release(session: Session): Promise<boolean> {
    const current = this.sessions.get(session.userId);
    if (!current || current.connId !== session.connId) return false;
    this.sessions.delete(session.userId);
    this.profileJson.delete(session.userId);
    this.json = undefined;
    return true;
  }

  async listJson(): Promise<string> {
    if (this.json === undefined) {
      this.json = [...this.profileJson.values()].join(',');
    }
    return this.json;
  }

  /**
   * The registry's own profile objects, not copies: they are frozen (updateProfile replaces
   * them), so callers may keep them, and cache what they derive from them.
   */
  async list(): Promise<UserProfile[]> {
    return Array.from(this.sessions.values(), (s) => s.profile);
  }

  async locate(userId: string): Promise<Session | undefined> {
    return this.sessions.get(userId);
  }

  async updateProfile(userId: string, patch: Partial<UserProfile>): Promise<void> {
    const session = this.sessions.get(userId);
    if (!session) return;
    session.profile = Object.freeze({ ...session.profile, ...patch, userId });
    this.profileJson.set(userId, JSON.stringify(session.profile));
    this.json = undefined;
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
