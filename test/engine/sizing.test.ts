/**
 * Fit-to-box sizing (lib/engine/options.ts pageGeometry, boxDpi): the one rule that turns a page
 * box and the options into a pixel size and an effective DPI, for eager and on-demand renders.
 * MuPDF's own pixmaps are checked against it in test/object-options.test.ts (the stored images).
 */
import { describe, expect, it } from 'vitest';
import { boxDpi, DEFAULT_OUTPUT_OPTIONS, JPEG_MAX_SIDE, MAX_DPI, pageGeometry, type OutputOptions, type PageBox } from '../../lib/engine/options.js';
import { JPEG_MAX_PIXELS } from '../../lib/encode/formats.js';

const letter: PageBox = [0, 0, 612, 792];
const a4Landscape: PageBox = [0, 0, 841.8897705078125, 595.2755737304688];
const options = (fields: Partial<OutputOptions>): OutputOptions => ({ ...DEFAULT_OUTPUT_OPTIONS, dpi: MAX_DPI, ...fields });

describe('fit-to-box sizing', () => {
  it('a width gives exactly that many pixels across, the height in proportion, and the DPI that does it', () => {
    expect(pageGeometry(letter, options({ width: 800 }))).toEqual({ geometry: { dpi: 94.117, width: 800, height: 1036 } });
    expect(pageGeometry(a4Landscape, options({ width: 800 })).geometry).toMatchObject({ width: 800, height: 566 });
    // Every width from 1 px to a poster's, on odd page sizes too: exactly the width asked.
    for (const box of [letter, a4Landscape, [0, 0, 388.3793640136719, 300.6838684082031] as PageBox, [0, 0, 14400, 3] as PageBox]) {
      for (const width of [1, 7, 320, 799, 800, 1600, 4093]) {
        const { geometry } = pageGeometry(box, options({ width, maxPagePixels: 2_000_000_000 }));
        expect(geometry?.width, `${box} ${width}`).toBe(width);
      }
    }
  });

  it('a box fits the page inside it, aspect kept: one side meets the box, the other is inside', () => {
    // Portrait in a landscape box: the height binds; landscape in it: the width does.
    expect(pageGeometry(letter, options({ width: 800, height: 600 })).geometry).toMatchObject({ width: 464, height: 600 });
    expect(pageGeometry(a4Landscape, options({ width: 800, height: 600 })).geometry).toMatchObject({ width: 800, height: 566 });
    expect(pageGeometry(letter, options({ height: 600 })).geometry).toMatchObject({ width: 464, height: 600 });
  });

  it('a page whose box does not start at the origin still fits inside the box', () => {
    const offset: PageBox = [10.3, 20.7, 622.3, 812.7];
    const { geometry } = pageGeometry(offset, options({ width: 800 }));
    expect(geometry!.width).toBeLessThanOrEqual(800);
    expect(geometry!.width).toBeGreaterThanOrEqual(799);
  });

  it('never upscales past the DPI it is given as the most (MAX_DPI by default)', () => {
    const stamp: PageBox = [0, 0, 36, 36];
    expect(pageGeometry(stamp, options({ width: 2000 })).geometry).toEqual({ dpi: 1200, width: 600, height: 600 });
    expect(pageGeometry(stamp, options({ width: 2000, dpi: 300 })).geometry).toEqual({ dpi: 300, width: 150, height: 150 });
    expect(boxDpi(stamp, { width: 2000 }, MAX_DPI)).toBe(MAX_DPI);
  });

  it('the pixel budget and the format side limit still hold, and only the side limit warns', () => {
    const strip: PageBox = [0, 0, 500, 50_000];
    const budget = pageGeometry(strip, options({ width: 4000, maxPagePixels: 10_000_000 })).geometry!;
    expect(budget.width * budget.height).toBeLessThanOrEqual(10_000_000);
    expect(budget.width).toBeLessThan(4000);
    expect(pageGeometry(strip, options({ width: 4000, maxPagePixels: 10_000_000 })).warning).toBeUndefined();
    const jpeg = pageGeometry(strip, options({ width: 4000, format: 'jpeg', maxPagePixels: 2_000_000_000 }));
    expect(jpeg.geometry!.height).toBeLessThanOrEqual(JPEG_MAX_SIDE);
    expect(jpeg.geometry!.width * jpeg.geometry!.height).toBeLessThanOrEqual(JPEG_MAX_PIXELS);
    expect(jpeg.warning).toBe(`JPEG rendered at ${jpeg.geometry!.dpi} dpi: a JPEG page is at most 65535 pixels a side and 40000000 pixels (the encoder holds the whole page) (PNG has no such limit)`);
  });

  it('without a box, the DPI decides as before', () => {
    expect(pageGeometry(letter, { ...DEFAULT_OUTPUT_OPTIONS, dpi: 150 })).toEqual({ geometry: { dpi: 150, width: 1275, height: 1650 } });
  });
});
