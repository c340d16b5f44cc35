/** Counting Unicode code points without scanning more of a string than a length check needs. */

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
