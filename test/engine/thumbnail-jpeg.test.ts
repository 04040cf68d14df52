/**
 * The thumbnail's baseline JPEG encoder (lib/engine/thumbnail-jpeg.ts): sizes that are
 * not multiples of 8, color, and quality, decoded by MuPDF (an independent decoder).
 */
import * as mupdf from 'mupdf';
import { describe, expect, it } from 'vitest';
import { encodeBaselineJpeg } from '../../lib/engine/thumbnail-jpeg.js';
import { jpegSize } from './helpers.js';

/** Gradients, a hard-edged colored square and a one-pixel grid: smooth areas and edges. */
function testImage(width: number, height: number): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const at = (y * width + x) * 3;
      const inSquare = x > width / 4 && x < width / 2 && y > height / 4 && y < height / 2;
      const grid = x % 16 === 0 || y % 16 === 0;
      rgb[at] = grid ? 0 : inSquare ? 220 : Math.round((255 * x) / width);
      rgb[at + 1] = grid ? 0 : inSquare ? 30 : Math.round((255 * y) / height);
      rgb[at + 2] = grid ? 0 : inSquare ? 40 : 128;
    }
  }
  return rgb;
}

function decode(jpeg: Uint8Array): { width: number; height: number; rgb: Uint8Array } {
  const image = new mupdf.Image(jpeg);
  const pixmap = image.toPixmap();
  try {
    return { width: pixmap.getWidth(), height: pixmap.getHeight(), rgb: new Uint8Array(pixmap.getPixels()) };
  } finally {
    pixmap.destroy();
    image.destroy();
  }
}

/** The mean error of MuPDF's own JPEG encoder (Pixmap.asJPEG) on the same pixels. */
function mupdfError(rgb: Uint8Array, width: number, height: number, quality: number): number {
  const pixmap = new mupdf.Pixmap(mupdf.ColorSpace.DeviceRGB, [0, 0, width, height], false);
  try {
    pixmap.getPixels().set(rgb);
    return meanAbsDiff(decode(pixmap.asJPEG(quality, false)).rgb, rgb);
  } finally {
    pixmap.destroy();
  }
}

const meanAbsDiff = (a: Uint8Array, b: Uint8Array): number => a.reduce((sum, v, i) => sum + Math.abs(v - b[i]!), 0) / a.length;

describe('baseline JPEG encoder', () => {
  it('encodes any size as a baseline JPEG that decodes to the same picture; more quality, less error', () => {
    for (const [width, height] of [[256, 331], [37, 23], [1, 1], [8, 8], [300, 9]] as const) {
      const rgb = testImage(width, height);
      const errors = [30, 75, 95].map((quality) => {
        const jpeg = encodeBaselineJpeg(rgb, width, height, quality);
        expect(jpegSize(jpeg)).toEqual({ width, height, components: 3 });
        // SOF0 (baseline), not SOF2 (progressive) as MuPDF writes.
        expect(Buffer.from(jpeg).includes(Buffer.from([0xff, 0xc0]))).toBe(true);
        const decoded = decode(jpeg);
        expect([decoded.width, decoded.height]).toEqual([width, height]);
        return meanAbsDiff(decoded.rgb, rgb);
      });
      // No worse than MuPDF's own (progressive, 4:2:0) encoder at the same quality. Measured on
      // the 256x331 image at 75: ours 4.06, MuPDF's 4.04; 37x23: 6.56 and 6.62; 8x8: 10.47 and 10.37.
      expect(errors[1], `${width}x${height}`).toBeLessThanOrEqual(mupdfError(rgb, width, height, 75) * 1.05);
      expect(errors[0]!, `${width}x${height}`).toBeGreaterThanOrEqual(errors[1]!);
      expect(errors[1]!, `${width}x${height}`).toBeGreaterThanOrEqual(errors[2]!);
    }
  });

  it('refuses sizes JPEG cannot hold and pixels fewer than the size says', () => {
    expect(() => encodeBaselineJpeg(new Uint8Array(3), 0, 1, 75)).toThrow(RangeError);
    expect(() => encodeBaselineJpeg(new Uint8Array(3 * 70000), 70000, 1, 75)).toThrow(RangeError);
    expect(() => encodeBaselineJpeg(new Uint8Array(5), 2, 1, 75)).toThrow(/fewer/);
  });
});
