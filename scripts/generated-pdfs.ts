/**
 * PDFs that break renderers, made on the spot for the tests and the benchmark (nothing this big
 * or this hostile belongs in a repository): a page at the PDF maximum size, a 30000x30000 px
 * image, an image that decodes to gigabytes, forms nested thousands deep or drawing each other,
 * a page of millions of path segments, and a file of several hundred MB.
 *
 * Written by hand, object by object, straight to the file: the big ones never sit in memory.
 */
import { randomFillSync } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { createDeflate, deflateSync } from 'node:zlib';

/** A PDF written object by object, with the cross-reference table at the end. */
class PdfWriter {
  private readonly out: WriteStream;
  private offset = 0;
  private readonly offsets: number[] = [];

  constructor(path: string) {
    this.out = createWriteStream(path);
    void this.write('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n');
  }

  private async write(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    this.offset += bytes.byteLength;
    if (!this.out.write(bytes)) await once(this.out, 'drain');
  }

  /** Reserves an object number, for objects that refer to each other. */
  reserve(): number {
    this.offsets.push(-1);
    return this.offsets.length;
  }

  async object(body: string, id = this.reserve()): Promise<number> {
    this.offsets[id - 1] = this.offset;
    await this.write(`${id} 0 obj\n${body}\nendobj\n`);
    return id;
  }

  /** A stream object; `data` is the encoded bytes, given whole or as chunks (a generator). */
  async stream(dict: string, data: Uint8Array | AsyncIterable<Uint8Array>, id = this.reserve()): Promise<number> {
    this.offsets[id - 1] = this.offset;
    const lengthId = this.reserve();
    await this.write(`${id} 0 obj\n<<${dict} /Length ${lengthId} 0 R>>\nstream\n`);
    const start = this.offset;
    if (data instanceof Uint8Array) await this.write(data);
    else for await (const chunk of data) await this.write(chunk);
    const length = this.offset - start;
    await this.write('\nendstream\nendobj\n');
    await this.object(String(length), lengthId);
    return id;
  }

  /** Pages tree, catalog, xref, trailer; `pages` are [MediaBox, resources, content stream id]. */
  async finish(pages: { size: [number, number]; resources: string; contents: number }[]): Promise<void> {
    const pagesId = this.reserve();
    const kids: number[] = [];
    for (const page of pages) {
      kids.push(await this.object(`<</Type /Page /Parent ${pagesId} 0 R /MediaBox [0 0 ${page.size[0]} ${page.size[1]}] /Resources ${page.resources} /Contents ${page.contents} 0 R>>`));
    }
    await this.object(`<</Type /Pages /Count ${kids.length} /Kids [${kids.map((k) => `${k} 0 R`).join(' ')}]>>`, pagesId);
    const catalog = await this.object(`<</Type /Catalog /Pages ${pagesId} 0 R>>`);
    const xrefAt = this.offset;
    let xref = `xref\n0 ${this.offsets.length + 1}\n0000000000 65535 f \n`;
    for (const at of this.offsets) xref += `${String(at).padStart(10, '0')} 00000 n \n`;
    await this.write(`${xref}trailer\n<</Size ${this.offsets.length + 1} /Root ${catalog} 0 R>>\nstartxref\n${xrefAt}\n%%EOF\n`);
    this.out.end();
    await once(this.out, 'finish');
  }
}

/**
 * Deflates parts as they are produced, never holding the whole. Each part is handed over only
 * once zlib has taken the one before, so a producer may reuse its buffer.
 */
async function* deflated(parts: Iterable<Uint8Array | string>, level: number): AsyncGenerator<Uint8Array> {
  const deflate = createDeflate({ level, chunkSize: 1 << 20 });
  const chunks: Buffer[] = [];
  deflate.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = once(deflate, 'end');
  for (const part of parts) {
    await new Promise<void>((resolve, reject) => deflate.write(part, (err) => (err ? reject(err) : resolve())));
    yield* chunks.splice(0);
  }
  deflate.end();
  await ended;
  yield* chunks.splice(0);
}

const singleContent = async (pdf: PdfWriter, content: string): Promise<number> => pdf.stream(' /Filter /FlateDecode', deflateSync(content));

