/**
 * IIIF Image API 3.0 request parsing and the region/size math (lib/iiif/image-request.ts),
 * without MuPDF: every form of each parameter, its errors (400, 501), and the rounding.
 */
import { describe, expect, it } from 'vitest';
import { HttpError } from '../lib/on-demand/errors.js';
import {
  parseImageRequest,
  parseQualityFormat,
  parseRegion,
  parseRotation,
  parseSize,
  resolveImage,
  resolveRegion,
  resolveSize,
  rotatedSize,
  type SizeLimits,
} from '../lib/iiif/image-request.js';

const failure = (fn: () => unknown): HttpError => {
  try {
    fn();
  } catch (err) {
    if (err instanceof HttpError) return err;
    throw err;
  }
  throw new Error('expected an HttpError');
};
const LIMITS: SizeLimits = { maxWidth: 65535, maxHeight: 65535, maxArea: 40_000_000 };
const size = (text: string, region: { w: number; h: number }, limits = LIMITS) => resolveSize(parseSize(text), region, limits);
const region = (text: string, full = { width: 1000, height: 800 }) => resolveRegion(parseRegion(text), full);

describe('region', () => {
  it('full and square (the largest square, centred)', () => {
    expect(region('full')).toEqual({ x: 0, y: 0, w: 1000, h: 800 });
    expect(region('square')).toEqual({ x: 100, y: 0, w: 800, h: 800 });
    expect(region('square', { width: 300, height: 701 })).toEqual({ x: 0, y: 200, w: 300, h: 300 });
  });

  it('x,y,w,h is cropped to the image; outside it or empty is a 400', () => {
    expect(region('125,15,120,140')).toEqual({ x: 125, y: 15, w: 120, h: 140 });
    expect(region('900,700,500,500')).toEqual({ x: 900, y: 700, w: 100, h: 100 });
    expect(failure(() => region('1000,0,10,10')).status).toBe(400);
    expect(failure(() => region('0,800,10,10')).status).toBe(400);
    expect(failure(() => parseRegion('0,0,0,10')).status).toBe(400);
    expect(failure(() => parseRegion('-1,0,10,10')).status).toBe(400);
    expect(failure(() => parseRegion('1,2,3')).status).toBe(400);
    expect(failure(() => parseRegion('1.5,2,3,4')).status).toBe(400);
  });

  it('pct:x,y,w,h rounds each edge to the nearest pixel (the spec\'s example: pct:41.6,7.5,40,70 of 300x200 is 125,15,120,140)', () => {
    expect(region('pct:41.6,7.5,40,70', { width: 300, height: 200 })).toEqual({ x: 125, y: 15, w: 120, h: 140 });
    expect(region('pct:10,10,80,80')).toEqual({ x: 100, y: 80, w: 800, h: 640 });
    // Neighbouring percent regions share an edge: no gap, no overlap.
    const a = region('pct:0,0,33.3,100', { width: 1001, height: 10 });
    const b = region('pct:33.3,0,33.3,100', { width: 1001, height: 10 });
    expect(a.x + a.w).toBe(b.x);
    expect(region('pct:90,90,50,50')).toEqual({ x: 900, y: 720, w: 100, h: 80 });
    expect(region('pct:.5,0,1,1')).toEqual({ x: 5, y: 0, w: 10, h: 8 });
    expect(failure(() => parseRegion('pct:100,0,10,10')).status).toBe(400);
    expect(failure(() => parseRegion('pct:0,0,0,10')).status).toBe(400);
    expect(failure(() => region('pct:0,0,0.01,0.01')).status).toBe(400);
    expect(failure(() => parseRegion('pct:1,2,3')).status).toBe(400);
  });

  it('anything else is a 400 that names the parameter', () => {
    const err = failure(() => parseRegion('frobni'));
    expect(err.status).toBe(400);
    expect(err.message).toMatch(/region "frobni"/);
  });
});

