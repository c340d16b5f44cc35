import { deflateSync } from 'node:zlib';

import sharp, { type Sharp } from 'sharp';

import { rejectionOf } from '../../test/support/errors';
import { AvatarError as ProtocolAvatarError, toWireAnswer } from '../protocol/errors';
import { AvatarErrorCode } from '../protocol/protocol';
import {
  AvatarError,
  configureSharpForServer,
  decodeAvatarBase64,
  reencodeAvatar,
  sniffImageType,
} from './avatar-image';

const MAX = 1_048_576;

/** Resolves to the AvatarError thrown by fn, failing the test when something else happens. */
const avatarErrorOf = (fn: () => unknown): Promise<AvatarError> => rejectionOf(AvatarError, fn);

function noise(width: number, height: number, channels: 3 | 4 = 3): Buffer {
  const raw = Buffer.alloc(width * height * channels);
  let x = 12345;
  for (let i = 0; i < raw.length; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    raw[i] = x >>> 16;
  }
  return raw;
}

function solid(width: number, height: number): Sharp {
  return sharp({ create: { width, height, channels: 3, background: { r: 200, g: 30, b: 90 } } });
}

// --- a minimal PNG writer, to forge headers libvips would never write -------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** A grayscale 8-bit PNG claiming width x height, whose IDAT holds only `rows` zero rows. */
function forgedPng(width: number, height: number, rows: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grayscale
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc((width + 1) * rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('AvatarError', () => {
  it('is the protocol AvatarError, so the dispatcher answers SAVE_AVATAR ERROR', async () => {
    expect(AvatarError).toBe(ProtocolAvatarError);
    const tooLarge = await avatarErrorOf(() => decodeAvatarBase64('AAAAAAAA', 1));
    expect(toWireAnswer(tooLarge, 'SAVE_AVATAR')?.frame).toEqual({
      type: 'SAVE_AVATAR',
      status: 'ERROR',
      error: { errorCode: '1', message: 'image too large' },
    });
    const invalid = await avatarErrorOf(() => reencodeAvatar(Buffer.from('text')));
    expect(toWireAnswer(invalid, 'SAVE_AVATAR')?.frame).toMatchObject({ error: { errorCode: '2' } });
  });
});

describe('decodeAvatarBase64', () => {
  const bytes = Buffer.from([0, 1, 2, 250, 251, 252, 253, 254, 255, 42]);
  const b64 = bytes.toString('base64'); // 10 bytes -> "AAEC+vv8/f7/Kg=="

  it('decodes padded standard base64', () => {
    expect(b64.endsWith('==')).toBe(true);
    expect(decodeAvatarBase64(b64, MAX)).toEqual(bytes);
  });

  it('accepts unpadded base64', () => {
    expect(decodeAvatarBase64(b64.replace(/=+$/, ''), MAX)).toEqual(bytes);
    const eleven = Buffer.from('hello world'); // 11 bytes -> one "="
    expect(decodeAvatarBase64(eleven.toString('base64').replace(/=$/, ''), MAX)).toEqual(eleven);
  });

  it('strips a data: URI prefix, case-insensitively', () => {
    expect(decodeAvatarBase64(`data:image/png;base64,${b64}`, MAX)).toEqual(bytes);
    expect(decodeAvatarBase64(`DATA:image/jpeg;BASE64,${b64}`, MAX)).toEqual(bytes);
    expect(decodeAvatarBase64(`data:image/svg+xml;base64,${b64}`, MAX)).toEqual(bytes);
  });

  it.each([
    ['undefined', undefined],
    ['null', null],
    ['a number', 42],
    ['an object', { a: 1 }],
    ['the empty string', ''],
    ['a bare data: prefix', 'data:image/png;base64,'],
  ])('rejects %s as a missing image ("2")', async (_name, input) => {
    const err = await avatarErrorOf(() => decodeAvatarBase64(input, MAX));
    expect(err.code).toBe(AvatarErrorCode.INVALID_IMAGE);
    expect(err.message).toBe('missing image');
  });

  it.each([
    ['URL-safe characters', 'AAEC-vv8_f7_Kg=='],
    ['a space', 'AAEC +vv8/f7/Kg=='],
    ['a newline', 'AAEC+vv8\n/f7/Kg=='],
    ['a trailing newline', `${b64}\n`],
    ['non-ASCII', 'AAEC+vv8/f7/Kg€='],
    ['padding in the middle', 'AA==AAAA'],
    ['three padding characters', 'A==='],
    ['wrong padding (one "=" where two are needed)', 'AAEC+vv8/f7/Kg='],
    ['wrong padding (padding on a full quantum)', 'AAAA=='],
    ['a lone padding character', '='],
    ['an impossible length (4n+1)', 'AAAAA'],
    ['another data: type', `data:text/plain;base64,${b64}`],
    ['a data: URI that is not base64', `data:image/png,${b64}`],
  ])('rejects %s as invalid ("2")', async (_name, input) => {
    const err = await avatarErrorOf(() => decodeAvatarBase64(input, MAX));
    expect(err.code).toBe(AvatarErrorCode.INVALID_IMAGE);
  });

  it('accepts exactly maxBytes and rejects maxBytes + 1 with "1"', async () => {
    const max = 3000;
    expect(decodeAvatarBase64(Buffer.alloc(max, 7).toString('base64'), max)).toHaveLength(max);
    const err = await avatarErrorOf(() =>
      decodeAvatarBase64(Buffer.alloc(max + 1, 7).toString('base64'), max),
    );
    expect(err.code).toBe(AvatarErrorCode.TOO_LARGE);
    expect(err.message).toBe('image too large');
  });

  it('computes the size from length and padding alone, padded or not', async () => {
    // 4 chars + "==" padding = 4 bytes; unpadded 6 chars = 4 bytes; 7 chars = 5 bytes.
    expect(decodeAvatarBase64('AAAAAA==', 4)).toHaveLength(4);
    expect(decodeAvatarBase64('AAAAAA', 4)).toHaveLength(4);
    expect((await avatarErrorOf(() => decodeAvatarBase64('AAAAAAA', 4))).code).toBe(
      AvatarErrorCode.TOO_LARGE,
    );
  });

  it('checks the size first: a string of "A"s decoding to maxBytes + 1 is "1"', async () => {
    const chars = Math.ceil(((MAX + 1) * 4) / 3); // unpadded length of MAX + 1 bytes
    const err = await avatarErrorOf(() => decodeAvatarBase64('A'.repeat(chars), MAX));
    expect(err.code).toBe(AvatarErrorCode.TOO_LARGE);
  });

  it('checks the size before the characters: over-size garbage is "1", not "2"', async () => {
    const garbage = '!@#$ not base64 at all ~~~ '.repeat(60_000); // ~1.6 MB
    const err = await avatarErrorOf(() => decodeAvatarBase64(garbage, MAX));
    expect(err.code).toBe(AvatarErrorCode.TOO_LARGE);
    const behindPrefix = await avatarErrorOf(() =>
      decodeAvatarBase64(`data:image/png;base64,${garbage}`, MAX),
    );
    expect(behindPrefix.code).toBe(AvatarErrorCode.TOO_LARGE);
  });

  it('does not count the data: prefix against the size', () => {
    const max = 300;
    const exact = Buffer.alloc(max, 1).toString('base64');
    expect(decodeAvatarBase64(`data:image/webp;base64,${exact}`, max)).toHaveLength(max);
  });

  it('validates a ~1.4 MB string quickly', () => {
    const big = Buffer.alloc(MAX, 0xab).toString('base64');
    const started = process.hrtime.bigint();
    expect(decodeAvatarBase64(big, MAX)).toHaveLength(MAX);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    expect(ms).toBeLessThan(500);
    const bad = `${big.slice(0, -10)}*${big.slice(-9)}`;
    expect(() => decodeAvatarBase64(bad, MAX)).toThrow(AvatarError);
  });
});

describe('sniffImageType', () => {
  it('recognizes the four formats by magic bytes', async () => {
    const base = solid(8, 8);
    expect(sniffImageType(await base.clone().png().toBuffer())).toBe('png');
    expect(sniffImageType(await base.clone().jpeg().toBuffer())).toBe('jpeg');
    expect(sniffImageType(await base.clone().webp().toBuffer())).toBe('webp');
    expect(sniffImageType(await base.clone().gif().toBuffer())).toBe('gif');
    expect(sniffImageType(Buffer.from('GIF87a......'))).toBe('gif');
  });

  it('rejects everything else', async () => {
    const base = solid(8, 8);
    expect(sniffImageType(await base.clone().tiff().toBuffer())).toBeUndefined();
    expect(sniffImageType(await base.clone().avif().toBuffer())).toBeUndefined();
    expect(sniffImageType(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'))).toBeUndefined();
    expect(sniffImageType(Buffer.from('BM\x00\x00\x00\x00', 'latin1'))).toBeUndefined();
    expect(sniffImageType(Buffer.from('RIFF\x00\x00\x00\x00WAVE', 'latin1'))).toBeUndefined();
    expect(sniffImageType(Buffer.from('%PDF-1.7'))).toBeUndefined();
    expect(sniffImageType(Buffer.from([0x89, 0x50, 0x4e]))).toBeUndefined();
    expect(sniffImageType(Buffer.alloc(0))).toBeUndefined();
  });
});

describe('reencodeAvatar', () => {
  it.each(['png', 'jpeg', 'webp', 'gif'] as const)(
    're-encodes a %s into a WebP of the same size',
    async (format) => {
      const input = await sharp(noise(64, 48), { raw: { width: 64, height: 48, channels: 3 } })
        .toFormat(format)
        .toBuffer();
      const out = await reencodeAvatar(input);
      expect(out.ext).toBe('webp');
      expect(out.contentType).toBe('image/webp');
      expect(sniffImageType(out.data)).toBe('webp');
      const meta = await sharp(out.data).metadata();
      expect(meta.format).toBe('webp');
      expect([meta.width, meta.height]).toEqual([64, 48]);
    },
  );

  it('also goes through the base64 step', async () => {
    const png = await solid(20, 10).png().toBuffer();
    const decoded = decodeAvatarBase64(`data:image/png;base64,${png.toString('base64')}`, MAX);
    const out = await reencodeAvatar(decoded);
    expect((await sharp(out.data).metadata()).width).toBe(20);
  });

  it('can write PNG instead', async () => {
    const out = await reencodeAvatar(await solid(30, 30).jpeg().toBuffer(), { format: 'png' });
    expect(out).toMatchObject({ ext: 'png', contentType: 'image/png' });
    expect((await sharp(out.data).metadata()).format).toBe('png');
  });

  it('fits a 2000x1000 image inside 512x512, keeping the aspect ratio', async () => {
    const out = await reencodeAvatar(await solid(2000, 1000).png().toBuffer());
    const meta = await sharp(out.data).metadata();
    expect([meta.width, meta.height]).toEqual([512, 256]);
  });

  it('fits a tall image too, and honours maxDimension', async () => {
    const input = await solid(300, 900).png().toBuffer();
    const meta = await sharp((await reencodeAvatar(input, { maxDimension: 128 })).data).metadata();
    expect([meta.width, meta.height]).toEqual([43, 128]);
  });

  it('never enlarges a small image', async () => {
    const out = await reencodeAvatar(await solid(16, 16).png().toBuffer());
    const meta = await sharp(out.data).metadata();
    expect([meta.width, meta.height]).toEqual([16, 16]);
  });

  it('auto-orients from EXIF and strips EXIF, ICC and XMP metadata', async () => {
    const input = await sharp(noise(200, 100), { raw: { width: 200, height: 100, channels: 3 } })
      .jpeg()
      .withMetadata({ orientation: 6 }) // rotate 90 degrees clockwise to display
      .withExif({ IFD0: { Copyright: 'secret-copyright', Artist: 'secret-artist' } })
      .withIccProfile('p3')
      .withXmp(
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="secret-xmp"/></rdf:RDF></x:xmpmeta>',
      )
      .toBuffer();
    const inMeta = await sharp(input).metadata();
    expect(inMeta.exif).toBeDefined();
    expect(inMeta.icc).toBeDefined();
    expect(inMeta.xmp).toBeDefined();
    expect(inMeta.orientation).toBe(6);

    const out = await reencodeAvatar(input);
    const meta = await sharp(out.data).metadata();
    expect([meta.width, meta.height]).toEqual([100, 200]);
    expect(meta.exif).toBeUndefined();
    expect(meta.icc).toBeUndefined();
    expect(meta.xmp).toBeUndefined();
    expect(meta.iptc).toBeUndefined();
    expect(meta.orientation).toBeUndefined();
    expect(out.data.includes('secret')).toBe(false);
  });

  it('keeps only the first frame of an animated GIF', async () => {
    const frames = [
      await solid(40, 30).png().toBuffer(),
      await sharp(noise(40, 30), { raw: { width: 40, height: 30, channels: 3 } }).png().toBuffer(),
    ];
    const gif = await sharp(frames, { join: { animated: true } }).gif().toBuffer();
    expect((await sharp(gif).metadata()).pages).toBe(2);
    const meta = await sharp((await reencodeAvatar(gif)).data).metadata();
    expect([meta.width, meta.height]).toEqual([40, 30]);
    expect(meta.pages ?? 1).toBe(1);
  });

  it.each(['png', 'jpeg', 'webp', 'gif'] as const)(
    'rejects a truncated %s with "2"',
    async (format) => {
      const full = await sharp(noise(120, 120), { raw: { width: 120, height: 120, channels: 3 } })
        .toFormat(format)
        .toBuffer();
      const truncated = full.subarray(0, Math.floor(full.length * 0.6));
      const err = await avatarErrorOf(() => reencodeAvatar(truncated));
      expect(err.code).toBe(AvatarErrorCode.INVALID_IMAGE);
    },
  );

  it('rejects a PNG truncated right after its header with "2"', async () => {
    const full = await solid(100, 100).png().toBuffer();
    const err = await avatarErrorOf(() => reencodeAvatar(full.subarray(0, 40)));
    expect(err.code).toBe(AvatarErrorCode.INVALID_IMAGE);
  });

  it('rejects a PNG whose IDAT holds fewer rows than the header says', async () => {
    const err = await avatarErrorOf(() => reencodeAvatar(forgedPng(100, 100, 10)));
    expect(err.code).toBe(AvatarErrorCode.INVALID_IMAGE);
    // the same construction, complete, is accepted (the forging itself is sound)
    const ok = await reencodeAvatar(forgedPng(100, 100, 100));
    expect((await sharp(ok.data).metadata()).width).toBe(100);
  });

  it('rejects SVG, even behind an image/png data: prefix, with "2"', async () => {
    const svg =
      '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><rect width="100" height="100" fill="red"/></svg>';
    const decoded = decodeAvatarBase64(
      `data:image/png;base64,${Buffer.from(svg).toString('base64')}`,
      MAX,
    );
    const err = await avatarErrorOf(() => reencodeAvatar(decoded));
    expect(err.code).toBe(AvatarErrorCode.INVALID_IMAGE);
  });

  it('rejects an SVG disguised behind a GIF signature with "2"', async () => {
    const polyglot = Buffer.from('GIF89a<svg xmlns="http://www.w3.org/2000/svg"/>');
    const err = await avatarErrorOf(() => reencodeAvatar(polyglot));
    expect(err.code).toBe(AvatarErrorCode.INVALID_IMAGE);
  });

  it.each([
    ['plain text', async () => Buffer.from('hello, this is not an image')],
    ['random bytes', async () => noise(100, 1)],
    ['a TIFF', async () => solid(10, 10).tiff().toBuffer()],
    ['an AVIF', async () => solid(10, 10).avif().toBuffer()],
    ['a bare PNG signature', async () => Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])],
    ['a bare JPEG signature', async () => Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0])],
  ])('rejects %s with "2"', async (_name, make) => {
    const err = await avatarErrorOf(async () => reencodeAvatar(await make()));
    expect(err.code).toBe(AvatarErrorCode.INVALID_IMAGE);
  });

  it('rejects a decompression bomb (real, small file, huge pixels) with "2"', async () => {
    const bomb = await solid(4000, 4000).png({ compressionLevel: 9 }).toBuffer();
    expect(bomb.length).toBeLessThan(200_000); // 48 MB of pixels in a small file
    const err = await avatarErrorOf(() => reencodeAvatar(bomb, { maxPixels: 1_000_000 }));
    expect(err.code).toBe(AvatarErrorCode.INVALID_IMAGE);
    expect(err.message).toBe('image dimensions too large');
  });

  it('refuses a 6300x6300 PNG of ~130 KB over a limit of 4096x4096 on its header, without decoding it', async () => {
    const bomb = await solid(6300, 6300).png({ compressionLevel: 9 }).toBuffer();
    expect(bomb.length).toBeLessThan(200_000);
    const err = await avatarErrorOf(() => reencodeAvatar(bomb, { maxPixels: 16_777_216 }));
    expect(err.code).toBe(AvatarErrorCode.INVALID_IMAGE);
    // this refusal comes from the header checks, both before the decoding pipeline is built
    expect(err.message).toBe('image dimensions too large');
  });

  it('accepts an image of exactly maxPixels (4096x4096 = 16777216)', async () => {
    const edge = await solid(4096, 4096).png({ compressionLevel: 9 }).toBuffer();
    const meta = await sharp((await reencodeAvatar(edge, { maxPixels: 4096 * 4096 })).data).metadata();
    expect([meta.width, meta.height]).toEqual([512, 512]);
    expect((await avatarErrorOf(() => reencodeAvatar(edge, { maxPixels: 4096 * 4096 - 1 }))).message).toBe('image dimensions too large');
  });

  it('rejects a forged 30000x30000 PNG under the default limit without decoding it', async () => {
    const bomb = forgedPng(30_000, 30_000, 1);
    expect(bomb.length).toBeLessThan(1000);
    const started = Date.now();
    const err = await avatarErrorOf(() => reencodeAvatar(bomb));
    expect(err.code).toBe(AvatarErrorCode.INVALID_IMAGE);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('rejects an GIF one pixel over maxPixels', async () => {
    const gif = await solid(300, 300).gif().toBuffer();
    const err = await avatarErrorOf(() => reencodeAvatar(gif, { maxPixels: 300 * 299 }));
    expect(err.code).toBe(AvatarErrorCode.INVALID_IMAGE);
    expect(err.message).toBe('image dimensions too large');
    await expect(reencodeAvatar(gif, { maxPixels: 300 * 300 })).resolves.toBeDefined();
  });

  it('keeps the cause of a decoder failure', async () => {
    const full = await solid(100, 100).png().toBuffer();
    const err = await avatarErrorOf(() => reencodeAvatar(full.subarray(0, full.length - 20)));
    expect(err.message).toBe('corrupt image');
    expect(err.cause).toBeInstanceOf(Error);
  });
});

describe('configureSharpForServer', () => {
  afterAll(() => {
    // process-global libvips state: undo it for whatever runs next in this worker
    sharp.unblock({ operation: ['VipsForeignLoad'] });
    sharp.cache(true);
  });

  it('keeps the four formats working and blocks every other loader', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
    const tiff = await solid(10, 10).tiff().toBuffer();
    const inputs = await Promise.all(
      (['png', 'jpeg', 'webp', 'gif'] as const).map((f) => solid(10, 10).toFormat(f).toBuffer()),
    );
    configureSharpForServer();
    configureSharpForServer(); // idempotent
    for (const input of inputs) {
      await expect(reencodeAvatar(input)).resolves.toMatchObject({ ext: 'webp' });
    }
    await expect(sharp(svg).metadata()).rejects.toThrow();
    await expect(sharp(tiff).metadata()).rejects.toThrow();
  });
});
