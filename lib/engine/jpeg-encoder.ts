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
 * progressive JPEG with optimized Huffman tables, several passes over the coefficients:
 * measured 5.6 s for 81.5 megapixels of corpus pages at 150 dpi, where drawing them took 0.7 s.
 * Most blocks of a document page are blank margin or line spacing: a block of one color has
 * only a DC coefficient and skips the DCT here.
 */
import { AC_CHROMINANCE, AC_LUMINANCE, CHROMINANCE_QUANT, DC_CHROMINANCE, DC_LUMINANCE, LUMINANCE_QUANT, ZIGZAG, type HuffmanSpec } from './jpeg-tables.js';

export interface JpegImage {
  width: number;
  height: number;
  /** 1: 8-bit gray samples; 3: RGB; packed rows either way. */
  channels: 1 | 3;
  /** 1..100, libjpeg's scale of the standard tables. */
  quality: number;
}

const ZZ = Int32Array.from(ZIGZAG);

/** Code and length per symbol (canonical Huffman codes, T.81 C.2). */
interface HuffmanCodes {
  code: Uint16Array;
  length: Uint8Array;
}
function huffmanCodes({ counts, symbols }: HuffmanSpec): HuffmanCodes {
  const code = new Uint16Array(256);
  const length = new Uint8Array(256);
  let next = 0;
  let at = 0;
  for (let bits = 1; bits <= 16; bits++) {
    for (let i = 0; i < counts[bits - 1]!; i++) {
      const symbol = symbols[at++]!;
      code[symbol] = next++;
      length[symbol] = bits;
    }
    next <<= 1;
  }
  return { code, length };
}
const LUMA = { dc: huffmanCodes(DC_LUMINANCE), ac: huffmanCodes(AC_LUMINANCE) };
const CHROMA = { dc: huffmanCodes(DC_CHROMINANCE), ac: huffmanCodes(AC_CHROMINANCE) };

/** AAN scale factors: the float DCT below leaves coefficient (u, v) scaled by these (times 8). */
const AAN_SCALE = [1.0, 1.387039845, 1.306562965, 1.175875602, 1.0, 0.785694958, 0.5411961, 0.275899379];

/** libjpeg's quality scaling of a base table (jcparam.c), in natural order. */
function scaledQuant(base: number[], quality: number): Uint8Array {
  const q = Math.min(100, Math.max(1, Math.round(quality)));
  const scale = q < 50 ? 5000 / q : 200 - q * 2;
  return Uint8Array.from(base, (v) => Math.min(255, Math.max(1, Math.floor((v * scale + 50) / 100))));
}

/** Multipliers that turn the DCT's output into quantized coefficients, natural order. */
function divisors(quant: Uint8Array): Float64Array {
  const out = new Float64Array(64);
  for (let i = 0; i < 64; i++) out[i] = 1 / (quant[i]! * AAN_SCALE[i >> 3]! * AAN_SCALE[i & 7]! * 8);
  return out;
}

/**
 * Forward DCT in place (AAN, float, as libjpeg's jfdctflt.c): rows, then columns. The two
 * passes are written out with constant offsets: V8 runs them a quarter faster than one loop
 * computing its stride.
 */
