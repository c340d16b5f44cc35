/**
 * The avatar image pipeline, pure and framework-free: base64 in, a re-encoded, metadata-free,
 * at most 512x512 WebP (or PNG) out. See SAVE_AVATAR in docs/protocol.md.
 *
 *   decodeAvatarBase64(imageBase64, AVATAR_MAX_BYTES)  -> Buffer      (errors "1", "2")
 *   reencodeAvatar(buffer)                              -> ReencodedAvatar (error "2")
 *
 * Every failure is an AvatarError carrying the wire errorCode.
 */
import sharp, { type Metadata, type Sharp } from 'sharp';

import { AvatarError } from '../protocol/errors';
import { AvatarErrorCode } from '../protocol/protocol';

/**
 * The one AvatarError class of the project (src/protocol/errors.ts), re-exported here: the frame
 * dispatcher maps it to SAVE_AVATAR ERROR with `instanceof`, so this module must not define its own.
 */
export { AvatarError };

/** An AvatarError "2", keeping the underlying decoder error as `cause` (for logs only). */
function invalidImage(message: string, cause?: unknown): AvatarError {
  const err = new AvatarError(AvatarErrorCode.INVALID_IMAGE, message);
  if (cause !== undefined) err.cause = cause;
  return err;
}

export type AvatarImageType = 'png' | 'jpeg' | 'webp' | 'gif';
export type AvatarOutputExt = 'webp' | 'png';
export type AvatarContentType = 'image/webp' | 'image/png';

export interface ReencodedAvatar {
  data: Buffer;
  contentType: AvatarContentType;
  ext: AvatarOutputExt;
}

export interface ReencodeOptions {
  /** Largest accepted width x height of the input, checked on the header before decoding. */
  maxPixels?: number;
  /** Longest side of the output; smaller images are not enlarged. */
  maxDimension?: number;
  /** Output format. */
  format?: AvatarOutputExt;
  /** WebP quality, 1..100. */
  quality?: number;
  /** Bound on the libvips processing of one image (0 = none). */
  timeoutSeconds?: number;
}

export const DEFAULT_MAX_PIXELS = 40_000_000;
export const DEFAULT_MAX_DIMENSION = 512;
export const DEFAULT_WEBP_QUALITY = 85;
export const DEFAULT_TIMEOUT_SECONDS = 10;

const CONTENT_TYPES: Record<AvatarOutputExt, AvatarContentType> = {
  webp: 'image/webp',
  png: 'image/png',
};

// ---------------------------------------------------------------------------------------------
// base64

/** `data:image/<type>;base64,` (the scheme and `base64` are case-insensitive, as in RFC 2397). */
const DATA_URI_PREFIX = /^data:image\/[A-Za-z0-9.+-]+;base64,/i;
/**
 * Standard base64 alphabet (RFC 4648 section 4), optional padding at the very end only.
 * No whitespace, no line breaks, no URL-safe alphabet: `-`, `_`, spaces and newlines are
 * rejected. This is one linear scan (the class excludes `=`, so there is no backtracking).
 */
const BASE64_BODY = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The decoded size of a base64 string of `length` characters ending in `padding` `=` signs,
 * computed without looking at the other characters.
 */
function decodedLength(length: number, padding: number): number {
  return Math.floor(((length - padding) * 3) / 4);
}

/**
 * Decodes the `imageBase64` of a SAVE_AVATAR.
 *
 * Order of the checks (the protocol says "1" is checked first, before decoding):
 * 1. not a string, or empty (also after the data: prefix)  -> "2" "missing image"
 * 2. decoded size, computed from the length alone, > maxBytes -> "1" "image too large"
 *    (so a huge string of garbage is "too large", never "invalid")
 * 3. strict RFC 4648 standard base64, padding optional but, if present, correct -> else "2"
 *
 * Nonzero trailing pad bits (e.g. `QR==` instead of `QQ==`) are tolerated, like every common
 * decoder does; they cannot change the decoded bytes' length or meaning beyond the last byte.
 */
