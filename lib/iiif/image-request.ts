/**
 * IIIF Image API 3.0 image requests (https://iiif.io/api/image/3.0/): the four path segments
 * `{region}/{size}/{rotation}/{quality}.{format}` parsed, checked, and resolved against a page's
 * full image into the pixels to draw. Pure: no I/O, no MuPDF, so the rules are tested alone
 * (test/iiif-image-request.test.ts). Every bad parameter is a 400 that names it; a well-formed
 * request for a feature we do not offer (arbitrary rotation, a IIIF format we do not encode)
 * is a 501, as the spec allows.
 */
import { HttpError } from '../on-demand/errors.js';

export type RegionSpec =
  | { kind: 'full' }
  | { kind: 'square' }
  | { kind: 'pixels'; x: number; y: number; w: number; h: number }
  | { kind: 'percent'; x: number; y: number; w: number; h: number };

export type SizeSpec = { upscale: boolean } & (
  | { kind: 'max' }
  | { kind: 'width'; w: number }
  | { kind: 'height'; h: number }
  | { kind: 'percent'; n: number }
  | { kind: 'exact'; w: number; h: number }
  | { kind: 'fit'; w: number; h: number }
);

export type Quality = 'default' | 'color' | 'gray' | 'bitonal';
export type IiifFormat = 'jpg' | 'png' | 'webp';
/** Clockwise, after the mirroring (the spec's order). */
export type Degrees = 0 | 90 | 180 | 270;

export interface ImageRequest {
  region: RegionSpec;
  size: SizeSpec;
  rotation: { degrees: Degrees; mirror: boolean };
  quality: Quality;
  format: IiifFormat;
}

/** The server's limits, as info.json declares them. */
export interface SizeLimits {
  maxWidth: number;
  maxHeight: number;
  maxArea: number;
}

/** A rectangle of the full image, in its pixels. */
export interface PixelRect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** What to draw: a region of the full image, scaled to width x height, then mirrored and rotated. */
export interface ResolvedImage {
  region: PixelRect;
  /** The scaled region's size, before rotation. */
  width: number;
  height: number;
  rotation: { degrees: Degrees; mirror: boolean };
  quality: Quality;
  format: IiifFormat;
  /** The canonical `{region}/{size}/{rotation}/{quality}.{format}` (the Link header, the cache key). */
  canonical: string;
}

export const QUALITIES: readonly Quality[] = ['default', 'color', 'gray', 'bitonal'];
export const FORMATS: readonly IiifFormat[] = ['jpg', 'png', 'webp'];
/** Formats the spec names that we do not encode: well-formed, not implemented (501). */
const KNOWN_UNSUPPORTED_FORMATS = ['tif', 'gif', 'jp2', 'pdf'];

const bad = (message: string): HttpError => new HttpError(400, 'INVALID_REQUEST', message);
const notImplemented = (message: string): HttpError => new HttpError(501, 'NOT_IMPLEMENTED', message);

const INT = '(\\d{1,9})';
const DECIMAL = '(\\d{1,9}(?:\\.\\d{1,9})?|\\.\\d{1,9})';
const PIXELS_RE = new RegExp(`^${INT},${INT},${INT},${INT}$`);
const PERCENT_RE = new RegExp(`^pct:${DECIMAL},${DECIMAL},${DECIMAL},${DECIMAL}$`);

