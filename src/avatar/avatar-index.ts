/**
 * userId -> avatar URL of the avatars saved through SAVE_AVATAR. These win over the avatar the
 * authorization server reports, across reconnects, restarts and nodes (PROTOCOL.md).
 */
export interface AvatarIndex {
  get(userId: string): Promise<string | undefined>;
  /** Only the users that have a saved avatar are in the result. */
  getMany(userIds: string[]): Promise<Map<string, string>>;
  /** Resolves once the new URL is durable and visible to get/getMany; rejects otherwise. */
  set(userId: string, url: string): Promise<void>;
}

export const AVATAR_INDEX = Symbol('AVATAR_INDEX');
