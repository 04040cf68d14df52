/**
 * Baseline JPEG's coding of 8 x 8 blocks, for jpeg-encoder.ts: the float AAN DCT (as libjpeg's
 * jfdctflt.c), quantization by libjpeg's quality scaling of T.81's tables, and Huffman coding
 * with T.81's standard tables into a bit writer with byte stuffing.
 */
import { AC_CHROMINANCE, AC_LUMINANCE, CHROMINANCE_QUANT, DC_CHROMINANCE, DC_LUMINANCE, LUMINANCE_QUANT, ZIGZAG, type HuffmanSpec } from './jpeg-tables.js';

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
export const LUMA = { dc: huffmanCodes(DC_LUMINANCE), ac: huffmanCodes(AC_LUMINANCE) };
export const CHROMA = { dc: huffmanCodes(DC_CHROMINANCE), ac: huffmanCodes(AC_CHROMINANCE) };

/** AAN scale factors: the float DCT below leaves coefficient (u, v) scaled by these (times 8). */
const AAN_SCALE = [1.0, 1.387039845, 1.306562965, 1.175875602, 1.0, 0.785694958, 0.5411961, 0.275899379];

/** libjpeg's quality scaling of a base table (jcparam.c), in natural order. */
export function scaledQuant(base: number[], quality: number): Uint8Array {
  const q = Math.min(100, Math.max(1, Math.round(quality)));
  const scale = q < 50 ? 5000 / q : 200 - q * 2;
  return Uint8Array.from(base, (v) => Math.min(255, Math.max(1, Math.floor((v * scale + 50) / 100))));
}

/** Multipliers that turn the DCT's output into quantized coefficients, natural order. */
export function divisors(quant: Uint8Array): Float64Array {
  const out = new Float64Array(64);
  for (let i = 0; i < 64; i++) out[i] = 1 / (quant[i]! * AAN_SCALE[i >> 3]! * AAN_SCALE[i & 7]! * 8);
  return out;
}

/** Forward DCT in place (AAN, float, as libjpeg's jfdctflt.c), rows then columns. */
function forwardDct(d: Float64Array): void {
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

/** Bits needed for |v| (the JPEG magnitude category). */
const category = (v: number): number => (v === 0 ? 0 : 32 - Math.clz32(v < 0 ? -v : v));

/** Most bytes one block can take: DC and 63 AC codes of at most 16 + 11 bits, every byte stuffed. */
export const MAX_BLOCK_BYTES = 2 * Math.ceil((64 * 27) / 8);

/** Entropy-coded bits, with 0xFF bytes stuffed, into a growing buffer; taken band by band. */
export class BitWriter {
  bytes = new Uint8Array(64 * 1024);
  length = 0;
  /** Bits not yet written out (fewer than 8), and how many: codeBlock keeps them in locals. */
  accumulator = 0;
  bits = 0;

  /** Room for `count` more bytes: write() does not check. */
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
export interface Component {
  divisor: Float64Array;
  codes: typeof LUMA;
  dc: number;
}

/** A block of one value: `dc` is what the DCT would give for its DC coefficient (64 x the level-shifted value). */
export function codeFlatBlock(out: BitWriter, component: Component, dc: number): void {
  const value = Math.round(dc * component.divisor[0]!);
  codeDc(out, component, value);
  const { ac } = component.codes;
  out.write(ac.code[0x00]!, ac.length[0x00]!);
}

function codeDc(out: BitWriter, component: Component, value: number): void {
  const diff = value - component.dc;
  component.dc = value;
  const size = category(diff);
  const { dc } = component.codes;
  out.write(dc.code[size]!, dc.length[size]!);
  if (size) out.write(diff < 0 ? diff - 1 : diff, size);
}

/** Codes one block of level-shifted samples (its array is overwritten); `quantized` is scratch space. */
export function codeBlock(out: BitWriter, component: Component, block: Float64Array, quantized: Int32Array): void {
  forwardDct(block);
  const { divisor } = component;
  let last = 0;
  for (let k = 0; k < 64; k++) {
    const i = ZZ[k]!;
    // Rounded half away from zero, as libjpeg does; |x| < 2048, so | 0 truncates exactly.
    const x = block[i]! * divisor[i]!;
    const v = x < 0 ? -((0.5 - x) | 0) : (x + 0.5) | 0;
    quantized[k] = v;
    if (v !== 0) last = k;
  }
  codeDc(out, component, quantized[0]!);
  // The AC codes with the writer's state in locals: this loop is about 40% of the encoder's
  // time on text pages, and locals made the whole encoder 12% faster than calls to write().
  // A code of up to 16 bits, then its value's up to 11, whole bytes out after each, so the
  // accumulator never holds more than 7 + 16 bits.
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
    const size = category(v);
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

export function huffmanSegment(out: BitWriter, tableClass: number, id: number, spec: HuffmanSpec): void {
  const length = 2 + 1 + 16 + spec.symbols.length;
  out.raw([0xff, 0xc4, length >> 8, length & 0xff, (tableClass << 4) | id, ...spec.counts, ...spec.symbols]);
}

