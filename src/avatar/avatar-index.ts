/**
 * userId -> avatar URL of the avatars saved through SAVE_AVATAR. These win over the avatar the
 * authorization server reports, across reconnects, restarts and nodes (PROTOCOL.md).
 */
export interface AvatarIndex {
  get(userId: string): Promise<string | undefined>;
  /** Only the users that have a saved avatar are in the result. */
  getMany(userIds: string[]): Promise<Map<string, string>>;
  /**
   * Resolves once the new URL is durable and visible to get/getMany, with the URL it replaced
   * (undefined when the user had none); rejects otherwise. Get-and-set is atomic: of concurrent
   * sets of one user, each gets a different previous URL, so every replaced URL is handed out
   * exactly once (and its file can be deleted exactly once).
   */
  set(userId: string, url: string): Promise<string | undefined>;
}

export const AVATAR_INDEX = Symbol('AVATAR_INDEX');
