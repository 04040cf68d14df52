/**
 * A region of a page (a IIIF tile or size), drawn through one matrix that scales the page to the
 * size asked for and moves the region to the origin: MuPDF rasterizes only the pixmap it is
 * given, so a 512 px tile of a 30000 px page costs a 512 px pixmap (plus a margin), not the
 * page. An output that fits one band (every tile) is drawn unturned and mirrored and turned in
 * its one copy out of WebAssembly memory (exact: the same pixels as the page turned); a larger
 * one is drawn in bands of a display list, turned by the matrix (no band needs another's
 * pixels), so its memory is O(band) whatever the size asked for. Gray and bitonal are
 * converted per band.
 */
import * as mupdf from 'mupdf';
import { copyRows, copyRowsAsGray, cropTurn, tileRows, type RowLayout } from '../../encode/rows.js';
import { pixelRect, type PageBox, type PageGeometry, type PageRegion } from '../options.js';
import { BAND_MARGIN_ROWS } from './draw-page.js';
import { isFatal } from './failures.js';
import type { BeforeDraw, PageOutput } from './page-output.js';

const WHITE = 255;
const JPEG_MCU_ROWS = 8;

/**
 * The matrix from page space (MuPDF's bounds, rotation applied) to the output's pixels: the
 * page at the full image's DPI with its pixel grid where a whole-page render puts it (the
 * origin of pixelRect), the region's corner at 0,0, scaled to width x height, then (with
 * `turn`) mirrored (x -> width - x) and turned clockwise, as IIIF orders them.
 */
export function regionMatrix(box: PageBox, full: PageGeometry, region: PageRegion, turn = true): mupdf.Matrix {
  const s = full.dpi / 72;
  const [fx0, fy0] = pixelRect(box, full.dpi);
  const kx = region.width / region.w;
  const ky = region.height / region.h;
  let m: mupdf.Matrix = [s * kx, 0, 0, s * ky, -(fx0 + region.x) * kx, -(fy0 + region.y) * ky];
  if (!turn) return m;
  const { width: w, height: h } = region;
  if (region.mirror) m = mupdf.Matrix.concat(m, [-1, 0, 0, 1, w, 0]);
  if (region.rotate === 90) m = mupdf.Matrix.concat(m, [0, 1, -1, 0, h, 0]);
  else if (region.rotate === 180) m = mupdf.Matrix.concat(m, [-1, 0, 0, -1, w, h]);
  else if (region.rotate === 270) m = mupdf.Matrix.concat(m, [0, -1, 1, 0, 0, w]);
  return m;
}

/**
 * Pixels drawn around the region and thrown away: where a path or glyph crosses the pixmap's
 * edge, MuPDF's rasterization differs by a few levels near it (draw-page.ts BAND_MARGIN_ROWS).
 */
const MARGIN = BAND_MARGIN_ROWS;

/** Draws `region` of `page` (whose full image is `full`) into `out`. Throws what MuPDF throws. */
export async function drawRegion(
  page: mupdf.Page,
  box: PageBox,
  full: PageGeometry,
  region: PageRegion,
  out: PageOutput,
  drawing: { bandBytes: number; layout: RowLayout; beforeDraw?: BeforeDraw },
): Promise<void> {
  const { layout } = drawing;
  const turned = region.rotate === 90 || region.rotate === 270;
  const width = turned ? region.height : region.width;
  const height = turned ? region.width : region.height;
  const geometry: PageGeometry = { dpi: Math.round(full.dpi * (region.width / region.w) * 1000) / 1000, width, height };
  const gray = region.quality === 'gray' || region.quality === 'bitonal';
  const bitonal = region.quality === 'bitonal';
  const rowsOf = (packed: Uint8Array, rows: number): Uint8Array => (gray ? copyRowsAsGray(packed, width, rows, layout, bitonal) : copyRows(packed, width, rows, 3, layout));
  const bandRows = (rows: number): number => Math.max(1, layout === 'packed' && rows > JPEG_MCU_ROWS ? rows - (rows % JPEG_MCU_ROWS) : rows);
  const stride = width + 2 * MARGIN;
  const rowsPerBand = bandRows(Math.floor(drawing.bandBytes / (stride * 3)) - 2 * MARGIN);

  /** One pixmap of `bbox` (in the matrix's pixels) drawn by `run`, handed to `take` before it is freed. */
  const drawInto = <T>(bbox: [number, number, number, number], run: (device: mupdf.Device) => void, take: (pixels: Uint8Array | Uint8ClampedArray) => T): T => {
    let pixmap: mupdf.Pixmap | undefined;
    let device: mupdf.DrawDevice | undefined;
    try {
      drawing.beforeDraw?.(bbox[3] - bbox[1] >= height ? 'page' : 'band', (bbox[2] - bbox[0]) * (bbox[3] - bbox[1]));
      pixmap = new mupdf.Pixmap(mupdf.ColorSpace.DeviceRGB, bbox, false);
      pixmap.clear(WHITE);
      device = new mupdf.DrawDevice(mupdf.Matrix.identity, pixmap);
      run(device);
      device.close();
      return take(pixmap.getPixels());
    } finally {
      device?.destroy();
      pixmap?.destroy();
    }
  };

  if (rowsPerBand >= height) {
    // One band (every tile): drawn straight from the page, unturned, with a margin all round;
    // the copy out of WebAssembly memory crops, mirrors and turns it.
    await out.takeCredit();
    const { width: w, height: h } = region;
    const ctm = regionMatrix(box, full, region, false);
    const packed = drawInto([-MARGIN, -MARGIN, w + MARGIN, h + MARGIN], (device) => page.run(device, ctm), (pixels) =>
      cropTurn(pixels, w + 2 * MARGIN, MARGIN, MARGIN, w, h, region.rotate, region.mirror),
    );
    const tile = tileRows(packed, width, height, region.quality, layout);
    out.begin(geometry, tile.channels === 1 ? 'gray' : 'rgb');
    out.band(height, tile.rows);
    return;
  }
  // Larger than a band: the turn goes into the matrix, so no band needs another's pixels.
  const ctm = regionMatrix(box, full, region);
  out.begin(geometry, gray ? 'gray' : 'rgb');
  const list = page.toDisplayList(true);
  let fatal = false;
  try {
    for (let top = 0; top < height; top += rowsPerBand) {
      const rows = Math.min(rowsPerBand, height - top);
      await out.takeCredit();
      const above = Math.min(MARGIN, top);
      const below = Math.min(MARGIN, height - top - rows);
      const packed = drawInto([-MARGIN, top - above, width + MARGIN, top + rows + below], (device) => list.run(device, ctm), (pixels) =>
        cropTurn(pixels, stride, MARGIN, above, width, rows, 0, false),
      );
      out.band(rows, rowsOf(packed, rows));
    }
  } catch (err) {
    fatal = isFatal(err);
    throw err;
  } finally {
    if (!fatal) list.destroy();
  }
}