export function parseRegion(text: string): RegionSpec {
  if (text === 'full') return { kind: 'full' };
  if (text === 'square') return { kind: 'square' };
  const pixels = PIXELS_RE.exec(text);
  if (pixels) {
    const [x, y, w, h] = pixels.slice(1).map(Number) as [number, number, number, number];
    if (w === 0 || h === 0) throw bad(`region ${JSON.stringify(text)} is empty: its width and height must be above 0`);
    return { kind: 'pixels', x, y, w, h };
  }
  const percent = PERCENT_RE.exec(text);
  if (percent) {
    const [x, y, w, h] = percent.slice(1).map(Number) as [number, number, number, number];
    if (w === 0 || h === 0) throw bad(`region ${JSON.stringify(text)} is empty: its width and height must be above 0`);
    if (x >= 100 || y >= 100) throw bad(`region ${JSON.stringify(text)} starts outside the image (x and y must be below 100)`);
    return { kind: 'percent', x, y, w, h };
  }
  throw bad(`region ${JSON.stringify(text)} is invalid: expected full, square, x,y,w,h or pct:x,y,w,h`);
}

export function parseSize(text: string): SizeSpec {
  const upscale = text.startsWith('^');
  const body = upscale ? text.slice(1) : text;
  const invalid = (): HttpError => bad(`size ${JSON.stringify(text)} is invalid: expected max, w,, ,h, pct:n, w,h or !w,h, each optionally after ^`);
  if (body === 'max') return { upscale, kind: 'max' };
  let m: RegExpExecArray | null;
  if ((m = /^pct:(\d{1,9}(?:\.\d{1,9})?|\.\d{1,9})$/.exec(body))) {
    const n = Number(m[1]);
    if (n <= 0) throw bad(`size ${JSON.stringify(text)} is invalid: the percentage must be above 0`);
    if (n > 100 && !upscale) throw bad(`size ${JSON.stringify(text)} would upscale: IIIF 3.0 needs ^pct:${m[1]} for that`);
    return { upscale, kind: 'percent', n };
  }
  const positive = (s: string): number => {
    const v = Number(s);
    if (v === 0) throw bad(`size ${JSON.stringify(text)} is invalid: a width or height must be above 0`);
    return v;
  };
  if ((m = /^(\d{1,9}),$/.exec(body))) return { upscale, kind: 'width', w: positive(m[1]!) };
  if ((m = /^,(\d{1,9})$/.exec(body))) return { upscale, kind: 'height', h: positive(m[1]!) };
  if ((m = /^(!)?(\d{1,9}),(\d{1,9})$/.exec(body))) return { upscale, kind: m[1] ? 'fit' : 'exact', w: positive(m[2]!), h: positive(m[3]!) };
  throw invalid();
}

export function parseRotation(text: string): { degrees: Degrees; mirror: boolean } {
  const m = /^(!)?(\d{1,3}(?:\.\d{1,9})?)$/.exec(text);
  if (!m) throw bad(`rotation ${JSON.stringify(text)} is invalid: expected 0, 90, 180 or 270, optionally after ! (mirrored)`);
  const value = Number(m[2]);
  if (value > 360) throw bad(`rotation ${JSON.stringify(text)} is invalid: degrees are 0 to 360`);
  const degrees = value % 360;
  if (degrees !== 0 && degrees !== 90 && degrees !== 180 && degrees !== 270) {
    throw notImplemented(`rotation ${JSON.stringify(text)} is not supported: only multiples of 90 degrees (rotationBy90s), optionally mirrored`);
  }
  return { degrees, mirror: m[1] === '!' };
}

export function parseQualityFormat(text: string): { quality: Quality; format: IiifFormat } {
  const dot = text.lastIndexOf('.');
  if (dot < 0) throw bad(`${JSON.stringify(text)} is invalid: expected {quality}.{format}, such as default.jpg`);
  const quality = text.slice(0, dot);
  const format = text.slice(dot + 1);
  if (!(QUALITIES as readonly string[]).includes(quality)) throw bad(`quality ${JSON.stringify(quality)} is invalid: expected ${QUALITIES.join(', ')}`);
  if (!(FORMATS as readonly string[]).includes(format)) {
    if (KNOWN_UNSUPPORTED_FORMATS.includes(format)) throw notImplemented(`format ${JSON.stringify(format)} is not offered: use ${FORMATS.join(', ')}`);
    throw bad(`format ${JSON.stringify(format)} is invalid: expected ${FORMATS.join(', ')}`);
  }
  return { quality: quality as Quality, format: format as IiifFormat };
}

