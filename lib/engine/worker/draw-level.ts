/**
 * A level of a page (RenderOptions.level): the page's full image scaled down by a whole factor,
 * drawn whole, band by band as draw-page.ts draws pages (memory O(band) whatever the level's
 * size), as raw packed rows for the IIIF level cache (lib/iiif/levels.ts). Its pixel grid is the
 * full image's, scaled: full-image pixel x*factor is level pixel x from the same origin, so a
 * IIIF tile of scale factor `factor` is a rectangle of whole level pixels, and the level equals
 * the whole page drawn at the full image's DPI / factor (tested in test/engine/level.test.ts).
 */
import * as mupdf from 'mupdf';
import { copyGrayRows, copyRows } from '../../encode/rows.js';
import { levelGeometry, pixelRect, type PageBox, type PageGeometry } from '../options.js';
import { BAND_MARGIN_ROWS } from './draw-page.js';
import { isFatal } from './failures.js';
import type { BeforeDraw, PageOutput } from './page-output.js';

const WHITE = 255;

/** Page space to the level's pixels: the full image's matrix (regionMatrix's origin, pixelRect's) scaled by 1/factor. */
export function levelMatrix(box: PageBox, full: PageGeometry, factor: number): mupdf.Matrix {
  const s = full.dpi / 72 / factor;
  const [fx0, fy0] = pixelRect(box, full.dpi);
  return [s, 0, 0, s, -fx0 / factor, -fy0 / factor];
}

/** Draws the level `factor` of `page` (whose full image is `full`) into `out`. Throws what MuPDF throws. */
export async function drawLevel(page: mupdf.Page, box: PageBox, full: PageGeometry, factor: number, out: PageOutput, drawing: { bandBytes: number; beforeDraw?: BeforeDraw }): Promise<void> {
  const geometry = levelGeometry(full, factor);
  const { width, height } = geometry;
  const ctm = levelMatrix(box, full, factor);
  const rowsPerBand = Math.max(1, Math.floor(drawing.bandBytes / (width * 3)));

  /** Rows top..top+rows of the level, drawn with `above` and `below` rows of margin by `run`, handed to `take` before the pixmap is freed. */
  const drawRows = <T>(top: number, rows: number, above: number, below: number, run: (device: mupdf.Device) => void, take: (pixels: Uint8Array | Uint8ClampedArray) => T): T => {
    let pixmap: mupdf.Pixmap | undefined;
    let device: mupdf.DrawDevice | undefined;
    try {
      drawing.beforeDraw?.(rows >= height ? 'page' : 'band', width * (above + rows + below));
      pixmap = new mupdf.Pixmap(mupdf.ColorSpace.DeviceRGB, [0, top - above, width, top + rows + below], false);
      pixmap.clear(WHITE);
      device = new mupdf.DrawDevice(mupdf.Matrix.identity, pixmap);
      run(device);
      device.close();
      return take(pixmap.getPixels().subarray(above * width * 3, (above + rows) * width * 3));
    } finally {
      device?.destroy();
      pixmap?.destroy();
    }
  };

  if (rowsPerBand >= height) {
    // One band: drawn straight from the page, as gray rows (a third of the file) when every
    // pixel is gray. By toPixmap, as draw-page.ts draws a page of one band, when its pixmap is
    // the level's (a page box from 0,0): a pixmap of our own run through the page differed from
    // it by 2 levels on 3 pixels of tracemonkey-paper-14p.pdf p. 2 at 50 dpi.
    await out.takeCredit();
    const copy = (pixels: Uint8Array | Uint8ClampedArray): { gray: boolean; rows: Uint8Array } => {
      const grayRows = copyGrayRows(pixels, width, height, 'packed');
      return { gray: grayRows !== undefined, rows: grayRows ?? copyRows(pixels, width, height, 3, 'packed') };
    };
    let copied: { gray: boolean; rows: Uint8Array } | undefined;
    drawing.beforeDraw?.('page', width * height);
    const pixmap = page.toPixmap(ctm, mupdf.ColorSpace.DeviceRGB, false, true);
    try {
      if (pixmap.getX() === 0 && pixmap.getY() === 0 && pixmap.getWidth() === width && pixmap.getHeight() === height) copied = copy(pixmap.getPixels());
    } finally {
      pixmap.destroy();
    }
    copied ??= drawRows(0, height, 0, 0, (device) => page.run(device, ctm), copy);
    out.begin(geometry, copied.gray ? 'gray' : 'rgb');
    out.band(height, copied.rows);
    return;
  }
  // In bands of one display list, each with a margin above and below as draw-page.ts's (the
  // color must be known before the first band: RGB).
  out.begin(geometry, 'rgb');
  const list = page.toDisplayList(true);
  let fatal = false;
  try {
    for (let top = 0; top < height; top += rowsPerBand) {
      const rows = Math.min(rowsPerBand, height - top);
      await out.takeCredit();
      const above = Math.min(BAND_MARGIN_ROWS, top);
      const below = Math.min(BAND_MARGIN_ROWS, height - top - rows);
      out.band(rows, drawRows(top, rows, above, below, (device) => list.run(device, ctm), (pixels) => copyRows(pixels, width, rows, 3, 'packed')));
    }
  } catch (err) {
    fatal = isFatal(err);
    throw err;
  } finally {
    // After a trap MuPDF's memory is not to be touched again: the worker is about to end.
    if (!fatal) list.destroy();
  }
}
