/**
 * A PNG encoder on Node's native zlib whose deflate runs on libuv's thread pool, off the thread
 * that draws, in parallel: scanlines come in band by band and each band is compressed as its own
 * stretch of one zlib stream (deflate primed with the previous 32 KiB, ending on a byte
 * boundary, as pigz does), side by side with the others, and written out in order. A page of any
 * height needs memory for the bands in flight only. Where the stream is cut depends on the
 * image's size and the bands it arrives in (page geometry), never on timing: the same pixels
 * give the same bytes, every run.
 */
import { PassThrough, type Readable } from 'node:stream';
import { promisify } from 'node:util';
import { constants, crc32, createDeflate, deflate as deflateCallback } from 'node:zlib';
import { checkRows, readerRoom, type ImageEncoder } from './image-encoder.js';

const deflateOnce = promisify(deflateCallback);

/**
 * zlib's default level, as MuPDF and mutool use. Node's zlib (Chromium's, SIMD-hashed) comes
 * out some 3-12% larger than Debian's on text pages; level 4 would be 1.3x faster but pass 1.1x
 * mutool's bytes, level 3 twice as fast at 1.2x the bytes (measured on corpus pages).
 */
export const PNG_DEFLATE_LEVEL = 6;

/**
 * A whole image at least this big (a Letter page from 110 dpi) is cut in two halves compressed
 * side by side: the last page of a job, or a page that takes longer to draw than to compress,
 * is out sooner on a machine with a core to spare. Decided by size alone (it once also depended
 * on whether other deflates were running, and the same page came out as different bytes).
 */
export const SPLIT_BYTES = 4 * 2 ** 20;

/** zlib's window: each stretch is primed with this much of what precedes it. */
const WINDOW_BYTES = 32 * 1024;
/** CMF/FLG of a zlib stream: deflate, 32 KiB window, default level. */
const ZLIB_HEADER = Uint8Array.of(0x78, 0x9c);
/** The end of a stretch's own zlib stream: a sync flush's empty stored block... */
const SYNC_MARKER = Buffer.from([0x00, 0x00, 0xff, 0xff]);
/** ...then the empty final block (fixed Huffman, end-of-block only) that Z_FINISH adds after it. */
const EMPTY_FINAL_BLOCK = Uint8Array.of(0x03, 0x00);

/** zlib's Adler-32 of `data`, continuing from `adler`: the stream's trailer, over stretches compressed apart. */
export function adler32(data: Uint8Array, adler = 1): number {
  let a = adler & 0xffff;
  let b = adler >>> 16;
  const length = data.length;
  let i = 0;
  while (i < length) {
    // 5552 bytes is the most that can be summed before b overflows 2^32 (zlib's NMAX).
    const end = Math.min(i + 5552, length);
    for (; i + 8 <= end; i += 8) {
      a += data[i]!;
      b += a;
      a += data[i + 1]!;
      b += a;
      a += data[i + 2]!;
      b += a;
      a += data[i + 3]!;
      b += a;
      a += data[i + 4]!;
      b += a;
      a += data[i + 5]!;
      b += a;
      a += data[i + 6]!;
      b += a;
      a += data[i + 7]!;
      b += a;
    }
    for (; i < end; i++) {
      a += data[i]!;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Uint8Array): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(data.byteLength, 0);
  header.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(data, crc32(header.subarray(4))) >>> 0);
  return Buffer.concat([header, data, crc]);
}

/** zlib's adler32_combine: the Adler-32 of A then B, from A's, B's and B's length. */
export function adler32Combine(adler1: number, adler2: number, length2: number): number {
  const BASE = 65521;
  const rem = length2 % BASE;
  let sum1 = adler1 & 0xffff;
  let sum2 = (rem * sum1) % BASE;
  sum1 += (adler2 & 0xffff) + BASE - 1;
  sum2 += ((adler1 >>> 16) & 0xffff) + ((adler2 >>> 16) & 0xffff) + BASE - rem;
  if (sum1 >= BASE) sum1 -= BASE;
  if (sum1 >= BASE) sum1 -= BASE;
  if (sum2 >= 2 * BASE) sum2 -= 2 * BASE;
  if (sum2 >= BASE) sum2 -= BASE;
  return ((sum2 << 16) | sum1) >>> 0;
}

/**
 * One stretch of a zlib stream, compressed on the thread pool as a zlib stream of its own
 * (primed with `dictionary`): written, sync-flushed, finished. Its deflate data up to the sync
 * flush is the stretch (it ends on a byte boundary and can be followed by the next), and its
 * trailer is the stretch's Adler-32, summed by zlib's native code rather than here (JavaScript
 * took 10-20 ms on a Letter page at 150 dpi, on the thread that also takes the bands).
 */
