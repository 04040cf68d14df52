/**
 * A page drawn for a streaming encoder (PNG or JPEG, the same way): raw rows, copied out of
 * WebAssembly memory in the encoder's layout (rows.ts). A page up to one band is drawn whole (as
 * MuPDF.js's toPixmap draws it), and if all its pixels have R = G = B it goes out as gray rows
 * (tested in the same pass as the copy); a larger one, or one that ran out of memory drawn
 * whole, is drawn in bands from one display list into band-sized pixmaps, so its memory is
 * O(band) whatever the page size, and goes out as RGB: the color must be known before the
 * first band, and only the whole page can prove it gray.
 */
import * as mupdf from 'mupdf';
import { pixelRect, type PageBox, type PageGeometry } from '../options.js';
import { copyGrayRows, copyRows, type RowLayout } from '../../encode/rows.js';
import { isFatal, isOutOfMemory } from './failures.js';
import type { BeforeDraw, PageOutput } from './page-output.js';

const WHITE = 255;
/**
 * Rows drawn above and below each band and thrown away. MuPDF draws through the band's clip,
 * and where a path or glyph crosses the clip edge its rasterization can differ by a level in
 * the rows near it; with this margin, text, line art and mesh shadings come out as a
 * whole-page pixmap has them (tested). Images MuPDF decodes only in part for the band, and
 * lattice shadings, still differ by a resampling phase.
 */
export const BAND_MARGIN_ROWS = 32;
/** A page that ran out of memory drawn whole is drawn again in at least this many bands. */
export const OUT_OF_MEMORY_BANDS = 16;

/** JPEG codes 8 rows at a time: its bands are cut on that boundary, so no rows wait in the encoder for the next band. */
const JPEG_MCU_ROWS = 8;

export interface PageDrawing {
  /** Largest raw band, in bytes. */
  bandBytes: number;
  /** The rows' layout: 'png' scanlines or 'packed' (JPEG). */
  layout: RowLayout;
  beforeDraw?: BeforeDraw;
}

/** Draws `page` at `geometry` into `out`: begin, then its rows in order. Throws what MuPDF throws. */
export async function drawPage(page: mupdf.Page, box: PageBox, geometry: PageGeometry, out: PageOutput, drawing: PageDrawing): Promise<void> {
  const { layout } = drawing;
  const ctm = mupdf.Matrix.scale(geometry.dpi / 72, geometry.dpi / 72);
  const [x0, y0, x1] = pixelRect(box, geometry.dpi);
  const sendBand = (rows: number, pixmap: mupdf.Pixmap, skipRows: number): void => {
    const stride = geometry.width * 3;
    // Copied out of WebAssembly memory in the encoder's layout, into a buffer the main thread takes over.
    out.band(rows, copyRows(pixmap.getPixels().subarray(skipRows * stride, (skipRows + rows) * stride), geometry.width, rows, 3, layout));
  };
  const bandRows = (rows: number): number => Math.max(1, layout === 'packed' && rows > JPEG_MCU_ROWS ? rows - (rows % JPEG_MCU_ROWS) : rows);
  let rowsPerBand = bandRows(Math.floor(drawing.bandBytes / (geometry.width * 3)));
  if (rowsPerBand >= geometry.height) {
    // A page that fits one band is drawn directly.
    await out.takeCredit();
    let pixmap: mupdf.Pixmap | undefined;
    try {
      drawing.beforeDraw?.('page', geometry.width * geometry.height);
      pixmap = page.toPixmap(ctm, mupdf.ColorSpace.DeviceRGB, false, true);
      const pixels = pixmap.getPixels();
      // Copied out of WebAssembly memory as gray rows if every pixel is gray, else as RGB ones.
      const gray = copyGrayRows(pixels, geometry.width, geometry.height, layout);
      out.begin(geometry, gray ? 'gray' : 'rgb');
      out.band(geometry.height, gray ?? copyRows(pixels, geometry.width, geometry.height, 3, layout));
      return;
    } catch (err) {
      if (!isOutOfMemory(err)) throw err;
      // Nothing was sent: draw it again in small bands, where MuPDF holds only the edges
      // and pixels of one band (a page of millions of path segments, say).
      out.returnCredit();
      mupdf.emptyStore();
      rowsPerBand = bandRows(Math.ceil(geometry.height / OUT_OF_MEMORY_BANDS));
      if (rowsPerBand >= geometry.height) throw err;
    } finally {
      pixmap?.destroy();
    }
  }
  out.begin(geometry, 'rgb');
  const list = page.toDisplayList(true);
  let fatal = false;
  try {
    for (let top = 0; top < geometry.height; top += rowsPerBand) {
      const rows = Math.min(rowsPerBand, geometry.height - top);
      await out.takeCredit();
      let pixmap: mupdf.Pixmap | undefined;
      let device: mupdf.DrawDevice | undefined;
      try {
        const above = Math.min(BAND_MARGIN_ROWS, top);
        const below = Math.min(BAND_MARGIN_ROWS, geometry.height - top - rows);
        drawing.beforeDraw?.('band', geometry.width * (above + rows + below));
        pixmap = new mupdf.Pixmap(mupdf.ColorSpace.DeviceRGB, [x0, y0 + top - above, x1, y0 + top + rows + below], false);
        pixmap.clear(WHITE);
        device = new mupdf.DrawDevice(mupdf.Matrix.identity, pixmap);
        list.run(device, ctm);
        device.close();
        sendBand(rows, pixmap, above);
      } finally {
        device?.destroy();
        pixmap?.destroy();
      }
    }
  } catch (err) {
    fatal = isFatal(err);
    throw err;
  } finally {
    // After a trap MuPDF's memory is not to be touched again: the worker is about to end.
    if (!fatal) list.destroy();
  }
}
