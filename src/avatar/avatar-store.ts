/**
 * Where re-encoded avatars live. Every node of a deployment must see every saved avatar
 * (docs/protocol.md: "the store is shared"), so implementations are shared storage (a shared
 * directory, object storage, ...). File names are chosen by the store, never by the client.
 */
export interface StoredAvatar {
  data: Buffer;
  contentType: string;
}

export interface AvatarStore {
  /** Stores a new, immutable avatar; resolves to its server-chosen file name. Rejects on failure. */
  put(data: Buffer, ext: 'webp' | 'png', contentType: string): Promise<string>;
  /** The avatar of that file name, or undefined when it does not exist or the name is not valid. */
  get(fileName: string): Promise<StoredAvatar | undefined>;
  /**
   * Deletes a stored avatar (a replaced one). Idempotent: resolves also when it is not there.
   * Rejects, touching nothing, for a name the store could not have chosen (not AVATAR_FILE_NAME).
   */
  delete(fileName: string): Promise<void>;
}

export const AVATAR_STORE = Symbol('AVATAR_STORE');

/** The only file names a store hands out and serves: 128 random bits in hex + extension. */
export const AVATAR_FILE_NAME = /^[a-f0-9]{32}\.(webp|png)$/;

export const AVATAR_CONTENT_TYPES = {
  webp: 'image/webp',
  png: 'image/png',
} as const satisfies Record<'webp' | 'png', string>;

/** The URL handed to clients: `<PUBLIC_URL>/avatars/<file>` (trailing slashes of PUBLIC_URL ignored). */
export function avatarUrl(publicUrl: string, fileName: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/avatars/${fileName}`;
}

/**
 * The file name behind one of our avatar URLs: exactly `avatarUrl(publicUrl, name)` with a name
 * the store could have chosen. Undefined for anything else (the authorization server's avatar
 * URL, another PUBLIC_URL, a path with more segments, ...): such a URL names no file of ours.
 */
export function avatarFileNameOf(publicUrl: string, url: string): string | undefined {
  const base = avatarUrl(publicUrl, '');
  if (typeof url !== 'string' || !url.startsWith(base)) return undefined;
  const name = url.slice(base.length);
  return AVATAR_FILE_NAME.test(name) ? name : undefined;
}
