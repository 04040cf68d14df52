/**
 * A streaming PNG encoder on Node's native zlib: rows go in band by band, PNG bytes come out
 * as they are compressed, so a page of any height needs memory for one band only. Deflate runs
 * on libuv's thread pool, off the thread that draws, and faster than MuPDF's WebAssembly zlib.
 */
import { PassThrough, type Readable } from 'node:stream';
import { promisify } from 'node:util';
import { constants, createDeflate, crc32, deflate as deflateCallback } from 'node:zlib';

const deflateOnce = promisify(deflateCallback);

/**
 * zlib's default level, as MuPDF and mutool use. Node's zlib (Chromium's, SIMD-hashed) still
 * comes out some 5-12% larger than MuPDF's on text pages; it runs off the drawing thread, in
 * parallel with the next page, which is where the speed comes from.
 */
export const PNG_DEFLATE_LEVEL = 6;

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Uint8Array): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(data.byteLength, 0);
  header.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(data, crc32(header.subarray(4))) >>> 0);
  return Buffer.concat([header, data, crc]);
}

export interface PngEncoder {
  /** The PNG file, as it is produced. */
  readonly output: Readable;
  /** Bytes of PNG produced so far. */
  readonly bytesOut: number;
  /** Adds `rowCount` rows of packed RGB (or gray) pixels; resolves when zlib can take more. */
  writeRows(pixels: Uint8Array, rowCount: number): Promise<void>;
  /** Ends the image; the output ends once everything is flushed. */
  end(): void;
  /** Stops with an error, which the output's reader sees. */
  fail(err: Error): void;
}

export function createPngEncoder(width: number, height: number, channels: 1 | 3, level = PNG_DEFLATE_LEVEL): PngEncoder {
  const output = new PassThrough({ highWaterMark: 1 << 20 });
  let bytesOut = 0;
  const emit = (data: Buffer, last = false): void => {
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

  const deflate = createDeflate({ level, chunkSize: 64 * 1024, strategy: constants.Z_DEFAULT_STRATEGY });
  deflate.on('data', (data: Buffer) => emit(chunk('IDAT', data)));
  deflate.on('end', () => emit(chunk('IEND', new Uint8Array(0)), true));
  deflate.on('error', (err) => output.destroy(err));

  const stride = width * channels;
  let rowsWritten = 0;
  return {
    output,
    get bytesOut() {
      return bytesOut;
    },
    async writeRows(pixels, rowCount) {
      if (rowsWritten + rowCount > height) throw new Error(`PNG encoder: ${rowsWritten + rowCount} rows for an image of ${height}`);
      // Each row is prefixed with its filter type: 0, none.
      const filtered = Buffer.allocUnsafe((stride + 1) * rowCount);
      for (let y = 0; y < rowCount; y++) {
        const at = y * (stride + 1);
        filtered[at] = 0;
        filtered.set(pixels.subarray(y * stride, (y + 1) * stride), at + 1);
      }
      rowsWritten += rowCount;
      if (rowCount === height) {
        // The whole image in one band (most pages): one trip to the thread pool, not one per chunk.
        emit(chunk('IDAT', await deflateOnce(filtered, { level })));
        emit(chunk('IEND', new Uint8Array(0)), true);
        deflate.destroy();
        return;
      }
      if (!deflate.write(filtered)) await new Promise<void>((resolve) => deflate.once('drain', resolve));
      // The reader sets the pace: do not run ahead of it by more than a buffer.
      if (output.writableNeedDrain) await new Promise<void>((resolve) => output.once('drain', resolve));
    },
    end() {
      if (rowsWritten !== height) {
        this.fail(new Error(`PNG encoder: ended after ${rowsWritten} of ${height} rows`));
        return;
      }
      if (!output.writableEnded) deflate.end();
    },
    fail(err) {
      deflate.destroy();
      output.destroy(err);
    },
  };
}
