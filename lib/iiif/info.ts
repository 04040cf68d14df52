/**
 * The IIIF documents the page function writes: a page's Image API 3.0 `info.json`, and a
 * document's Presentation 3.0 manifest (a Canvas per page, painted by the page image with its
 * ImageService3, and the outline as Ranges). Pure functions of the page sizes and the URLs: tested alone.
 */
import type { OutlineEntry } from '../engine/results.js';
import type { SizeLimits } from './image-request.js';

export const IMAGE_CONTEXT = 'http://iiif.io/api/image/3/context.json';
export const PRESENTATION_CONTEXT = 'http://iiif.io/api/presentation/3/context.json';
export const LEVEL2_PROFILE_URI = 'http://iiif.io/api/image/3/level2.json';
/**
 * 512 px tiles: OpenSeadragon's and Mirador's default tile fetches are then a few dozen per
 * screen, and one tile is one band of MuPDF (768 KB of RGB), drawn in one piece.
 */
export const TILE_SIZE = 512;
/** Beyond level 2, what we serve: mirrored rotations, ^ sizes, and the Link headers. */
export const EXTRA_FEATURES = ['mirroring', 'sizeUpscaling', 'canonicalLinkHeader', 'profileLinkHeader'];

export interface FullImage {
  width: number;
  height: number;
}

/** Scale factors 1, 2, 4… until one tile covers the whole image. */
export function scaleFactorsOf(full: FullImage, tile = TILE_SIZE): number[] {
  const factors = [1];
  while (Math.max(full.width, full.height) / factors[factors.length - 1]! > tile) factors.push(factors[factors.length - 1]! * 2);
  return factors;
}

/**
 * The scale factor of info.json's tile grid that `image` is a tile of, if it is one: its region
 * starts on the grid of that factor (x and y multiples of TILE_SIZE x factor), spans one tile
 * (or reaches the image's edge: a partial tile), and its size is the region divided by the
 * factor as the spec computes it (ceil(w / factor) x ceil(h / factor)). Such a tile is a
 * rectangle of whole pixels of that level (levelGeometry): x / factor, y / factor, its size.
 * Rotation, mirroring, quality and format do not matter.
 */
export function levelOf(image: { region: { x: number; y: number; w: number; h: number }; width: number; height: number }, full: FullImage, tile = TILE_SIZE): number | undefined {
  const { x, y, w, h } = image.region;
  for (const factor of scaleFactorsOf(full, tile)) {
    const span = tile * factor;
    if (x % span !== 0 || y % span !== 0) continue;
    if (w !== Math.min(span, full.width - x) || h !== Math.min(span, full.height - y)) continue;
    if (image.width === Math.ceil(w / factor) && image.height === Math.ceil(h / factor)) return factor;
  }
  return undefined;
}

export function imageInfo(id: string, full: FullImage, limits: SizeLimits): Record<string, unknown> {
  const scaleFactors = scaleFactorsOf(full);
  // The sizes a viewer may ask for whole (thumbnails, the first zoom levels): every level but the full one.
  const sizes = scaleFactors
    .slice(1)
    .reverse()
    .map((f) => ({ width: Math.ceil(full.width / f), height: Math.ceil(full.height / f) }));
  return {
    '@context': IMAGE_CONTEXT,
    id,
    type: 'ImageService3',
    protocol: 'http://iiif.io/api/image',
    profile: 'level2',
    width: full.width,
    height: full.height,
    maxWidth: limits.maxWidth,
    maxHeight: limits.maxHeight,
    maxArea: limits.maxArea,
    sizes,
    tiles: [{ width: TILE_SIZE, height: TILE_SIZE, scaleFactors }],
    extraFormats: ['webp'],
    extraQualities: ['color', 'gray', 'bitonal'],
    extraFeatures: EXTRA_FEATURES,
  };
}

export interface ManifestInput {
  /** The manifest's own URL. */
  id: string;
  label: string;
  /** One per page: its image service's id (no trailing slash) and its full image size. */
  pages: { service: string; width: number; height: number; text?: string }[];
  /** The PDF itself. */
  rendering: string;
  /** The document's outline: `structures`, a Range per entry. */
  outline?: readonly OutlineEntry[];
}

const THUMBNAIL_WIDTH = 256;

export function presentationManifest(input: ManifestInput): Record<string, unknown> {
  const structures = input.outline ? rangesOf(input.outline, input.id, input.pages.length) : [];
  const canvases = input.pages.map((page, index) => {
    const canvas = canvasIdOf(input.id, index + 1);
    const service = [{ id: page.service, type: 'ImageService3', profile: 'level2' }];
    return {
      id: canvas,
      type: 'Canvas',
      label: { none: [String(index + 1)] },
      width: page.width,
      height: page.height,
      items: [
        {
          id: `${canvas}/page`,
          type: 'AnnotationPage',
          items: [
            {
              id: `${canvas}/page/image`,
              type: 'Annotation',
              motivation: 'painting',
              target: canvas,
              body: { id: `${page.service}/full/max/0/default.jpg`, type: 'Image', format: 'image/jpeg', width: page.width, height: page.height, service },
            },
          ],
        },
      ],
      ...(page.text ? { seeAlso: [{ id: page.text, type: 'Dataset', format: 'application/json', label: { en: ['page text (MuPDF structured text)'] } }] } : {}),
    };
  });
  const first = input.pages[0];
  return {
    '@context': PRESENTATION_CONTEXT,
    id: input.id,
    type: 'Manifest',
    label: { none: [input.label] },
    ...(first
      ? {
          thumbnail: [
            {
              id: `${first.service}/full/${Math.min(THUMBNAIL_WIDTH, first.width)},/0/default.jpg`,
              type: 'Image',
              format: 'image/jpeg',
              service: [{ id: first.service, type: 'ImageService3', profile: 'level2' }],
            },
          ],
        }
      : {}),
    rendering: [{ id: input.rendering, type: 'Text', label: { en: ['PDF'] }, format: 'application/pdf' }],
    items: canvases,
    ...(structures.length > 0 ? { structures } : {}),
  };
}

interface Range {
  id: string;
  type: 'Range';
  label: { none: string[] };
  items: ({ id: string; type: 'Canvas' } | Range)[];
}

/**
 * The outline as Presentation 3.0 Ranges: a top Range per top entry, nested Ranges for its
 * children; a Range's items are the Canvas of its entry's page, then its children's Ranges. An
 * entry without a page (an external link, a broken destination) is skipped, unless it has
 * children with pages: it is then a Range of theirs alone, so a part heading that links nowhere
 * keeps its chapters under it.
 */
export function rangesOf(outline: readonly OutlineEntry[], manifestId: string, pageCount: number): Range[] {
  const walk = (entries: readonly OutlineEntry[], path: string): Range[] =>
    entries.flatMap((entry, index) => {
      const id = `${path}${path.endsWith('/') ? '' : '-'}${index + 1}`;
      const children = walk(entry.children ?? [], id);
      const page = entry.page !== undefined && entry.page >= 1 && entry.page <= pageCount ? entry.page : undefined;
      if (page === undefined && children.length === 0) return [];
      const items: Range['items'] = [...(page !== undefined ? [{ id: canvasIdOf(manifestId, page), type: 'Canvas' as const }] : []), ...children];
      return [{ id, type: 'Range' as const, label: { none: [entry.title || (page !== undefined ? `p. ${page}` : '…')] }, items }];
    });
  return walk(outline, `${manifestId}/range/`);
}

function canvasIdOf(manifestId: string, page: number): string {
  return `${manifestId}/canvas/${page}`;
}
