/**
 * A JPEG page: MuPDF's encoder takes the page in one piece, so the whole-page pixmap is held
 * within a memory budget (a lower DPI past it), and lower again if drawing and encoding
 * together run out of the heap. Each lowering is recorded as the page's warning.
 */
import * as mupdf from 'mupdf';
import { fitPage, type PageBox, type PageGeometry } from '../options.js';
import { WASM_HEAP_LIMIT_BYTES } from '../wasm.js';
import { isOutOfMemory, PageFailure } from './failures.js';
import type { BeforeDraw, PageOutput } from './page-output.js';

/** A JPEG page this large empties MuPDF's caches between drawing and encoding. */
const JPEG_EMPTY_STORE_BYTES = 64 * 2 ** 20;

export interface JpegDrawing {
  quality: number;
  /** Largest whole-page RGB pixmap, in bytes. */
  pixmapBytes: number;
  beforeDraw?: BeforeDraw;
}

/** The geometry within the pixmap budget, and the warning if that is below the requested DPI. */
export function fitJpegBudget(box: PageBox, geometry: PageGeometry, pixmapBytes: number, pageNumber: number): { geometry: PageGeometry; warning?: string } {
  if (geometry.width * geometry.height * 3 <= pixmapBytes) return { geometry };
  // MuPDF encodes JPEG from a whole-page pixmap: past the memory budget, lower the DPI.
  const fitted = fitPage(box, geometry.dpi, Math.floor(pixmapBytes / 3));
  if (!fitted) throw new PageFailure({ code: 'PAGE_TOO_LARGE', message: 'the page does not fit the JPEG memory budget even at 1 dpi' });
  return {
    geometry: fitted,
    warning: `page ${pageNumber}: JPEG rendered at ${fitted.dpi} dpi instead of ${geometry.dpi} dpi to fit the memory budget (PNG has no such limit)`,
  };
}

/** Draws and encodes `page` into `out`: begin, then one band of JPEG bytes. Throws what MuPDF throws. */
export async function drawJpeg(page: mupdf.Page, box: PageBox, requested: PageGeometry, pageNumber: number, out: PageOutput, drawing: JpegDrawing): Promise<void> {
  let { geometry, warning } = fitJpegBudget(box, requested, drawing.pixmapBytes, pageNumber);
  const budgetDpi = geometry.dpi;
  let jpeg: Uint8Array | undefined;
  while (!jpeg) {
    let pixmap: mupdf.Pixmap | undefined;
    try {
      drawing.beforeDraw?.('jpeg', geometry.width * geometry.height);
      pixmap = page.toPixmap(mupdf.Matrix.scale(geometry.dpi / 72, geometry.dpi / 72), mupdf.ColorSpace.DeviceRGB, false, true);
      // The images this page decoded are drawn: let the encoder have their memory.
      if (geometry.width * geometry.height * 3 > JPEG_EMPTY_STORE_BYTES) mupdf.emptyStore();
      pixmap.setResolution(geometry.dpi, geometry.dpi);
      // Copied out of WebAssembly memory into a buffer the main thread can take over.
      jpeg = new Uint8Array(pixmap.asJPEG(drawing.quality, false));
    } catch (err) {
      // Out of the heap ceiling, whole page and encoder together: try again with half the pixels.
      const smaller = isOutOfMemory(err) ? fitPage(box, geometry.dpi, Math.floor((geometry.width * geometry.height) / 2)) : null;
      if (!smaller || smaller.dpi >= geometry.dpi) throw err;
      geometry = smaller;
      warning = `page ${pageNumber}: JPEG rendered at ${geometry.dpi} dpi instead of ${budgetDpi} dpi: at more it needed over the renderer's ${WASM_HEAP_LIMIT_BYTES / 2 ** 20} MiB (PNG has no such limit)`;
      mupdf.emptyStore();
    } finally {
      pixmap?.destroy();
    }
  }
  out.begin(geometry, 'rgb', warning);
  await out.takeCredit();
  out.band(geometry.height, jpeg, true);
}