export function decodeAvatarBase64(input: unknown, maxBytes: number): Buffer {
  if (typeof input !== 'string' || input.length === 0) {
    throw new AvatarError(AvatarErrorCode.INVALID_IMAGE, 'missing image');
  }
  let body = input;
  const prefix = DATA_URI_PREFIX.exec(input);
  if (prefix) {
    body = input.slice(prefix[0].length);
    if (body.length === 0) {
      throw new AvatarError(AvatarErrorCode.INVALID_IMAGE, 'missing image');
    }
  }

  let padding = 0;
  while (padding < 2 && body.charCodeAt(body.length - 1 - padding) === 0x3d /* = */) {
    padding++;
  }
  if (decodedLength(body.length, padding) > maxBytes) {
    throw new AvatarError(AvatarErrorCode.TOO_LARGE, 'image too large');
  }

  if (!BASE64_BODY.test(body)) {
    throw new AvatarError(AvatarErrorCode.INVALID_IMAGE, 'invalid base64');
  }
  // The regex allows at most two trailing `=`, all of them counted in `padding` above.
  if (padding > 0 ? body.length % 4 !== 0 : body.length % 4 === 1) {
    throw new AvatarError(AvatarErrorCode.INVALID_IMAGE, 'invalid base64');
  }
  const data = Buffer.from(body, 'base64');
  if (data.length === 0) {
    throw new AvatarError(AvatarErrorCode.INVALID_IMAGE, 'missing image');
  }
  if (data.length > maxBytes) {
    // Unreachable given the arithmetic above; kept as a belt-and-braces bound.
    throw new AvatarError(AvatarErrorCode.TOO_LARGE, 'image too large');
  }
  return data;
}

// ---------------------------------------------------------------------------------------------
// format sniffing

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const JPEG_MAGIC = Buffer.from([0xff, 0xd8, 0xff]);
const GIF87A = Buffer.from('GIF87a', 'latin1');
const GIF89A = Buffer.from('GIF89a', 'latin1');
const RIFF = Buffer.from('RIFF', 'latin1');
const WEBP = Buffer.from('WEBP', 'latin1');

function startsWith(buf: Buffer, magic: Buffer, offset = 0): boolean {
  return (
    buf.length >= offset + magic.length &&
    buf.compare(magic, 0, magic.length, offset, offset + magic.length) === 0
  );
}

/**
 * The image type by magic bytes; undefined for anything else (SVG, text, TIFF, HEIF/AVIF, BMP,
 * ICO, PDF, ...). Only these four types are ever handed to libvips.
 */
