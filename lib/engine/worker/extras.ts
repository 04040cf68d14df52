/**
 * What a page gives besides its image, from the same page load, in the worker after the image
 * is drawn: a thumbnail (drawn by MuPDF at the scale that gives the asked width, never a
 * down-sampling of the full image; the main thread encodes it as JPEG) and the page's
 * structured text as JSON, in the page image's pixel coordinates. Either failing leaves the
 * page itself rendered: the field is then absent and the reason goes to the log.
 */
import * as mupdf from 'mupdf';
import { pixelRect, type PageBox, type PageGeometry } from '../options.js';
import type { ThumbnailPixels } from '../protocol.js';
import type { PageText } from '../results.js';
import { errorMessage } from '../errors.js';
import { isFatal } from './failures.js';
import { walkStructuredText } from './stext-walk.js';

/**
 * Largest thumbnail pixmap, in pixels (RGB: 3 bytes each). A thumbnail is as wide as asked and
 * as tall as the page's proportions say, so only an extreme strip (a 14400 x 3 pt page is 4800
 * times taller than wide) could be large: past this it is not drawn (a warning), so a
 * thumbnail never needs more than 24 MiB whatever the page.
 */
export const THUMBNAIL_MAX_PIXELS = 8_000_000;
/** The largest height a JPEG can say. */
const JPEG_MAX_SIDE = 65_535;

export interface ExtrasRequest {
  /** 0: no thumbnail. */
  thumbnailWidth: number;
  pageText: boolean;
}

export interface PageExtras {
  thumbnail?: ThumbnailPixels;
  text?: PageText;
}

/** A thumbnail's pixel size: `width` wide, the height in the page's proportion (rounded, at least 1). */
export function thumbnailSize(box: PageBox, width: number): { width: number; height: number } {
  const pageWidth = box[2] - box[0];
  const pageHeight = box[3] - box[1];
  return { width, height: Math.max(1, Math.round((width * pageHeight) / pageWidth)) };
}

/**
 * Draws the page (its display list) into a pixmap of exactly the thumbnail's size (the scale
 * that maps the page box onto it, drawn directly: a giant page's thumbnail costs what a small
 * one does), and copies its pixels out of WebAssembly memory.
 */
export function drawThumbnail(list: mupdf.DisplayList, box: PageBox, width: number): ThumbnailPixels {
  const size = thumbnailSize(box, width);
  if (size.width * size.height > THUMBNAIL_MAX_PIXELS || size.height > JPEG_MAX_SIDE) {
    throw new Error(`a ${size.width}x${size.height} px thumbnail exceeds ${THUMBNAIL_MAX_PIXELS} pixels or ${JPEG_MAX_SIDE} rows (the page is a very narrow strip)`);
  }
  const sx = size.width / (box[2] - box[0]);
  const sy = size.height / (box[3] - box[1]);
  // Page box onto [0, 0, width, height]: the rounded height scales y by a hair more or less than x.
  const ctm: mupdf.Matrix = [sx, 0, 0, sy, -box[0] * sx, -box[1] * sy];
  let pixmap: mupdf.Pixmap | undefined;
  let device: mupdf.DrawDevice | undefined;
  try {
    pixmap = new mupdf.Pixmap(mupdf.ColorSpace.DeviceRGB, [0, 0, size.width, size.height], false);
    pixmap.clear(255);
    device = new mupdf.DrawDevice(mupdf.Matrix.identity, pixmap);
    list.run(device, ctm);
    device.close();
    // Copied into a buffer the main thread takes over, and encodes (encode/thumbnail-jpeg.ts says why).
    return { rgb: new Uint8Array(pixmap.getPixels()), ...size };
  } finally {
    device?.destroy();
    pixmap?.destroy();
  }
}

/** A box in page points, [x0, y0, x1, y1]. */
type Box = [number, number, number, number];

interface TextWord {
  text: string;
  bbox: Box;
}
interface TextLine {
  bbox: Box;
  words: TextWord[];
}
interface TextBlock {
  bbox: Box;
  lines: TextLine[];
}

/** The JSON document of text-NNNN.json (DESIGN §3): the page image's size and DPI, the plain text, and the boxes. */
export interface PageTextDocument {
  width: number;
  height: number;
  dpi: number;
  /** Lines joined by \n, blocks by \n\n. */
  text: string;
  blocks: TextBlock[];
}

const WHITESPACE = /\s/u;

/** Rounds to one decimal; -0 becomes 0. */
const round1 = (n: number): number => Math.round(n * 10) / 10 + 0;

/**
 * The page's structured text (MuPDF's default options, as asText() extracts it) as the
 * JSON document, coordinates mapped from page points to the page image's pixels: scaled by
 * dpi / 72 and moved to the image's top-left (the image's pixel rectangle starts at
 * pixelRect's origin). MuPDF's page space already has the page's /Rotate applied.
 */
