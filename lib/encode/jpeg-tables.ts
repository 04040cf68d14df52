/**
 * The fixed tables of baseline JPEG (ITU-T T.81): the zigzag order, the Annex K quantization
 * tables and the Annex K Huffman tables, which jpeg-encoder.ts uses as they are (no optimized
 * Huffman pass, so the encoder can stream).
 */

/** Natural (row-major) index of the k-th coefficient in zigzag order. */
export const ZIGZAG = [
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29,
  22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/** T.81 K.1 quantization tables, natural order. */
export const LUMINANCE_QUANT = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109,
  103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
export const CHROMINANCE_QUANT = [
  17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99, ...new Array<number>(32).fill(99),
];

/** The byte values from..to inclusive. */
const span = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** T.81 K.3 Huffman tables: code counts per length 1..16, then the symbols in code order. */
export interface HuffmanSpec {
  counts: number[];
  symbols: number[];
}
export const DC_LUMINANCE: HuffmanSpec = { counts: [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0], symbols: span(0, 11) };
export const DC_CHROMINANCE: HuffmanSpec = { counts: [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0], symbols: span(0, 11) };
export const AC_LUMINANCE: HuffmanSpec = {
  counts: [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d],
  symbols: [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42,
    0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, ...span(0x16, 0x1a), ...span(0x25, 0x2a), ...span(0x34, 0x3a),
    ...span(0x43, 0x4a), ...span(0x53, 0x5a), ...span(0x63, 0x6a), ...span(0x73, 0x7a), ...span(0x83, 0x8a), ...span(0x92, 0x9a), ...span(0xa2, 0xaa),
    ...span(0xb2, 0xba), ...span(0xc2, 0xca), ...span(0xd2, 0xda), ...span(0xe1, 0xea), ...span(0xf1, 0xfa),
  ],
};
export const AC_CHROMINANCE: HuffmanSpec = {
  counts: [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77],
  symbols: [
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1,
    0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, ...span(0x17, 0x1a), ...span(0x26, 0x2a),
    ...span(0x35, 0x3a), ...span(0x43, 0x4a), ...span(0x53, 0x5a), ...span(0x63, 0x6a), ...span(0x73, 0x7a), ...span(0x82, 0x8a), ...span(0x92, 0x9a),
    ...span(0xa2, 0xaa), ...span(0xb2, 0xba), ...span(0xc2, 0xca), ...span(0xd2, 0xda), ...span(0xe2, 0xea), ...span(0xf2, 0xfa),
  ],
};
