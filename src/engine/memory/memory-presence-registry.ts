import type { UserProfile } from '../../protocol/protocol';
import type { PresenceRegistry, Session } from '../engine.ports';

/** Presence of a single node: a map from user id to its one session. */
export class MemoryPresenceRegistry implements PresenceRegistry {
  private readonly sessions = new Map<string, Session>();

  async claim(session: Session): Promise<boolean> {
    if (this.sessions.has(session.userId)) return false;
    // A frozen profile is a value and is kept as is; any other is copied (the caller may change it).
    const profile = Object.isFrozen(session.profile) ? session.profile : Object.freeze({ ...session.profile });
    this.sessions.set(session.userId, { ...session, profile });
    return true;
  }

  async release(session: Session): Promise<boolean> {
    const current = this.sessions.get(session.userId);
    if (!current || current.connId !== session.connId) return false;
    this.sessions.delete(session.userId);
    return true;
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
    if (session) session.profile = Object.freeze({ ...session.profile, ...patch, userId });
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