/** The four segments of an image request, each checked. */
export function parseImageRequest(region: string, size: string, rotation: string, qualityFormat: string): ImageRequest {
  return { region: parseRegion(region), size: parseSize(size), rotation: parseRotation(rotation), ...parseQualityFormat(qualityFormat) };
}

/**
 * The region in the full image's pixels, cropped to it. `pct:` edges round to the nearest pixel
 * (x0 = round(x% of width), x1 = round((x + w)% of width)), so adjacent percent regions tile
 * without a gap or an overlap. `square` is the largest square, centred.
 */
export function resolveRegion(spec: RegionSpec, full: { width: number; height: number }): PixelRect {
  const { width: W, height: H } = full;
  switch (spec.kind) {
    case 'full':
      return { x: 0, y: 0, w: W, h: H };
    case 'square': {
      const s = Math.min(W, H);
      return { x: Math.floor((W - s) / 2), y: Math.floor((H - s) / 2), w: s, h: s };
    }
    case 'pixels': {
      if (spec.x >= W || spec.y >= H) throw bad(`region ${spec.x},${spec.y},${spec.w},${spec.h} is outside the image (${W}x${H})`);
      return { x: spec.x, y: spec.y, w: Math.min(spec.w, W - spec.x), h: Math.min(spec.h, H - spec.y) };
    }
    case 'percent': {
      const x0 = Math.round((spec.x * W) / 100);
      const y0 = Math.round((spec.y * H) / 100);
      const x1 = Math.min(W, Math.round(((spec.x + spec.w) * W) / 100));
      const y1 = Math.min(H, Math.round(((spec.y + spec.h) * H) / 100));
      if (x1 <= x0 || y1 <= y0) throw bad(`region pct:${spec.x},${spec.y},${spec.w},${spec.h} is less than a pixel of the image (${W}x${H})`);
      return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
    }
  }
}

/**
 * The output size (before rotation) of a region `r`, as the spec's size forms say: `w,` and `,h`
 * keep the aspect with the other side rounded to the nearest pixel; `pct:n` rounds each side;
 * `!w,h` is the largest size inside the box with the aspect kept (the side that binds is exact,
 * the other rounded, so it never leaves the box; a box larger than the region both ways is an
 * upscale, a 400 without `^`, as the IIIF validator's size_noup expects); `^!w,h` fits the
 * limits too, as `^max` does; `max` is the region, scaled down (sides floored) to the limits.
 * Without `^` nothing may exceed the region (400); with it, nothing may exceed the limits (400).
 */