function forwardDct(d: Float64Array): void {
  for (let o = 0; o < 64; o += 8) {
      const t0 = d[o]! + d[o + 7]!;
      const t7 = d[o]! - d[o + 7]!;
      const t1 = d[o + 1]! + d[o + 6]!;
      const t6 = d[o + 1]! - d[o + 6]!;
      const t2 = d[o + 2]! + d[o + 5]!;
      const t5 = d[o + 2]! - d[o + 5]!;
      const t3 = d[o + 3]! + d[o + 4]!;
      const t4 = d[o + 3]! - d[o + 4]!;
      // Even part.
      const t10 = t0 + t3;
      const t13 = t0 - t3;
      const t11 = t1 + t2;
      const t12 = t1 - t2;
      d[o] = t10 + t11;
      d[o + 4] = t10 - t11;
      const z1 = (t12 + t13) * 0.707106781;
      d[o + 2] = t13 + z1;
      d[o + 6] = t13 - z1;
      // Odd part.
      const s10 = t4 + t5;
      const s11 = t5 + t6;
      const s12 = t6 + t7;
      const z5 = (s10 - s12) * 0.382683433;
      const z2 = 0.5411961 * s10 + z5;
      const z4 = 1.306562965 * s12 + z5;
      const z3 = s11 * 0.707106781;
      const z11 = t7 + z3;
      const z13 = t7 - z3;
      d[o + 5] = z13 + z2;
      d[o + 3] = z13 - z2;
      d[o + 1] = z11 + z4;
      d[o + 7] = z11 - z4;
  }
  for (let o = 0; o < 8; o++) {
      const t0 = d[o]! + d[o + 56]!;
      const t7 = d[o]! - d[o + 56]!;
      const t1 = d[o + 8]! + d[o + 48]!;
      const t6 = d[o + 8]! - d[o + 48]!;
      const t2 = d[o + 16]! + d[o + 40]!;
      const t5 = d[o + 16]! - d[o + 40]!;
      const t3 = d[o + 24]! + d[o + 32]!;
      const t4 = d[o + 24]! - d[o + 32]!;
      // Even part.
      const t10 = t0 + t3;
      const t13 = t0 - t3;
      const t11 = t1 + t2;
      const t12 = t1 - t2;
      d[o] = t10 + t11;
      d[o + 32] = t10 - t11;
      const z1 = (t12 + t13) * 0.707106781;
      d[o + 16] = t13 + z1;
      d[o + 48] = t13 - z1;
      // Odd part.
      const s10 = t4 + t5;
      const s11 = t5 + t6;
      const s12 = t6 + t7;
      const z5 = (s10 - s12) * 0.382683433;
      const z2 = 0.5411961 * s10 + z5;
      const z4 = 1.306562965 * s12 + z5;
      const z3 = s11 * 0.707106781;
      const z11 = t7 + z3;
      const z13 = t7 - z3;
      d[o + 40] = z13 + z2;
      d[o + 24] = z13 - z2;
      d[o + 8] = z11 + z4;
      d[o + 56] = z11 - z4;
  }
}

/** Bits needed for |v| (the JPEG magnitude category). */
const category = (v: number): number => (v === 0 ? 0 : 32 - Math.clz32(v < 0 ? -v : v));

/** Rows of one MCU (8 x 8 blocks, no subsampling). */
const MCU_ROWS = 8;

/** Most bytes one block can take: DC and 63 AC codes of at most 16 + 11 bits, every byte stuffed. */
const MAX_BLOCK_BYTES = 2 * Math.ceil((64 * 27) / 8);

/** Entropy-coded bits, with 0xFF bytes stuffed, into a growing buffer; taken band by band. */
class BitWriter {
  bytes = new Uint8Array(64 * 1024);
  length = 0;
  /** Bits not yet written out (fewer than 8), and how many: JpegEncoder.block keeps them in locals. */
  accumulator = 0;
  bits = 0;

  /** Room for `count` more bytes: write() and byte() do not check. */
  reserve(count: number): void {
    if (this.length + count <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.length + count));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }

  raw(data: ArrayLike<number>): void {
    this.reserve(data.length);
    for (let i = 0; i < data.length; i++) this.bytes[this.length++] = data[i]!;
  }

  /** Writes the low `count` bits of `value` (count <= 16). */
  write(value: number, count: number): void {
    // Fewer than 8 bits wait between calls: with 16 more, the accumulator stays within 24.
    this.accumulator = (this.accumulator << count) | (value & ((1 << count) - 1));
    this.bits += count;
    while (this.bits >= 8) {
      this.bits -= 8;
      const b = (this.accumulator >>> this.bits) & 0xff;
      this.bytes[this.length++] = b;
      if (b === 0xff) this.bytes[this.length++] = 0;
    }
    this.accumulator &= (1 << this.bits) - 1;
  }

  /** Pads the last byte with 1 bits. */
  flush(): void {
    if (this.bits > 0) this.write(0x7f, 8 - this.bits);
  }

  /** The bytes so far, handed over; the writer goes on empty. */
  take(): Uint8Array {
    const out = this.bytes.slice(0, this.length);
    this.length = 0;
    return out;
  }
}