export function extractPageText(list: mupdf.DisplayList, box: PageBox, geometry: PageGeometry): { document: PageTextDocument; chars: number } {
  const scale = geometry.dpi / 72;
  const [originX, originY] = pixelRect(box, geometry.dpi);
  const toPixels = (b: Box): Box => [round1(b[0] * scale - originX), round1(b[1] * scale - originY), round1(b[2] * scale - originX), round1(b[3] * scale - originY)];
  const blocks: TextBlock[] = [];
  const blockTexts: string[] = [];
  let lineTexts: string[] = [];
  let block: TextBlock | undefined;
  let line: TextLine | undefined;
  let lineText = '';
  let word: { text: string; bbox: Box } | undefined;
  let chars = 0;
  const endWord = (): void => {
    if (word && line) line.words.push({ text: word.text, bbox: toPixels(word.bbox) });
    word = undefined;
  };
  const stext = list.toStructuredText('');
  try {
    walkStructuredText(stext, {
      beginTextBlock: (bbox) => {
        block = { bbox: toPixels(bbox as Box), lines: [] };
        lineTexts = [];
      },
      beginLine: (bbox) => {
        line = { bbox: toPixels(bbox as Box), words: [] };
        lineText = '';
      },
      onChar: (c, quad) => {
        lineText += c;
        if (WHITESPACE.test(c)) {
          endWord();
          return;
        }
        chars++;
        // The union of the character's quad (its four corners) with the word so far.
        if (!word) word = { text: c, bbox: [Infinity, Infinity, -Infinity, -Infinity] };
        else word.text += c;
        const b = word.bbox;
        for (let i = 0; i < 8; i += 2) {
          if (quad[i]! < b[0]) b[0] = quad[i]!;
          if (quad[i]! > b[2]) b[2] = quad[i]!;
          if (quad[i + 1]! < b[1]) b[1] = quad[i + 1]!;
          if (quad[i + 1]! > b[3]) b[3] = quad[i + 1]!;
        }
      },
      endLine: () => {
        endWord();
        if (line && block) block.lines.push(line);
        lineTexts.push(lineText);
        line = undefined;
      },
      endTextBlock: () => {
        if (block) blocks.push(block);
        blockTexts.push(lineTexts.join('\n'));
        block = undefined;
      },
    });
  } finally {
    stext.destroy();
  }
  return { document: { width: geometry.width, height: geometry.height, dpi: geometry.dpi, text: blockTexts.join('\n\n'), blocks }, chars };
}

/** The page text as UTF-8 JSON, with its count of non-whitespace characters. */
export function pageTextJson(list: mupdf.DisplayList, box: PageBox, geometry: PageGeometry): PageText {
  const { document, chars } = extractPageText(list, box, geometry);
  return { json: new TextEncoder().encode(JSON.stringify(document)), chars };
}

/**
 * The extras asked for, after the page's image was drawn at `geometry`, both from one display
 * list of the page: the page's content is interpreted once for the two. Measured on 69 pages
 * (tracemonkey, federal-register, itu-t81 1-40, in-process, after the page was drawn): the
 * 256 px thumbnail drawn from the page took 920 ms, from a list 170-240 ms plus 180 ms for the
 * list; the text 230-280 ms from the page, 70-130 ms from the list. A failure of either is
 * reported through `warn` and leaves that field absent; a WebAssembly trap is rethrown (the
 * worker cannot go on after one).
 */
export function pageExtras(page: mupdf.Page, box: PageBox, geometry: PageGeometry, pageNumber: number, request: ExtrasRequest, warn: (message: string) => void): PageExtras {
  const extras: PageExtras = {};
  if (request.thumbnailWidth <= 0 && !request.pageText) return extras;
  let fatal = false;
  const attempt = (what: string, make: () => void): void => {
    try {
      make();
    } catch (err) {
      fatal = isFatal(err);
      if (fatal) throw err;
      warn(`page ${pageNumber}: no ${what}: ${errorMessage(err)}`);
    }
  };
  let list: mupdf.DisplayList | undefined;
  try {
    // Contents, annotations and widgets, as the page image has them (toPixmap's showExtras).
    attempt(request.thumbnailWidth > 0 && request.pageText ? 'thumbnail and page text' : request.pageText ? 'page text' : 'thumbnail', () => (list = page.toDisplayList(true)));
    if (!list) return extras;
    const from = list;
    if (request.thumbnailWidth > 0) attempt('thumbnail', () => (extras.thumbnail = drawThumbnail(from, box, request.thumbnailWidth)));
    if (request.pageText) attempt('page text', () => (extras.text = pageTextJson(from, box, geometry)));
    return extras;
  } finally {
    // After a trap MuPDF's memory is not to be touched again: the worker is about to end.
    if (!fatal) list?.destroy();
  }
}
