/**
 * No encoding: the rows as they come (packed, 1 or 3 bytes a pixel) are the page's body. The
 * IIIF level cache (lib/iiif/levels.ts) keeps a page's level as these rows in a file, so a tile
 * is cut from it by reading its bytes of each row, with nothing to decode.
 */
import { PassThrough } from 'node:stream';
import { checkRows, readerRoom, type ImageEncoder } from './image-encoder.js';

export function createRawEncoder(width: number, height: number, channels: 1 | 3): ImageEncoder {
  const output = new PassThrough({ highWaterMark: 1 << 20 });
  const rowBytes = width * channels;
  let rowsIn = 0;
  let bytesOut = 0;
  return {
    output,
    get bytesOut() {
      return bytesOut;
    },
    // Streams: each band goes out as it comes.
    gatheredBytes: 0,
    async writeRows(rows, rowCount) {
      checkRows('raw rows', 'rows', { rowsIn, rowCount, byteLength: rows.byteLength }, height, rowBytes);
      rowsIn += rowCount;
      if (output.destroyed) return;
      bytesOut += rows.byteLength;
      if (rowsIn === height) output.end(rows);
      else output.write(rows);
      await readerRoom(output);
    },
    end() {
      if (rowsIn !== height) this.fail(new Error(`raw rows: ended after ${rowsIn} of ${height} rows`));
    },
    fail(err) {
      output.destroy(err);
    },
  };
}
