import { invalidMessage } from './errors';

/** Plain, allocation-free checks of inbound fields; each throws INVALID_MESSAGE with a reason. */

export type JsonObject = Record<string, unknown>;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The object at `frame[field]`; INVALID_MESSAGE when absent or not an object. */
export function requireObject(frame: JsonObject, field: string): JsonObject {
  const value = frame[field];
  if (!isObject(value)) throw invalidMessage(`${field} must be an object`);
  return value;
}

/** A non-empty string at `object[field]`; `path` names it in the error. */
export function requireString(object: JsonObject, field: string, path: string): string {
  const value = object[field];
  if (typeof value !== 'string' || value.length === 0) throw invalidMessage(`${path} must be a non-empty string`);
  return value;
}

/**
 * For length checks: a number greater than `limit` exactly when `text` has more than `limit`
 * Unicode code points (counting stops at `limit + 1`). Strings of at most `limit` UTF-16 units
 * return their unit count without scanning, which may exceed their code-point count but never `limit`.
 */
export function codePointsUpTo(text: string, limit: number): number {
  if (text.length <= limit) return text.length; // never more code points than UTF-16 units
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
    if (++count > limit) return count;
  }
  return count;
}