/** One component's coding state: tables and the DC predictor. */
interface Component {
  divisor: Float64Array;
  codes: typeof LUMA;
  dc: number;
}

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
        if (differ === 0) this.flatBlock(this.y, 64 * (first - 128));
        else this.block(this.y, block);
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
        if (differ === 0) this.flatBlock(this.y, 64 * y[0]!);
        else this.block(this.y, y);
        if (colored === 0) {
          // Gray pixels have no chroma.
          this.flatBlock(this.cb, 0);
          this.flatBlock(this.cr, 0);
        } else if (differ === 0) {
          this.flatBlock(this.cb, 64 * cb[0]!);
          this.flatBlock(this.cr, 64 * cr[0]!);
        } else {
          this.block(this.cb, cb);
          this.block(this.cr, cr);
        }
      }
    }
  }

  /** A block of one value: `dc` is what the DCT would give for its DC coefficient (64 x the level-shifted value). */
  private flatBlock(component: Component, dc: number): void {
    const value = Math.round(dc * component.divisor[0]!);
    this.codeDc(component, value);
    const { ac } = component.codes;
    this.out.write(ac.code[0x00]!, ac.length[0x00]!);
  }

  private codeDc(component: Component, value: number): void {
    const diff = value - component.dc;
    component.dc = value;
    const size = category(diff);
    const { dc } = component.codes;
    this.out.write(dc.code[size]!, dc.length[size]!);
    if (size) this.out.write(diff < 0 ? diff - 1 : diff, size);
  }

  private block(component: Component, block: Float64Array): void {
    forwardDct(block);
    const { quantized, out } = this;
    const { divisor } = component;
    let last = 0;
    for (let k = 0; k < 64; k++) {
      const i = ZZ[k]!;
      // Rounded half away from zero, as libjpeg does; |x| < 2048, so | 0 truncates exactly
      // (and is three times faster here than Math.round).
      const x = block[i]! * divisor[i]!;
      const v = x < 0 ? -((0.5 - x) | 0) : (x + 0.5) | 0;
      quantized[k] = v;
      if (v !== 0) last = k;
    }
    this.codeDc(component, quantized[0]!);
    // The AC codes with the writer's state in locals (this loop is most of the encoder's time
    // on text pages): a code of up to 16 bits, then its value's up to 11, whole bytes out
    // after each, so the accumulator never holds more than 7 + 16 bits.
    const { code, length } = component.codes.ac;
    const bytes = out.bytes;
    let at = out.length;
    let accumulator = out.accumulator;
    let bits = out.bits;
    let run = 0;
    for (let k = 1; k <= last; k++) {
      const v = quantized[k]!;
      if (v === 0) {
        run++;
        continue;
      }
      for (; run > 15; run -= 16) {
        accumulator = (accumulator << length[0xf0]!) | code[0xf0]!;
        bits += length[0xf0]!;
        while (bits >= 8) {
          bits -= 8;
          const b = (accumulator >>> bits) & 0xff;
          bytes[at++] = b;
          if (b === 0xff) bytes[at++] = 0;
        }
        accumulator &= (1 << bits) - 1;
      }
      const size = v < 0 ? 32 - Math.clz32(-v) : 32 - Math.clz32(v);
      const symbol = (run << 4) | size;
      accumulator = (accumulator << length[symbol]!) | code[symbol]!;
      bits += length[symbol]!;
      while (bits >= 8) {
        bits -= 8;
        const b = (accumulator >>> bits) & 0xff;
        bytes[at++] = b;
        if (b === 0xff) bytes[at++] = 0;
      }
      accumulator = ((accumulator & ((1 << bits) - 1)) << size) | ((v < 0 ? v - 1 : v) & ((1 << size) - 1));
      bits += size;
      while (bits >= 8) {
        bits -= 8;
        const b = (accumulator >>> bits) & 0xff;
        bytes[at++] = b;
        if (b === 0xff) bytes[at++] = 0;
      }
      accumulator &= (1 << bits) - 1;
      run = 0;
    }
    out.length = at;
    out.accumulator = accumulator;
    out.bits = bits;
    if (last < 63) out.write(code[0x00]!, length[0x00]!);
  }
}

function huffmanSegment(out: BitWriter, tableClass: number, id: number, spec: HuffmanSpec): void {
  const length = 2 + 1 + 16 + spec.symbols.length;
  out.raw([0xff, 0xc4, length >> 8, length & 0xff, (tableClass << 4) | id, ...spec.counts, ...spec.symbols]);
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
