/**
 * What the session streams a page's rows into and reads its file from: PNG (png-encoder.ts,
 * deflate on libuv's thread pool) or JPEG, WebP and AVIF (sharp-encoder.ts, libvips on the same pool).
 * Either way the drawing thread only draws. The IIIF tiles take the same encoders.
 */
import type { Readable, Writable } from 'node:stream';

export interface ImageEncoder {
  /** The image file, as it is produced. */
  readonly output: Readable;
  /** Bytes of the file produced so far. */
  readonly bytesOut: number;
  /**
   * Bytes the encoder gathered outside the WebAssembly heap for this image (sharp's whole page of
   * packed rows; 0 for a streaming encoder, whose bands come and go): the job's stats report the
   * largest, so the memory a whole-page encoder takes is measured, not assumed.
   */
  readonly gatheredBytes: number;
  /**
   * Adds `rowCount` rows in the encoder's layout (rows.ts), in order: call it again without
   * waiting, and they are encoded in turn. Resolves when these rows are encoded and written out
   * (their memory released) and the reader has room for more.
   */
  writeRows(rows: Uint8Array, rowCount: number): Promise<void>;
  /** No more rows: fails the image if some are missing. The output ends with the last rows. */
  end(): void;
  /** Stops with an error, which the output's reader sees. */
  fail(err: Error): void;
}

/**
 * The rule of writeRows for every streaming encoder: `rowCount` more rows after `rowsIn` stay
 * within the image's `height`, and come as `rowCount` rows (or `unit`: PNG's scanlines) of
 * `rowBytes` each. Throws, naming the encoder by `label`.
 */
export function checkRows(label: string, unit: string, rows: { rowsIn: number; rowCount: number; byteLength: number }, height: number, rowBytes: number): void {
  const { rowsIn, rowCount, byteLength } = rows;
  if (rowsIn + rowCount > height) throw new Error(`${label}: ${rowsIn + rowCount} rows for an image of ${height}`);
  if (byteLength !== rowCount * rowBytes) throw new Error(`${label}: ${byteLength} bytes for ${rowCount} ${unit} of ${rowBytes}`);
}

/**
 * The reader sets the pace: resolves once `output` has room again (at once if it has), or
 * when its reader went away (a destroyed output releases the writer too).
 */
export async function readerRoom(output: Readable & Writable): Promise<void> {
  if (output.destroyed || output.writableEnded || !output.writableNeedDrain) return;
  await new Promise<void>((resolve) => {
    output.once('drain', resolve);
    output.once('close', resolve);
  });
}