/** A 14400 pt square page (200 inches, the PDF maximum) with a grid, a box and text. 30000x30000 px at 150 dpi. */
export async function writeGiantPagePdf(path: string): Promise<void> {
  const pdf = new PdfWriter(path);
  const size = 14400;
  let content = '0 0 1 RG 20 w\n';
  for (let at = 0; at <= size; at += 600) content += `${at} 0 m ${at} ${size} l S 0 ${at} m ${size} ${at} l S\n`;
  content += '0.2 0.6 0.2 rg 1000 1000 4000 4000 re f\n';
  content += 'BT /F1 600 Tf 0 0 0 rg 2000 8000 Td (GIANT PAGE) Tj ET\n';
  const font = await pdf.object('<</Type /Font /Subtype /Type1 /BaseFont /Helvetica>>');
  await pdf.finish([{ size: [size, size], resources: `<</Font <</F1 ${font} 0 R>>>>`, contents: await singleContent(pdf, content) }]);
}

/**
 * One RGB image of `pixels` x `pixels` (2.7 GB decoded at 30000) filling a square page of
 * `pagePoints`: at 14400 pt and 150 dpi it is drawn one image pixel per output pixel.
 * Its content is a map-like pattern (a gradient and a grid) that deflates well.
 */
export async function writeGiantImagePdf(path: string, pixels = 30000, pagePoints = 14400): Promise<void> {
  const pdf = new PdfWriter(path);
  const row = Buffer.alloc(pixels * 3);
  const gridRow = Buffer.alloc(pixels * 3, 40);
  // One row buffer, refilled: deflated() hands over the next row only once zlib took this one.
  function* rows(): Generator<Uint8Array> {
    for (let y = 0; y < pixels; y++) {
      if (y % 500 < 4) {
        yield gridRow;
        continue;
      }
      const shade = Math.floor((255 * y) / pixels);
      for (let x = 0; x < pixels; x++) {
        const onGrid = x % 500 < 4;
        row[3 * x] = onGrid ? 40 : shade;
        row[3 * x + 1] = onGrid ? 40 : 255 - shade;
        row[3 * x + 2] = onGrid ? 40 : (x * 255) / pixels;
      }
      yield row;
    }
  }
  const image = await pdf.stream(
    ` /Type /XObject /Subtype /Image /Width ${pixels} /Height ${pixels} /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /FlateDecode`,
    deflated(rows(), 1),
  );
  const contents = await singleContent(pdf, `q ${pagePoints} 0 0 ${pagePoints} 0 0 cm /Im1 Do Q`);
  await pdf.finish([{ size: [pagePoints, pagePoints], resources: `<</XObject <</Im1 ${image} 0 R>>>>`, contents }]);
}

/**
 * A decompression bomb: a Letter page with one gray image of `pixels` x `pixels` (2.5 GB
 * decoded at 50000), deflated twice, so the file is a few KB.
 */
export async function writeImageBombPdf(path: string, pixels = 50000): Promise<void> {
  const pdf = new PdfWriter(path);
  const inner: Buffer[] = [];
  const zeroRow = Buffer.alloc(pixels);
  function* rows(): Generator<Uint8Array> {
    for (let y = 0; y < pixels; y++) yield zeroRow;
  }
  for await (const chunk of deflated(rows(), 9)) inner.push(Buffer.from(chunk));
  const image = await pdf.stream(
    ` /Type /XObject /Subtype /Image /Width ${pixels} /Height ${pixels} /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter [/FlateDecode /FlateDecode]`,
    deflateSync(Buffer.concat(inner), { level: 9 }),
  );
  const contents = await singleContent(pdf, 'q 540 0 0 720 36 36 cm /Im1 Do Q BT /F1 24 Tf 72 740 Td (bomb) Tj ET');
  const font = await pdf.object('<</Type /Font /Subtype /Type1 /BaseFont /Helvetica>>');
  await pdf.finish([{ size: [612, 792], resources: `<</XObject <</Im1 ${image} 0 R>> /Font <</F1 ${font} 0 R>>>>`, contents }]);
}

/** A chain of `depth` form XObjects, each drawing the next a little smaller; returns the first. */
async function formChain(pdf: PdfWriter, depth: number): Promise<number> {
  const ids = Array.from({ length: depth }, () => pdf.reserve());
  for (let i = 0; i < depth; i++) {
    const next = i + 1 < depth ? `/Resources <</XObject <</F ${ids[i + 1]} 0 R>>>>` : '';
    const draw = i + 1 < depth ? 'q 0.99 0 0 0.99 3 3 cm /F Do Q' : '0 0 1 rg 100 100 400 400 re f';
    await pdf.stream(` /Type /XObject /Subtype /Form /BBox [0 0 612 792] ${next}`, Buffer.from(`0 0 0 RG 0.5 w 10 10 592 772 re S ${draw}`), ids[i]);
  }
  return ids[0]!;
}