export function resolveSize(spec: SizeSpec, r: { w: number; h: number }, limits: SizeLimits): { width: number; height: number } {
  const text = sizeText(spec);
  const atLeastOne = (v: number): number => Math.max(1, v);
  let width: number;
  let height: number;
  switch (spec.kind) {
    case 'max': {
      const cap = Math.min(limits.maxWidth / r.w, limits.maxHeight / r.h, Math.sqrt(limits.maxArea / (r.w * r.h)));
      const scale = spec.upscale ? cap : Math.min(1, cap);
      if (scale === 1) return { width: r.w, height: r.h };
      width = atLeastOne(Math.floor(r.w * scale + 1e-9));
      height = atLeastOne(Math.floor(r.h * scale + 1e-9));
      return { width, height };
    }
    case 'width':
      width = spec.w;
      height = atLeastOne(Math.round((spec.w * r.h) / r.w));
      break;
    case 'height':
      height = spec.h;
      width = atLeastOne(Math.round((spec.h * r.w) / r.h));
      break;
    case 'percent':
      width = atLeastOne(Math.round((r.w * spec.n) / 100));
      height = atLeastOne(Math.round((r.h * spec.n) / 100));
      break;
    case 'exact':
      width = spec.w;
      height = spec.h;
      break;
    case 'fit': {
      const byWidth = spec.w / r.w;
      const byHeight = spec.h / r.h;
      // ^!w,h: "as large as possible but not larger than w, h, or server-imposed limits" (3.0
      // §4.2): where the limits are smaller than the box, they are the box, as for ^max (the
      // validator's size_up asked ^!2000,3000 of a 1000 px full image and got a 400).
      const cap = Math.min(limits.maxWidth / r.w, limits.maxHeight / r.h, Math.sqrt(limits.maxArea / (r.w * r.h)));
      if (spec.upscale && cap < Math.min(byWidth, byHeight)) return resolveSize({ kind: 'max', upscale: true }, r, limits);
      if (byWidth <= byHeight) {
        width = spec.w;
        height = atLeastOne(Math.min(spec.h, Math.round((spec.w * r.h) / r.w)));
      } else {
        height = spec.h;
        width = atLeastOne(Math.min(spec.w, Math.round((spec.h * r.w) / r.h)));
      }
      break;
    }
  }
  if (!spec.upscale && (width > r.w || height > r.h)) {
    throw bad(`size ${JSON.stringify(text)} would upscale the ${r.w}x${r.h} region to ${width}x${height}: IIIF 3.0 needs ^${text} for that`);
  }
  return checkLimits({ width, height });

  function checkLimits(size: { width: number; height: number }): { width: number; height: number } {
    if (size.width > limits.maxWidth || size.height > limits.maxHeight || size.width * size.height > limits.maxArea) {
      throw bad(`size ${JSON.stringify(text)} gives ${size.width}x${size.height}, beyond the limits (maxWidth ${limits.maxWidth}, maxHeight ${limits.maxHeight}, maxArea ${limits.maxArea})`);
    }
    return size;
  }
}

function sizeText(spec: SizeSpec): string {
  const up = spec.upscale ? '^' : '';
  switch (spec.kind) {
    case 'max':
      return `${up}max`;
    case 'width':
      return `${up}${spec.w},`;
    case 'height':
      return `${up},${spec.h}`;
    case 'percent':
      return `${up}pct:${spec.n}`;
    case 'exact':
      return `${up}${spec.w},${spec.h}`;
    case 'fit':
      return `${up}!${spec.w},${spec.h}`;
  }
}

/**
 * A request resolved against a full image of `full` pixels: the region, the output size and the
 * canonical form (3.0 §4.7: region `full` or x,y,w,h; size `max` when the region is returned
 * unscaled, else w,h, with ^ when larger than the region; rotation with ! when mirrored).
 */
export function resolveImage(request: ImageRequest, full: { width: number; height: number }, limits: SizeLimits): ResolvedImage {
  const region = resolveRegion(request.region, full);
  const { width, height } = resolveSize(request.size, region, limits);
  const isFull = region.x === 0 && region.y === 0 && region.w === full.width && region.h === full.height;
  const regionText = isFull ? 'full' : `${region.x},${region.y},${region.w},${region.h}`;
  const sizeCanonical = width === region.w && height === region.h ? 'max' : `${width > region.w || height > region.h ? '^' : ''}${width},${height}`;
  const rotationText = `${request.rotation.mirror ? '!' : ''}${request.rotation.degrees}`;
  return {
    region,
    width,
    height,
    rotation: request.rotation,
    quality: request.quality,
    format: request.format,
    canonical: `${regionText}/${sizeCanonical}/${rotationText}/${request.quality}.${request.format}`,
  };
}

/** The image's size after rotation: 90 and 270 swap the sides. */
export function rotatedSize(image: Pick<ResolvedImage, 'width' | 'height' | 'rotation'>): { width: number; height: number } {
  return image.rotation.degrees % 180 === 0 ? { width: image.width, height: image.height } : { width: image.height, height: image.width };
}
