/**
 * Pixel rows as they leave the worker: copied out of WebAssembly memory once, straight into
 * the layout their encoder takes, so the copy is the only pass. PNG takes scanlines (a filter
 * byte before each row); JPEG packed rows.
 */

/** 'png': each row prefixed with its filter byte (none); 'packed': rows as they are. */
export type RowLayout = 'png' | 'packed';

/** PNG filter type 0 (none) before every row: it compresses rendered pages as well as MuPDF's choice (also none), at no cost. */
export const PNG_FILTER_NONE = 0;

/** Bytes of `rows` rows of `width` pixels of `channels` bytes in `layout`. */
export function rowBytes(width: number, rows: number, channels: number, layout: RowLayout): number {
  return (width * channels + (layout === 'png' ? 1 : 0)) * rows;
}

/** Packed pixel rows, copied into `layout`. */
export function copyRows(pixels: Uint8Array | Uint8ClampedArray, width: number, rows: number, channels: number, layout: RowLayout): Uint8Array {
  const stride = width * channels;
  if (layout === 'packed') return new Uint8Array(pixels.subarray(0, stride * rows));
  const scanlines = new Uint8Array((stride + 1) * rows);
  for (let y = 0; y < rows; y++) {
    const at = y * (stride + 1);
    scanlines[at] = PNG_FILTER_NONE;
    scanlines.set(pixels.subarray(y * stride, (y + 1) * stride), at + 1);
  }
  return scanlines;
}

/**
 * RGB pixel rows as 8-bit gray rows in `layout`, if every pixel has R = G = B (undefined at the
 * first one that does not): the test and the copy out of WebAssembly memory in one pass.
 * Lossless: the gray image decodes to exactly these pixels.
 */
export function copyGrayRows(pixels: Uint8Array | Uint8ClampedArray, width: number, rows: number, layout: RowLayout): Uint8Array | undefined {
  const stride = width * 3;
  const prefixed = layout === 'png';
  const out = new Uint8Array(rowBytes(width, rows, 1, layout));
  // A blank row is compared whole (memcmp) and filled: most rows of a document page are margin
  // or line spacing, and this halved the gray test of a text page (tracemonkey p. 1 at 150 dpi).
  const whiteRow = Buffer.alloc(stride, 0xff);
  let to = 0;
  for (let y = 0; y < rows; y++) {
    if (prefixed) out[to++] = PNG_FILTER_NONE;
    const rowStart = y * stride;
    if (whiteRow.equals(Buffer.from(pixels.buffer, pixels.byteOffset + rowStart, stride))) {
      out.fill(0xff, to, to + width);
      to += width;
      continue;
    }
    for (let from = rowStart, end = rowStart + stride; from < end; from += 3) {
      const r = pixels[from]!;
      if (r !== pixels[from + 1] || r !== pixels[from + 2]) return undefined;
      out[to++] = r;
    }
  }
  return out;
}

/**
 * RGB pixel rows as 8-bit gray rows in `layout` (IIIF's gray and bitonal qualities): the
 * luma of ITU-R BT.601 (0.299 R + 0.587 G + 0.114 B, in integers), and with `bitonal` each
 * pixel thresholded at the middle to black or white. One pass, band by band.
 */
export function copyRowsAsGray(pixels: Uint8Array | Uint8ClampedArray, width: number, rows: number, layout: RowLayout, bitonal: boolean): Uint8Array {
  const prefixed = layout === 'png';
  const out = new Uint8Array(rowBytes(width, rows, 1, layout));
  let to = 0;
  let from = 0;
  for (let y = 0; y < rows; y++) {
    if (prefixed) out[to++] = PNG_FILTER_NONE;
    for (let x = 0; x < width; x++, from += 3) {
      const luma = (77 * pixels[from]! + 150 * pixels[from + 1]! + 29 * pixels[from + 2]! + 128) >> 8;
      out[to++] = bitonal ? (luma < 128 ? 0 : 255) : luma;
    }
  }
  return out;
}

/**
 * `w` x `h` RGB pixels at (`left`, `top`) of a pixmap `stride` pixels wide, copied out of
 * WebAssembly memory (or a level file's rows, lib/iiif/levels.ts) packed, mirrored and turned
 * clockwise on the way (a tile's turn: MuPDF's anti-aliasing grid is 17x15 samples, not square,
 * so a page drawn through a turned matrix differs at glyph and line edges by up to ~40 levels
 * from the same page turned afterwards).
 */
export function cropTurn(pixels: Uint8Array | Uint8ClampedArray, stride: number, left: number, top: number, w: number, h: number, rotate: 0 | 90 | 180 | 270, mirror: boolean): Uint8Array {
  const turned = rotate === 90 || rotate === 270;
  const outW = turned ? h : w;
  const out = new Uint8Array(w * h * 3);
  if (rotate === 0 && !mirror) {
    for (let y = 0; y < h; y++) out.set(pixels.subarray(((top + y) * stride + left) * 3, ((top + y) * stride + left + w) * 3), y * w * 3);
    return out;
  }
  for (let b = 0; b < h; b++) {
    for (let a0 = 0; a0 < w; a0++) {
      // Output pixel (u, v) of the source pixel (a, b) of the mirrored region.
      const a = mirror ? w - 1 - a0 : a0;
      let u: number;
      let v: number;
      if (rotate === 0) [u, v] = [a, b];
      else if (rotate === 90) [u, v] = [h - 1 - b, a];
      else if (rotate === 180) [u, v] = [w - 1 - a, h - 1 - b];
      else [u, v] = [b, w - 1 - a];
      const from = ((top + b) * stride + left + a0) * 3;
      const to = (v * outW + u) * 3;
      out[to] = pixels[from]!;
      out[to + 1] = pixels[from + 1]!;
      out[to + 2] = pixels[from + 2]!;
    }
  }
  return out;
}

/**
 * A tile's packed RGB pixels as the rows its encoder takes, in `layout`: 8-bit gray for the
 * gray and bitonal qualities (copyRowsAsGray); for color, gray rows when every pixel is gray
 * (copyGrayRows: the same pixels, a third of the bytes to encode), RGB rows otherwise. The one
 * rule of a tile drawn by MuPDF (draw-region.ts) and of one cut from a level (lib/iiif/levels.ts).
 */
export function tileRows(packed: Uint8Array, width: number, height: number, quality: 'color' | 'gray' | 'bitonal', layout: RowLayout): { channels: 1 | 3; rows: Uint8Array } {
  if (quality !== 'color') return { channels: 1, rows: copyRowsAsGray(packed, width, height, layout, quality === 'bitonal') };
  const gray = copyGrayRows(packed, width, height, layout);
  return gray ? { channels: 1, rows: gray } : { channels: 3, rows: copyRows(packed, width, height, 3, layout) };
}