describe('size', () => {
  const r = { w: 300, h: 200 };

  it('max is the region, scaled down (floored) to the limits; ^max scales to them', () => {
    expect(size('max', r)).toEqual({ width: 300, height: 200 });
    expect(size('max', r, { maxWidth: 150, maxHeight: 1000, maxArea: 1e9 })).toEqual({ width: 150, height: 100 });
    expect(size('max', r, { maxWidth: 1000, maxHeight: 1000, maxArea: 6000 })).toEqual({ width: 94, height: 63 });
    expect(size('^max', r, { maxWidth: 600, maxHeight: 1000, maxArea: 1e9 })).toEqual({ width: 600, height: 400 });
    expect(size('^max', r, { maxWidth: 1000, maxHeight: 1000, maxArea: 60_000 })).toEqual({ width: 300, height: 200 });
  });

  it('w, and ,h keep the aspect, the other side rounded to the nearest pixel', () => {
    expect(size('150,', r)).toEqual({ width: 150, height: 100 });
    expect(size('100,', r)).toEqual({ width: 100, height: 67 });
    expect(size(',100', r)).toEqual({ width: 150, height: 100 });
    expect(size(',133', r)).toEqual({ width: 200, height: 133 });
    expect(size('1,', { w: 1000, h: 10 })).toEqual({ width: 1, height: 1 });
  });

  it('pct:n scales both sides, rounded (the validator: pct:n of 1000x1000 is n*10 a side)', () => {
    expect(size('pct:50', r)).toEqual({ width: 150, height: 100 });
    expect(size('pct:33.3', r)).toEqual({ width: 100, height: 67 });
    for (const n of [45, 57, 75]) expect(size(`pct:${n}`, { w: 1000, h: 1000 })).toEqual({ width: n * 10, height: n * 10 });
    expect(size('pct:0.01', r)).toEqual({ width: 1, height: 1 });
  });

  it('w,h is exact, the aspect not kept', () => {
    expect(size('225,100', r)).toEqual({ width: 225, height: 100 });
  });

  it('!w,h is the largest size inside the box with the aspect kept: the binding side exact, the other rounded', () => {
    expect(size('!225,100', r)).toEqual({ width: 150, height: 100 });
    expect(size('!100,225', r)).toEqual({ width: 100, height: 67 });
    expect(size('!400,500', { w: 1000, h: 1000 })).toEqual({ width: 400, height: 400 });
    // Never larger than the region without ^.
    expect(size('!2000,500', { w: 1000, h: 1000 })).toEqual({ width: 500, height: 500 });
    expect(size('!1000,3000', { w: 1000, h: 1000 })).toEqual({ width: 1000, height: 1000 });
    // Never out of the box, whatever the rounding.
    for (let w = 1; w < 60; w++) {
      const out = size(`!${w},${w + 7}`, { w: 997, h: 331 });
      expect(out.width).toBeLessThanOrEqual(w);
      expect(out.height).toBeLessThanOrEqual(w + 7);
    }
  });

  it('a size larger than the region needs ^ (400 without it), and the ^ forms upscale (the validator\'s sizes)', () => {
    for (const text of ['1500,1500', ',1500', '1500,', '!2000,3000', '!3000,3000']) expect(failure(() => size(text, { w: 1000, h: 1000 })).status).toBe(400);
    expect(failure(() => parseSize('pct:200')).status).toBe(400);
    expect(size('^1500,1500', { w: 1000, h: 1000 })).toEqual({ width: 1500, height: 1500 });
    expect(size('^,1500', { w: 1000, h: 1000 })).toEqual({ width: 1500, height: 1500 });
    expect(size('^1500,', { w: 1000, h: 1000 })).toEqual({ width: 1500, height: 1500 });
    expect(size('^pct:200', { w: 1000, h: 1000 })).toEqual({ width: 2000, height: 2000 });
    expect(size('^!2000,500', { w: 1000, h: 1000 })).toEqual({ width: 500, height: 500 });
    expect(size('^!2000,3000', { w: 1000, h: 1000 })).toEqual({ width: 2000, height: 2000 });
    // ^ on a size that does not upscale is allowed.
    expect(size('^150,', r)).toEqual({ width: 150, height: 100 });
  });

  it('beyond maxWidth, maxHeight or maxArea is a 400', () => {
    const limits = { maxWidth: 2000, maxHeight: 3000, maxArea: 5_000_000 };
    expect(failure(() => size('^2001,', { w: 1000, h: 1000 }, limits)).status).toBe(400);
    expect(failure(() => size('^,3001', { w: 1000, h: 100 }, limits)).status).toBe(400);
    expect(failure(() => size('^2000,2600', { w: 1000, h: 1000 }, limits)).status).toBe(400);
    expect(size('^2000,2500', { w: 1000, h: 1000 }, limits)).toEqual({ width: 2000, height: 2500 });
  });

  it('^!w,h is as large as possible within w, h and the limits (3.0 §4.2): the limits are never a 400 for it', () => {
    // Our limits are the full image (info.json): the validator's size_up asks ^!2000,3000 of 1000x1000.
    const full = { maxWidth: 1000, maxHeight: 1000, maxArea: 1_000_000 };
    expect(size('^!2000,3000', { w: 1000, h: 1000 }, full)).toEqual({ width: 1000, height: 1000 });
    expect(size('^!2000,500', { w: 1000, h: 1000 }, full)).toEqual({ width: 500, height: 500 });
    // A region upscaled to the limits, the aspect kept (sides floored, as ^max).
    expect(size('^!5000,5000', { w: 100, h: 50 }, full)).toEqual({ width: 1000, height: 500 });
    expect(size('^!5000,5000', { w: 100, h: 100 }, { maxWidth: 5000, maxHeight: 5000, maxArea: 1_000_000 })).toEqual({ width: 1000, height: 1000 });
    // The exact forms beyond the limits stay 400s.
    expect(failure(() => size('^1100,1100', { w: 1000, h: 1000 }, full)).status).toBe(400);
    expect(failure(() => size('^pct:200', { w: 1000, h: 1000 }, full)).status).toBe(400);
  });

  it('malformed sizes are 400s; full (a 2.x form) too', () => {
    for (const text of ['full', 'w,h', '0,', ',0', '0,10', 'pct:0', 'pct:', '!10', '!,10', '^', 'abcdef', '10,,', '-1,', 'max,']) {
      expect(failure(() => parseSize(text)).status, text).toBe(400);
    }
  });
});