async function deflateStretch(data: Uint8Array, dictionary: Uint8Array | undefined, level: number): Promise<{ deflated: Buffer; adler: number }> {
  const zlib = createDeflate({ level, ...(dictionary ? { dictionary } : {}) });
  const chunks: Buffer[] = [];
  zlib.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise<void>((resolve, reject) => zlib.once('end', resolve).once('error', reject));
  // A failed write rejects below; its 'error' must not also be an unhandled rejection here.
  ended.catch(() => undefined);
  // Each step once the one before is done: a flush asked for while a write is pending would be dropped by end().
  await new Promise<void>((resolve, reject) => zlib.write(data, (err) => (err ? reject(err) : resolve())));
  await new Promise<void>((resolve) => zlib.flush(constants.Z_SYNC_FLUSH, resolve));
  zlib.end();
  await ended;
  const out = Buffer.concat(chunks);
  // Header: CMF, FLG, and the dictionary's id when FLG's FDICT bit is set.
  const head = out[1]! & 0x20 ? 6 : 2;
  const flushEnd = out.length - EMPTY_FINAL_BLOCK.length - 4;
  if (!out.subarray(flushEnd - SYNC_MARKER.length, flushEnd).equals(SYNC_MARKER) || out[flushEnd] !== 0x03 || out[flushEnd + 1] !== 0x00) {
    throw new Error('PNG encoder: zlib did not end the stretch with a sync flush and an empty final block');
  }
  return { deflated: out.subarray(head, flushEnd), adler: out.readUInt32BE(out.length - 4) };
}

export function createPngEncoder(width: number, height: number, channels: 1 | 3, level = PNG_DEFLATE_LEVEL): ImageEncoder {
  const output = new PassThrough({ highWaterMark: 1 << 20 });
  let bytesOut = 0;
  const emit = (data: Buffer, last = false): void => {
    if (output.destroyed) return;
    bytesOut += data.byteLength;
    if (last) output.end(data);
    else output.write(data);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = channels === 3 ? 2 : 0; // colour type: truecolour or greyscale
  // compression 0, filter method 0, no interlace: bytes 10-12 stay 0.
  emit(Buffer.concat([SIGNATURE, chunk('IHDR', ihdr)]));
  const iend = chunk('IEND', new Uint8Array(0));

  const scanlineBytes = width * channels + 1;
  let rowsWritten = 0;
  /** The end of the input so far, which primes the next stretch's window. */
  let window: Uint8Array | undefined;
  let adler = 1;
  /** Stretches are written out in order: each waits for the one before. */
  let written: Promise<void> = Promise.resolve();

  /** Compresses one stretch of the stream, primed with the window before it; it ends on a byte boundary. */
  const stretch = (data: Uint8Array): Promise<{ deflated: Buffer; adler: number; length: number }> => {
    const dictionary = window;
    const tail = data.subarray(Math.max(0, data.length - WINDOW_BYTES));
    // A stretch shorter than the window still needs the window's earlier part before it.
    window = tail.length === WINDOW_BYTES || !dictionary ? new Uint8Array(tail) : Buffer.concat([dictionary, tail]).subarray(-WINDOW_BYTES);
    return deflateStretch(data, dictionary, level).then((done) => ({ ...done, length: data.length }));
  };

  return {
    output,
    get bytesOut() {
      return bytesOut;
    },
    // Streams: each band is deflated and let go, nothing of the page is gathered.
    gatheredBytes: 0,
    async writeRows(scanlines, rowCount) {
      checkRows('PNG encoder', 'scanlines', { rowsIn: rowsWritten, rowCount, byteLength: scanlines.byteLength }, height, scanlineBytes);
      const first = rowsWritten === 0;
      rowsWritten += rowCount;
      const last = rowsWritten === height;

      /** Resolves, in its turn, to this call's part of the stream. */
      let compressed: Promise<() => Uint8Array[]>;
      if (first && last && scanlines.byteLength < SPLIT_BYTES) {
        // A small whole image: one zlib stream, one trip.
        compressed = deflateOnce(scanlines, { level }).then((zlib) => () => [zlib]);
      } else {
        // A large whole image in two halves, a band as one stretch: cut by size, never by timing.
        const halfway = first && last ? Math.ceil(rowCount / 2) * scanlineBytes : scanlines.byteLength;
        const parts = [stretch(scanlines.subarray(0, halfway))];
        if (halfway < scanlines.byteLength) parts.push(stretch(scanlines.subarray(halfway)));
        compressed = Promise.all(parts).then((stretches) => () => {
          // The stream's Adler-32 so far, from each stretch's own: called in order, when this part's turn comes.
          for (const part of stretches) adler = adler32Combine(adler, part.adler, part.length);
          const header = first ? [ZLIB_HEADER] : [];
          const trailer = last ? [EMPTY_FINAL_BLOCK, Uint8Array.of(adler >>> 24, (adler >>> 16) & 0xff, (adler >>> 8) & 0xff, adler & 0xff)] : [];
          return [...header, ...stretches.map((part) => part.deflated), ...trailer];
        });
      }
      // Its failure is seen below, when its turn comes; not an unhandled rejection meanwhile.
      compressed.catch(() => undefined);
      const out = written.then(async () => {
        const data = Buffer.concat((await compressed)());
        emit(chunk('IDAT', data));
        if (last) emit(iend, true);
      });
      written = out;
      await out;
      await readerRoom(output);
    },
    end() {
      if (rowsWritten !== height) this.fail(new Error(`PNG encoder: ended after ${rowsWritten} of ${height} rows`));
    },
    fail(err) {
      output.destroy(err);
    },
  };
}