export function sniffImageType(buf: Buffer): AvatarImageType | undefined {
  if (startsWith(buf, PNG_MAGIC)) return 'png';
  if (startsWith(buf, JPEG_MAGIC)) return 'jpeg';
  if (startsWith(buf, GIF87A) || startsWith(buf, GIF89A)) return 'gif';
  if (startsWith(buf, RIFF) && startsWith(buf, WEBP, 8)) return 'webp';
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// sharp / libvips process settings

let sharpConfigured = false;

/**
 * Process-wide sharp settings for a server that re-encodes untrusted avatars. Call it once at
 * startup (e.g. in the avatar module's provider factory); it is idempotent. reencodeAvatar is
 * safe without it (sniffing + the format check already keep every other decoder away), this is
 * defence in depth and memory hygiene:
 *
 * - `sharp.cache(false)`: the libvips operation cache (default 50 MB / 100 ops) only pays off
 *   when the same input is processed repeatedly; every avatar is a distinct one-off buffer, so the
 *   cache would just pin memory of past uploads.
 * - block every libvips loader except PNG, JPEG, WebP and GIF, so that SVG (librsvg), PDF, TIFF,
 *   HEIF, JPEG 2000, ... can never be reached by any sharp call in this process, whatever a
 *   future bug in the sniffing. NOTE: this is process-global; do not call it in a process that
 *   must read other formats with sharp.
 *
 * `sharp.concurrency` (libvips threads per image, default = CPU cores) is left alone: the number
 * of images processed at once is bounded by AvatarService (AVATAR_CONCURRENCY, below the libuv
 * thread pool's UV_THREADPOOL_SIZE by default, so uploads leave room for fs/dns work), and
 * avatars are small.
 */
export function configureSharpForServer(): void {
  if (sharpConfigured) return;
  sharp.cache(false);
  sharp.block({ operation: ['VipsForeignLoad'] });
  sharp.unblock({
    operation: [
      'VipsForeignLoadPng',
      'VipsForeignLoadJpeg',
      'VipsForeignLoadWebp',
      'VipsForeignLoadNsgif',
    ],
  });
  sharpConfigured = true;
}

// ---------------------------------------------------------------------------------------------
// re-encoding

/**
 * Validates and re-encodes an avatar: auto-oriented from EXIF, first frame only for animated
 * GIF/WebP, fitted inside maxDimension x maxDimension (never enlarged), converted to sRGB, all
 * metadata (EXIF, XMP, ICC, IPTC, comments) dropped, written as WebP (default) or PNG.
 *
 * Rejections, all AvatarError "2": not PNG/JPEG/WebP/GIF by magic bytes; libvips detects another
 * format than the magic bytes say; width x height above maxPixels (read from the header, before
 * any pixel is decoded: decompression bombs are never decoded); truncated or corrupt pixel data
 * (`failOn: 'error'`, which implies 'truncated'; mere warnings such as extraneous bytes between
 * JPEG markers, common in camera files, are tolerated); processing over timeoutSeconds.
 */
export async function reencodeAvatar(
  buf: Buffer,
  opts: ReencodeOptions = {},
): Promise<ReencodedAvatar> {
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const maxDimension = opts.maxDimension ?? DEFAULT_MAX_DIMENSION;
  const ext: AvatarOutputExt = opts.format ?? 'webp';
  const quality = opts.quality ?? DEFAULT_WEBP_QUALITY;
  const timeoutSeconds = opts.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;

  const sniffed = sniffImageType(buf);
  if (!sniffed) {
    throw new AvatarError(
      AvatarErrorCode.INVALID_IMAGE,
      'not a PNG, JPEG, WebP or GIF image',
    );
  }

  const input = (): Sharp =>
    sharp(buf, {
      limitInputPixels: maxPixels,
      failOn: 'error',
      animated: false,
      pages: 1,
      page: 0,
    });

  let meta: Metadata;
  try {
    meta = await input().metadata();
  } catch (err) {
    // libvips itself refuses a header over limitInputPixels ("Input image exceeds pixel limit").
    if (err instanceof Error && /pixel limit/i.test(err.message)) throw invalidImage('image dimensions too large', err);
    throw invalidImage('corrupt image', err);
  }
  if (meta.format !== sniffed) {
    throw invalidImage('not a PNG, JPEG, WebP or GIF image');
  }
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  if (width <= 0 || height <= 0) {
    throw invalidImage('corrupt image');
  }
  // For a multi-frame image, metadata() with pages: 1 reports one frame's height
  // (pageHeight when present), which is what gets decoded.
  const frameHeight = meta.pageHeight ?? height;
  if (width * frameHeight > maxPixels) {
    throw new AvatarError(AvatarErrorCode.INVALID_IMAGE, 'image dimensions too large');
  }

  try {
    let pipeline = input()
      .timeout({ seconds: timeoutSeconds })
      .autoOrient()
      .resize({
        width: maxDimension,
        height: maxDimension,
        fit: 'inside',
        withoutEnlargement: true,
      });
    // No withMetadata()/keepMetadata()/keepExif()/keepIccProfile(): sharp then strips all
    // metadata and converts to sRGB.
    pipeline =
      ext === 'png'
        ? pipeline.png({ compressionLevel: 9, adaptiveFiltering: true })
        : pipeline.webp({ quality, effort: 4 });
    const data = await pipeline.toBuffer();
    return { data, contentType: CONTENT_TYPES[ext], ext };
  } catch (err) {
    throw invalidImage('corrupt image', err);
  }
}
