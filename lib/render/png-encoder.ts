/**
 * A streaming PNG encoder on Node's native zlib: scanlines go in band by band, PNG bytes come
 * out as they are compressed, so a page of any height needs memory for one band only. Deflate
 * runs on libuv's thread pool, off the thread that draws and beside other pages' deflates.
 */
import { PassThrough, type Readable } from 'node:stream';
import { promisify } from 'node:util';
import { constants, createDeflate, crc32, deflate as deflateCallback } from 'node:zlib';

const deflateOnce = promisify(deflateCallback);

/**
 * zlib's default level, as MuPDF and mutool use. Node's zlib (Chromium's, SIMD-hashed) comes
 * out some 3-12% larger than Debian's on text pages; level 4 would be 1.3x faster but pass 1.1x
 * mutool's bytes, level 3 twice as fast at 1.2x the bytes (measured on corpus pages).
 */
export const PNG_DEFLATE_LEVEL = 6;

/** PNG filter type 0 (none) before every row: it compresses rendered pages as well as MuPDF's choice (also none), at no cost. */
export const PNG_FILTER_NONE = 0;

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Uint8Array): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(data.byteLength, 0);
  header.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(data, crc32(header.subarray(4))) >>> 0);
  return Buffer.concat([header, data, crc]);
}

/**
 * Packed pixel rows as PNG scanlines: each row prefixed with its filter byte (none). Done where
 * the pixels are copied anyway (out of WebAssembly memory), so it costs no extra pass.
 */
export function toScanlines(pixels: Uint8Array | Uint8ClampedArray, width: number, rows: number, channels: number): Uint8Array {
  const stride = width * channels;
  const scanlines = new Uint8Array((stride + 1) * rows);
  for (let y = 0; y < rows; y++) {
    const at = y * (stride + 1);
    scanlines[at] = PNG_FILTER_NONE;
    scanlines.set(pixels.subarray(y * stride, (y + 1) * stride), at + 1);
  }
  return scanlines;
}

export interface PngEncoder {
  /** The PNG file, as it is produced. */
  readonly output: Readable;
  /** Bytes of PNG produced so far. */
  readonly bytesOut: number;
  /**
   * Adds `rowCount` scanlines (see toScanlines). Resolves when they are compressed or queued
   * in zlib's buffer, that is, when the caller may draw more. A whole image given at once is
   * compressed in one trip to the thread pool.
   */
  writeScanlines(scanlines: Uint8Array, rowCount: number): Promise<void>;
  /** No more rows: the output ends once everything is flushed. */
  end(): void;
  /** Stops with an error, which the output's reader sees. */
  fail(err: Error): void;
}

export function createPngEncoder(width: number, height: number, channels: 1 | 3, level = PNG_DEFLATE_LEVEL): PngEncoder {
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
  const end = (): void => emit(chunk('IEND', new Uint8Array(0)), true);

  // Created on the first partial write: most pages arrive whole and never need a stream.
  let deflate: ReturnType<typeof createDeflate> | undefined;
  const streaming = (): ReturnType<typeof createDeflate> => {
    if (deflate) return deflate;
    deflate = createDeflate({ level, chunkSize: 64 * 1024, strategy: constants.Z_DEFAULT_STRATEGY });
    deflate.on('data', (data: Buffer) => emit(chunk('IDAT', data)));
    deflate.on('end', end);
    deflate.on('error', (err) => output.destroy(err));
    return deflate;
  };

  const scanlineBytes = width * channels + 1;
  let rowsWritten = 0;
  let wholeImage = false;
  return {
    output,
    get bytesOut() {
      return bytesOut;
    },
    async writeScanlines(scanlines, rowCount) {
      if (rowsWritten + rowCount > height) throw new Error(`PNG encoder: ${rowsWritten + rowCount} rows for an image of ${height}`);
      if (scanlines.byteLength !== rowCount * scanlineBytes) throw new Error(`PNG encoder: ${scanlines.byteLength} bytes for ${rowCount} scanlines of ${scanlineBytes}`);
      const first = rowsWritten === 0;
      rowsWritten += rowCount;
      if (first && rowCount === height) {
        wholeImage = true;
        const compressed = await deflateOnce(scanlines, { level });
        emit(chunk('IDAT', compressed));
        end();
        return;
      }
      const stream = streaming();
      if (!stream.write(scanlines)) await new Promise<void>((resolve) => stream.once('drain', resolve));
      // The reader sets the pace: do not run ahead of it by more than a buffer.
      if (output.writableNeedDrain) await new Promise<void>((resolve) => output.once('drain', resolve));
    },
    end() {
      if (rowsWritten !== height) {
        this.fail(new Error(`PNG encoder: ended after ${rowsWritten} of ${height} rows`));
        return;
      }
      // A whole image ends its output when its one deflate returns.
      if (!wholeImage) streaming().end();
    },
    fail(err) {
      deflate?.destroy();
      output.destroy(err);
    },
  };
}
