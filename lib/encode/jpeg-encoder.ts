/**
 * A streaming baseline JPEG encoder (JFIF, T.81's standard tables), for page images and
 * thumbnails. Rows come in bands, as the worker draws them, and each band gives back the bytes
 * of the MCU rows it completed, so a JPEG page needs memory for one band, like a PNG page, and
 * never a whole-page pixmap. Gray pages are written with one component (a third of the work,
 * smaller files); color pages with full-resolution chroma (4:4:4, as MuPDF writes them: 4:2:0
 * smears thin colored strokes, and cost only 3% less time here, gray blocks' chroma being
 * skipped anyway).
 *
 * Why not MuPDF's own (Pixmap.asJPEG): it takes the whole page in one piece, and it writes
 * progressive JPEG with optimized Huffman tables, several passes over the coefficients: 4.6 s
 * for 81.5 megapixels of corpus pages at 150 dpi, ours 1.6 s (`npx tsx bench/encoders.ts`).
 * Most blocks of a document page are blank margin or line spacing: a block of one color has
 * only a DC coefficient and skips the DCT here. The coding of blocks is jpeg-coding.ts's.
 */
import { BitWriter, CHROMA, codeBlock, codeFlatBlock, divisors, huffmanSegment, LUMA, MAX_BLOCK_BYTES, scaledQuant, type Component } from './jpeg-coding.js';
import { AC_CHROMINANCE, AC_LUMINANCE, CHROMINANCE_QUANT, DC_CHROMINANCE, DC_LUMINANCE, LUMINANCE_QUANT, ZIGZAG } from './jpeg-tables.js';

export interface JpegImage {
  width: number;
  height: number;
  /** 1: 8-bit gray samples; 3: RGB; packed rows either way. */
  channels: 1 | 3;
  /** 1..100, libjpeg's scale of the standard tables. */
  quality: number;
}

/** Rows of one MCU (8 x 8 blocks, no subsampling). */
const MCU_ROWS = 8;

export class JpegEncoder {
  private readonly out = new BitWriter();
  private readonly stride: number;
  /** Byte offset within a row of each column of the padded width: the last column repeated past the edge. */
  private readonly columns: Int32Array;
  /** Rows of an MCU row not complete yet, from the end of the last band. */
  private readonly carry: Uint8Array;
  private carryRows = 0;
  private rowsIn = 0;
  private readonly y: Component;
  private readonly cb: Component;
  private readonly cr: Component;
  /** The blocks being coded. */
  private readonly luma = new Float64Array(64);
  private readonly chromaB = new Float64Array(64);
  private readonly chromaR = new Float64Array(64);
  private readonly quantized = new Int32Array(64);

