/**
 * A small baseline JPEG encoder for thumbnails (JFIF, YCbCr 4:4:4, the standard tables of
 * ITU-T T.81 Annex K), run on the main thread when a page's thumbnail pixels arrive from the
 * worker, so the drawing thread only draws. MuPDF.js's only JPEG writer (Pixmap.asJPEG) writes
 * progressive JPEG with optimized Huffman tables, several passes over the coefficients:
 * measured 7 to 27 ms for one 256 px wide page thumbnail in the worker, more than drawing it.
 * In the main thread, whose JIT stays warm from job to job (a worker's is cold each job), this
 * one took 0.7 of MuPDF's time (69 thumbnails, same process, warm: 996 ms against 1449).
 * 4:4:4 keeps the chroma of thin colored strokes that 4:2:0 smears at this size.
 */
import { errorMessage } from './errors.js';
import type { ThumbnailPixels } from './protocol.js';
import type { Thumbnail } from './results.js';

/** Natural (row-major) index of the k-th coefficient in zigzag order. */
const ZIGZAG = [
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29,
  22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/** T.81 K.1 quantization tables, natural order. */
const LUMINANCE_QUANT = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109,
  103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
const CHROMINANCE_QUANT = [
  17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99, ...new Array<number>(32).fill(99),
];

/** The byte values from..to inclusive. */
const span = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** T.81 K.3 Huffman tables: code counts per length 1..16, then the symbols in code order. */
interface HuffmanSpec {
  counts: number[];
  symbols: number[];
}
const DC_LUMINANCE: HuffmanSpec = { counts: [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0], symbols: span(0, 11) };
const DC_CHROMINANCE: HuffmanSpec = { counts: [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0], symbols: span(0, 11) };
const AC_LUMINANCE: HuffmanSpec = {
  counts: [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d],
  symbols: [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42,
    0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, ...span(0x16, 0x1a), ...span(0x25, 0x2a), ...span(0x34, 0x3a),
    ...span(0x43, 0x4a), ...span(0x53, 0x5a), ...span(0x63, 0x6a), ...span(0x73, 0x7a), ...span(0x83, 0x8a), ...span(0x92, 0x9a), ...span(0xa2, 0xaa),
    ...span(0xb2, 0xba), ...span(0xc2, 0xca), ...span(0xd2, 0xda), ...span(0xe1, 0xea), ...span(0xf1, 0xfa),
  ],
};
const AC_CHROMINANCE: HuffmanSpec = {
  counts: [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77],
  symbols: [
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1,
    0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, ...span(0x17, 0x1a), ...span(0x26, 0x2a),
    ...span(0x35, 0x3a), ...span(0x43, 0x4a), ...span(0x53, 0x5a), ...span(0x63, 0x6a), ...span(0x73, 0x7a), ...span(0x82, 0x8a), ...span(0x92, 0x9a),
    ...span(0xa2, 0xaa), ...span(0xb2, 0xba), ...span(0xc2, 0xca), ...span(0xd2, 0xda), ...span(0xe2, 0xea), ...span(0xf2, 0xfa),
  ],
};

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
const CODES = {
  dcLuminance: huffmanCodes(DC_LUMINANCE),
  acLuminance: huffmanCodes(AC_LUMINANCE),
  dcChrominance: huffmanCodes(DC_CHROMINANCE),
  acChrominance: huffmanCodes(AC_CHROMINANCE),
};

/** AAN scale factors: the float DCT below leaves coefficient (u, v) scaled by these (times 8). */
const AAN_SCALE = [1.0, 1.387039845, 1.306562965, 1.175875602, 1.0, 0.785694958, 0.5411961, 0.275899379];

/** libjpeg's quality scaling of a base table (jcparam.c), in natural order. */
function scaledQuant(base: number[], quality: number): Uint8Array {
  const q = Math.min(100, Math.max(1, Math.round(quality)));
  const scale = q < 50 ? 5000 / q : 200 - q * 2;
  return Uint8Array.from(base, (v) => Math.min(255, Math.max(1, Math.floor((v * scale + 50) / 100))));
}

/** Multipliers that turn the DCT's output into quantized coefficients, natural order. */
function divisors(quant: Uint8Array): Float32Array {
  const out = new Float32Array(64);
  for (let i = 0; i < 64; i++) out[i] = 1 / (quant[i]! * AAN_SCALE[i >> 3]! * AAN_SCALE[i & 7]! * 8);
  return out;
}

/** Forward DCT in place (AAN, float, as libjpeg's jfdctflt.c), rows then columns. */
function forwardDct(d: Float32Array): void {
  for (let pass = 0; pass < 2; pass++) {
    const step = pass === 0 ? 1 : 8;
    for (let line = 0; line < 8; line++) {
      const o = pass === 0 ? line * 8 : line;
      const t0 = d[o]! + d[o + 7 * step]!;
      const t7 = d[o]! - d[o + 7 * step]!;
      const t1 = d[o + step]! + d[o + 6 * step]!;
      const t6 = d[o + step]! - d[o + 6 * step]!;
      const t2 = d[o + 2 * step]! + d[o + 5 * step]!;
      const t5 = d[o + 2 * step]! - d[o + 5 * step]!;
      const t3 = d[o + 3 * step]! + d[o + 4 * step]!;
      const t4 = d[o + 3 * step]! - d[o + 4 * step]!;
      // Even part.
      const t10 = t0 + t3;
      const t13 = t0 - t3;
      const t11 = t1 + t2;
      const t12 = t1 - t2;
      d[o] = t10 + t11;
      d[o + 4 * step] = t10 - t11;
      const z1 = (t12 + t13) * 0.707106781;
      d[o + 2 * step] = t13 + z1;
      d[o + 6 * step] = t13 - z1;
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
      d[o + 5 * step] = z13 + z2;
      d[o + 3 * step] = z13 - z2;
      d[o + step] = z11 + z4;
      d[o + 7 * step] = z11 - z4;
    }
  }
}

/** Entropy-coded bits, with 0xFF bytes stuffed, into a growing buffer. */
class BitWriter {
  bytes: Uint8Array;
  length = 0;
  private buffer = 0;
  private bits = 0;

  constructor(capacity: number) {
    this.bytes = new Uint8Array(capacity);
  }

  byte(b: number): void {
    if (this.length === this.bytes.length) {
      const grown = new Uint8Array(this.bytes.length * 2);
      grown.set(this.bytes);
      this.bytes = grown;
    }
    this.bytes[this.length++] = b;
  }

  raw(data: ArrayLike<number>): void {
    for (let i = 0; i < data.length; i++) this.byte(data[i]!);
  }

  /** Writes the low `count` bits of `value` (count <= 16). */
  write(value: number, count: number): void {
    this.buffer = (this.buffer << count) | (value & ((1 << count) - 1));
    this.bits += count;
    while (this.bits >= 8) {
      const b = (this.buffer >> (this.bits - 8)) & 0xff;
      this.byte(b);
      if (b === 0xff) this.byte(0);
      this.bits -= 8;
    }
    this.buffer &= (1 << this.bits) - 1;
  }

  /** Pads the last byte with 1 bits. */
  flush(): void {
    if (this.bits > 0) this.write(0x7f, 8 - this.bits);
  }
}

/** Bits needed for |v| (the JPEG magnitude category). */
const category = (v: number): number => (v === 0 ? 0 : 32 - Math.clz32(v < 0 ? -v : v));

function encodeBlock(out: BitWriter, block: Float32Array, divisor: Float32Array, previousDc: number, dc: HuffmanCodes, ac: HuffmanCodes, quantized: Int32Array): number {
  forwardDct(block);
  let last = 0;
  for (let k = 0; k < 64; k++) {
    const i = ZIGZAG[k]!;
    const v = Math.round(block[i]! * divisor[i]!);
    quantized[k] = v;
    if (v !== 0) last = k;
  }
  const diff = quantized[0]! - previousDc;
  const dcCategory = category(diff);
  out.write(dc.code[dcCategory]!, dc.length[dcCategory]!);
  if (dcCategory) out.write(diff < 0 ? diff - 1 : diff, dcCategory);
  let run = 0;
  for (let k = 1; k <= last; k++) {
    const v = quantized[k]!;
    if (v === 0) {
      run++;
      continue;
    }
    while (run > 15) {
      out.write(ac.code[0xf0]!, ac.length[0xf0]!);
      run -= 16;
    }
    const c = category(v);
    const symbol = (run << 4) | c;
    out.write(ac.code[symbol]!, ac.length[symbol]!);
    out.write(v < 0 ? v - 1 : v, c);
    run = 0;
  }
  if (last < 63) out.write(ac.code[0x00]!, ac.length[0x00]!);
  return quantized[0]!;
}

function huffmanSegment(out: BitWriter, tableClass: number, id: number, spec: HuffmanSpec): void {
  const length = 2 + 1 + 16 + spec.symbols.length;
  out.raw([0xff, 0xc4, length >> 8, length & 0xff, (tableClass << 4) | id, ...spec.counts, ...spec.symbols]);
}

/**
 * Encodes packed RGB pixels (3 bytes a pixel, rows of `width`, as MuPDF's RGB pixmaps without
 * alpha) as a baseline JPEG of that size.
 */
export function encodeBaselineJpeg(rgb: ArrayLike<number>, width: number, height: number, quality: number): Uint8Array {
  if (width < 1 || height < 1 || width > 65535 || height > 65535) throw new RangeError(`cannot encode a ${width}x${height} JPEG`);
  if (rgb.length < width * height * 3) throw new RangeError(`${rgb.length} bytes are fewer than ${width}x${height} RGB pixels`);
  const lumaQuant = scaledQuant(LUMINANCE_QUANT, quality);
  const chromaQuant = scaledQuant(CHROMINANCE_QUANT, quality);
  const out = new BitWriter(Math.max(1024, (width * height) >> 2));
  // SOI, JFIF APP0 (1:1 aspect, no thumbnail).
  out.raw([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
  // DQT: both tables, in zigzag order.
  out.raw([0xff, 0xdb, 0, 132, 0, ...ZIGZAG.map((i) => lumaQuant[i]!), 1, ...ZIGZAG.map((i) => chromaQuant[i]!)]);
  // SOF0: 8 bits, three components sampled 1x1 (4:4:4), Y on table 0, Cb and Cr on table 1.
  out.raw([0xff, 0xc0, 0, 17, 8, height >> 8, height & 0xff, width >> 8, width & 0xff, 3, 1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1]);
  huffmanSegment(out, 0, 0, DC_LUMINANCE);
  huffmanSegment(out, 1, 0, AC_LUMINANCE);
  huffmanSegment(out, 0, 1, DC_CHROMINANCE);
  huffmanSegment(out, 1, 1, AC_CHROMINANCE);
  // SOS: the three components interleaved, the whole spectrum.
  out.raw([0xff, 0xda, 0, 12, 3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]);

  const lumaDivisor = divisors(lumaQuant);
  const chromaDivisor = divisors(chromaQuant);
  const y = new Float32Array(64);
  const cb = new Float32Array(64);
  const cr = new Float32Array(64);
  const quantized = new Int32Array(64);
  let dcY = 0;
  let dcCb = 0;
  let dcCr = 0;
  for (let top = 0; top < height; top += 8) {
    for (let left = 0; left < width; left += 8) {
      // The block's pixels, the image's edge repeated past its right and bottom, level-shifted.
      for (let row = 0; row < 8; row++) {
        const py = Math.min(top + row, height - 1);
        for (let col = 0; col < 8; col++) {
          const at = (py * width + Math.min(left + col, width - 1)) * 3;
          const r = rgb[at]!;
          const g = rgb[at + 1]!;
          const b = rgb[at + 2]!;
          const i = row * 8 + col;
          y[i] = 0.299 * r + 0.587 * g + 0.114 * b - 128;
          cb[i] = -0.168736 * r - 0.331264 * g + 0.5 * b;
          cr[i] = 0.5 * r - 0.418688 * g - 0.081312 * b;
        }
      }
      dcY = encodeBlock(out, y, lumaDivisor, dcY, CODES.dcLuminance, CODES.acLuminance, quantized);
      dcCb = encodeBlock(out, cb, chromaDivisor, dcCb, CODES.dcChrominance, CODES.acChrominance, quantized);
      dcCr = encodeBlock(out, cr, chromaDivisor, dcCr, CODES.dcChrominance, CODES.acChrominance, quantized);
    }
  }
  out.flush();
  out.raw([0xff, 0xd9]);
  return out.bytes.slice(0, out.length);
}

/** JPEG quality of thumbnails: at 256 px wide, text stays legible and a page is 10 to 20 KB. */
export const THUMBNAIL_JPEG_QUALITY = 75;

/**
 * A page's thumbnail pixels from the worker as the JPEG of PageStats.thumbnail; undefined (and
 * a warning logged) if they cannot be encoded, the page itself standing.
 */
export function encodeThumbnail(
  pixels: ThumbnailPixels,
  pageNumber: number,
  onLog: ((level: 'warning' | 'error', message: string) => void) | undefined,
): Thumbnail | undefined {
  try {
    return { jpeg: encodeBaselineJpeg(pixels.rgb, pixels.width, pixels.height, THUMBNAIL_JPEG_QUALITY), width: pixels.width, height: pixels.height };
  } catch (err) {
    onLog?.('warning', `page ${pageNumber}: no thumbnail: ${errorMessage(err)}`);
    return undefined;
  }
}