describe('rotation, quality, format', () => {
  it('multiples of 90, mirrored with !; 360 is 0; other numbers are 501; anything else 400', () => {
    expect(parseRotation('0')).toEqual({ degrees: 0, mirror: false });
    expect(parseRotation('90')).toEqual({ degrees: 90, mirror: false });
    expect(parseRotation('!180')).toEqual({ degrees: 180, mirror: true });
    expect(parseRotation('270.0')).toEqual({ degrees: 270, mirror: false });
    expect(parseRotation('360')).toEqual({ degrees: 0, mirror: false });
    expect(failure(() => parseRotation('22.5')).status).toBe(501);
    expect(failure(() => parseRotation('!45')).status).toBe(501);
    for (const text of ['abcd', '-90', '361', '!!90', '90!', '']) expect(failure(() => parseRotation(text)).status, text).toBe(400);
  });

  it('qualities and formats; a IIIF format we do not encode is 501, a random one 400', () => {
    expect(parseQualityFormat('default.jpg')).toEqual({ quality: 'default', format: 'jpg' });
    expect(parseQualityFormat('gray.png')).toEqual({ quality: 'gray', format: 'png' });
    expect(parseQualityFormat('bitonal.webp')).toEqual({ quality: 'bitonal', format: 'webp' });
    expect(parseQualityFormat('color.jpg')).toEqual({ quality: 'color', format: 'jpg' });
    expect(failure(() => parseQualityFormat('grey.jpg')).status).toBe(400);
    expect(failure(() => parseQualityFormat('abcdef.jpg')).status).toBe(400);
    expect(failure(() => parseQualityFormat('default.xyz')).status).toBe(400);
    expect(failure(() => parseQualityFormat('default')).status).toBe(400);
    expect(failure(() => parseQualityFormat('default.jpeg')).status).toBe(400);
    expect(failure(() => parseQualityFormat('default.tif')).status).toBe(501);
    expect(failure(() => parseQualityFormat('default.gif')).status).toBe(501);
  });
});

describe('the resolved image and its canonical form', () => {
  const full = { width: 1000, height: 800 };
  const resolve = (r: string, s: string, rot: string, qf: string) => resolveImage(parseImageRequest(r, s, rot, qf), full, LIMITS);

  it('full/max is canonical as such; a region is x,y,w,h; a scaled size is w,h; an upscaled one ^w,h', () => {
    expect(resolve('full', 'max', '0', 'default.jpg').canonical).toBe('full/max/0/default.jpg');
    expect(resolve('0,0,1000,800', '1000,', '0', 'default.jpg').canonical).toBe('full/max/0/default.jpg');
    expect(resolve('pct:10,10,80,80', 'pct:50', '!90', 'gray.png').canonical).toBe('100,80,800,640/400,320/!90/gray.png');
    expect(resolve('square', '^1000,', '270', 'color.webp').canonical).toBe('100,0,800,800/^1000,1000/270/color.webp');
  });

  it('90 and 270 swap the output sides', () => {
    const image = resolve('0,0,400,100', 'max', '90', 'default.png');
    expect({ width: image.width, height: image.height }).toEqual({ width: 400, height: 100 });
    expect(rotatedSize(image)).toEqual({ width: 100, height: 400 });
    expect(rotatedSize(resolve('0,0,400,100', 'max', '!180', 'default.png'))).toEqual({ width: 400, height: 100 });
  });
});