  constructor(private readonly image: JpegImage) {
    const { width, height, channels, quality } = image;
    if (!(Number.isInteger(width) && Number.isInteger(height) && width >= 1 && height >= 1 && width <= 65535 && height <= 65535)) {
      throw new RangeError(`cannot encode a ${width}x${height} JPEG`);
    }
    this.stride = width * channels;
    this.carry = new Uint8Array(MCU_ROWS * this.stride);
    const paddedWidth = Math.ceil(width / 8) * 8;
    this.columns = Int32Array.from({ length: paddedWidth }, (_, x) => Math.min(x, width - 1) * channels);
    const lumaQuant = scaledQuant(LUMINANCE_QUANT, quality);
    const chromaQuant = scaledQuant(CHROMINANCE_QUANT, quality);
    this.y = { divisor: divisors(lumaQuant), codes: LUMA, dc: 0 };
    this.cb = { divisor: divisors(chromaQuant), codes: CHROMA, dc: 0 };
    this.cr = { divisor: this.cb.divisor, codes: CHROMA, dc: 0 };

    const out = this.out;
    // SOI, JFIF APP0 (1:1 aspect, no thumbnail).
    out.raw([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
    const zigzag = (quant: Uint8Array): number[] => ZIGZAG.map((i) => quant[i]!);
    if (channels === 1) {
      out.raw([0xff, 0xdb, 0, 67, 0, ...zigzag(lumaQuant)]);
      // SOF0: 8 bits, one component.
      out.raw([0xff, 0xc0, 0, 11, 8, height >> 8, height & 0xff, width >> 8, width & 0xff, 1, 1, 0x11, 0]);
      huffmanSegment(out, 0, 0, DC_LUMINANCE);
      huffmanSegment(out, 1, 0, AC_LUMINANCE);
      out.raw([0xff, 0xda, 0, 8, 1, 1, 0x00, 0, 63, 0]);
    } else {
      out.raw([0xff, 0xdb, 0, 132, 0, ...zigzag(lumaQuant), 1, ...zigzag(chromaQuant)]);
      // SOF0: 8 bits, three components sampled 1x1 (4:4:4), Y on table 0, Cb and Cr on table 1.
      out.raw([0xff, 0xc0, 0, 17, 8, height >> 8, height & 0xff, width >> 8, width & 0xff, 3, 1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1]);
      huffmanSegment(out, 0, 0, DC_LUMINANCE);
      huffmanSegment(out, 1, 0, AC_LUMINANCE);
      huffmanSegment(out, 0, 1, DC_CHROMINANCE);
      huffmanSegment(out, 1, 1, AC_CHROMINANCE);
      out.raw([0xff, 0xda, 0, 12, 3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]);
    }
  }

  /**
   * Adds `rowCount` packed rows, in order; returns the JPEG bytes they completed (the headers
   * with the first call). The pixels are not kept past the call.
   */
  write(pixels: Uint8Array, rowCount: number): Uint8Array {
    const { stride, carry } = this;
    if (this.rowsIn + rowCount > this.image.height) throw new RangeError(`JPEG encoder: ${this.rowsIn + rowCount} rows for an image of ${this.image.height}`);
    if (pixels.length !== rowCount * stride) throw new RangeError(`JPEG encoder: ${pixels.length} bytes for ${rowCount} rows of ${stride}`);
    this.rowsIn += rowCount;
    let row = 0;
    if (this.carryRows > 0) {
      const taken = Math.min(MCU_ROWS - this.carryRows, rowCount);
      carry.set(pixels.subarray(0, taken * stride), this.carryRows * stride);
      this.carryRows += taken;
      row = taken;
      if (this.carryRows === MCU_ROWS) {
        this.mcuRow(carry, 0);
        this.carryRows = 0;
      }
    }
    for (; rowCount - row >= MCU_ROWS; row += MCU_ROWS) this.mcuRow(pixels, row * stride);
    if (row < rowCount) {
      carry.set(pixels.subarray(row * stride, rowCount * stride));
      this.carryRows = rowCount - row;
    }
    return this.out.take();
  }

  /** The last bytes: the rows short of a whole MCU row (the last row repeated below), and EOI. */
  end(): Uint8Array {
    if (this.rowsIn !== this.image.height) throw new RangeError(`JPEG encoder: ended after ${this.rowsIn} of ${this.image.height} rows`);
    const { stride, carry } = this;
    if (this.carryRows > 0) {
      const last = carry.subarray((this.carryRows - 1) * stride, this.carryRows * stride);
      for (let row = this.carryRows; row < MCU_ROWS; row++) carry.set(last, row * stride);
      this.mcuRow(carry, 0);
      this.carryRows = 0;
    }
    this.out.flush();
    this.out.raw([0xff, 0xd9]);
    return this.out.take();
  }

  /** One row of MCUs (8 pixel rows) whose top-left byte is `base` in `src`. */
  private mcuRow(src: Uint8Array, base: number): void {
    const { columns, stride } = this;
    this.out.reserve((columns.length / 8) * this.image.channels * MAX_BLOCK_BYTES);
    if (this.image.channels === 1) {
      const block = this.luma;
      for (let x0 = 0; x0 < columns.length; x0 += 8) {
        const first = src[base + columns[x0]!]!;
        let differ = 0;
        for (let r = 0; r < 8; r++) {
          const rowAt = base + r * stride;
          for (let c = 0; c < 8; c++) {
            const v = src[rowAt + columns[x0 + c]!]!;
            differ |= v ^ first;
            block[r * 8 + c] = v - 128;
          }
        }
        if (differ === 0) codeFlatBlock(this.out, this.y, 64 * (first - 128));
        else codeBlock(this.out, this.y, block, this.quantized);
      }
    } else {
      const { luma: y, chromaB: cb, chromaR: cr } = this;
      for (let x0 = 0; x0 < columns.length; x0 += 8) {
        const at0 = base + columns[x0]!;
        const r0 = src[at0]!;
        const g0 = src[at0 + 1]!;
        const b0 = src[at0 + 2]!;
        let differ = 0;
        let colored = 0;
        for (let r = 0; r < 8; r++) {
          const rowAt = base + r * stride;
          for (let c = 0; c < 8; c++) {
            const at = rowAt + columns[x0 + c]!;
            const R = src[at]!;
            const G = src[at + 1]!;
            const B = src[at + 2]!;
            differ |= (R ^ r0) | (G ^ g0) | (B ^ b0);
            colored |= (R ^ G) | (G ^ B);
            const i = r * 8 + c;
            y[i] = 0.299 * R + 0.587 * G + 0.114 * B - 128;
            cb[i] = -0.168736 * R - 0.331264 * G + 0.5 * B;
            cr[i] = 0.5 * R - 0.418688 * G - 0.081312 * B;
          }
        }
        if (differ === 0) codeFlatBlock(this.out, this.y, 64 * y[0]!);
        else codeBlock(this.out, this.y, y, this.quantized);
        if (colored === 0) {
          // Gray pixels have no chroma.
          codeFlatBlock(this.out, this.cb, 0);
          codeFlatBlock(this.out, this.cr, 0);
        } else if (differ === 0) {
          codeFlatBlock(this.out, this.cb, 64 * cb[0]!);
          codeFlatBlock(this.out, this.cr, 64 * cr[0]!);
        } else {
          codeBlock(this.out, this.cb, cb, this.quantized);
          codeBlock(this.out, this.cr, cr, this.quantized);
        }
      }
    }
  }
}

/** A whole image in one call: `pixels` packed rows of `image`'s channels. */
export function encodeJpeg(pixels: Uint8Array, image: JpegImage): Uint8Array {
  if (pixels.length < image.width * image.height * image.channels) {
    throw new RangeError(`${pixels.length} bytes are fewer than ${image.width}x${image.height} pixels of ${image.channels} bytes`);
  }
  const encoder = new JpegEncoder(image);
  const body = encoder.write(pixels.subarray(0, image.width * image.height * image.channels), image.height);
  return Buffer.concat([body, encoder.end()]);
}