/**
 * Three pages of form XObjects: nested `renderable` deep (60: the stock mupdf.js build overflows
 * its 64 KiB stack at about 40; MuPDF itself allows about 65), two forms that draw each other
 * (a cycle, which has no bottom), and nested `hopeless` deep (past MuPDF's limit).
 */
export async function writeDeepFormsPdf(path: string, renderable = 60, hopeless = 5000): Promise<void> {
  const pdf = new PdfWriter(path);
  const deep = await formChain(pdf, renderable);
  const [a, b] = [pdf.reserve(), pdf.reserve()];
  await pdf.stream(` /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources <</XObject <</B ${b} 0 R>>>>`, Buffer.from('0 1 0 rg 50 50 100 100 re f /B Do'), a);
  await pdf.stream(` /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources <</XObject <</A ${a} 0 R>>>>`, Buffer.from('1 0 0 rg 200 200 100 100 re f /A Do'), b);
  const deeper = await formChain(pdf, hopeless);
  await pdf.finish([
    { size: [612, 792], resources: `<</XObject <</F ${deep} 0 R>>>>`, contents: await singleContent(pdf, '/F Do') },
    { size: [612, 792], resources: `<</XObject <</A ${a} 0 R>>>>`, contents: await singleContent(pdf, '/A Do') },
    { size: [612, 792], resources: `<</XObject <</F ${deeper} 0 R>>>>`, contents: await singleContent(pdf, '/F Do') },
  ]);
}

/** One Letter page with one path of `segments` line segments (a dense zigzag), stroked, then filled. */
export async function writeManySegmentsPdf(path: string, segments = 2_000_000): Promise<void> {
  const pdf = new PdfWriter(path);
  let seed = 1;
  const random = (): number => ((seed = (seed * 48271) % 2147483647) / 2147483647);
  const lines = (from: number, count: number): string => {
    let s = '';
    for (let i = from; i < from + count; i++) s += `${(36 + random() * 540).toFixed(1)} ${(36 + (720 * i) / segments).toFixed(2)} l\n`;
    return s;
  };
  function* content(): Generator<string> {
    yield '0.1 w 0 0 0.6 RG 306 36 m\n';
    for (let at = 0; at < segments; at += 100_000) yield lines(at, Math.min(100_000, segments - at));
    yield 'S\n0.9 0.3 0.3 rg 306 36 m 36 400 l 576 400 l h f\n';
  }
  const contents = await pdf.stream(' /Filter /FlateDecode', deflated(content(), 6));
  await pdf.finish([{ size: [612, 792], resources: '<<>>', contents }]);
}

/**
 * A file of about `megabytes` MB: Letter pages, each with one incompressible photo-sized RGB
 * image (random pixels, stored unfiltered, 10 MB a page), as a large scan would be.
 */
export async function writeLargeFilePdf(path: string, megabytes = 300): Promise<void> {
  const pdf = new PdfWriter(path);
  const [width, height] = [2200, 1600];
  const image = Buffer.alloc(width * height * 3);
  const pages = [];
  for (let bytes = 0; bytes < megabytes * 1e6; bytes += image.byteLength) {
    randomFillSync(image);
    const id = await pdf.stream(` /Type /XObject /Subtype /Image /Width ${width} /Height ${height} /ColorSpace /DeviceRGB /BitsPerComponent 8`, image);
    const contents = await singleContent(pdf, `q 540 0 0 392 36 200 cm /Im1 Do Q BT /F1 24 Tf 72 740 Td (page ${pages.length + 1}) Tj ET`);
    pages.push({ id, contents });
  }
  const font = await pdf.object('<</Type /Font /Subtype /Type1 /BaseFont /Helvetica>>');
  await pdf.finish(pages.map(({ id, contents }) => ({ size: [612, 792] as [number, number], resources: `<</XObject <</Im1 ${id} 0 R>> /Font <</F1 ${font} 0 R>>>>`, contents })));
}

export const GENERATED_PDFS = {
  'giant-page-14400pt': writeGiantPagePdf,
  'giant-image-30000px': writeGiantImagePdf,
  'image-bomb-2.5GB': writeImageBombPdf,
  'deep-forms': writeDeepFormsPdf,
  'many-segments-2M': writeManySegmentsPdf,
  'large-file-300MB': writeLargeFilePdf,
} as const satisfies Record<string, (path: string) => Promise<void>>;
