/**
 * Opening the document in the worker, through the descriptor the main thread owns (never by
 * path), and classifying why it could not be opened into the document error codes.
 */
import { readSync } from 'node:fs';
import * as mupdf from 'mupdf';
import { errorMessage, type DocumentErrorCode } from '../errors.js';

export class DocumentFailure extends Error {
  override readonly name = 'DocumentFailure';
  constructor(
    readonly code: DocumentErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface OpenedDocument {
  doc: mupdf.Document;
  pageCount: number;
  warnings: string[];
  /** MuPDF rebuilt the cross-reference table to open it. */
  repaired: boolean;
}

function fileStartsLikePdf(fd: number, fileSize: number): boolean {
  const head = Buffer.alloc(Math.min(1024, fileSize));
  readSync(fd, head, 0, head.length, 0);
  return head.includes('%PDF-');
}

function openPdf(fd: number, fileSize: number): mupdf.Document {
  if (fileSize === 0) throw new DocumentFailure('EMPTY', 'the file is empty (0 bytes)');
  const stream = new mupdf.Stream({
    fileSize: () => fileSize,
    read: (memory, offset, length, position) => readSync(fd, memory, offset, length, position),
    // The main thread owns and closes the descriptor.
    close: () => undefined,
  });
  let doc: mupdf.Document;
  try {
    doc = mupdf.Document.openDocument(stream, 'application/pdf');
  } catch (err) {
    const message = errorMessage(err);
    if (!fileStartsLikePdf(fd, fileSize)) throw new DocumentFailure('NOT_PDF', `not a PDF: no %PDF- header and MuPDF could not open it (${message})`);
    if (/no objects found/i.test(message)) throw new DocumentFailure('NOT_PDF', `not a PDF: it has a PDF header but no PDF objects (${message})`);
    throw new DocumentFailure('CORRUPT', `damaged beyond repair: ${message}`);
  } finally {
    stream.destroy();
  }
  // MuPDF sniffs the content and ignores the 'application/pdf' hint: HTML, images, etc. named .pdf would render.
  if (!(doc instanceof mupdf.PDFDocument)) {
    const format = doc.getMetaData('format') || 'another format';
    doc.destroy();
    throw new DocumentFailure('NOT_PDF', `not a PDF: the content is ${format}`);
  }
  if (doc.needsPassword()) {
    doc.destroy();
    throw new DocumentFailure('ENCRYPTED', 'the document is encrypted and needs a password to open');
  }
  return doc;
}

/**
 * Opens the PDF and reads its page tree; throws a DocumentFailure with the code that says why
 * not. `openLog` is what MuPDF logged meanwhile: a page tree that comes out empty after
 * complaints is CORRUPT, not NO_PAGES.
 */
export function openDocument(fd: number, fileSize: number, openLog: readonly string[]): OpenedDocument {
  let doc: mupdf.Document;
  try {
    doc = openPdf(fd, fileSize);
  } catch (err) {
    if (err instanceof DocumentFailure) throw err;
    throw new DocumentFailure('CORRUPT', `could not open: ${errorMessage(err)}`);
  }
  const warnings: string[] = [];
  const repaired = doc instanceof mupdf.PDFDocument && doc.wasRepaired();
  if (repaired) warnings.push(repairedWarning(openLog));
  let pageCount: number;
  try {
    pageCount = doc.countPages();
  } catch (err) {
    doc.destroy();
    throw new DocumentFailure('CORRUPT', `cannot read the page tree: ${errorMessage(err)}`);
  }
  if (pageCount === 0) {
    doc.destroy();
    if (repaired || openLog.length > 0) {
      throw new DocumentFailure('CORRUPT', `no usable page tree: ${openLog.slice(0, 3).join('; ') || 'repair found no pages'}`);
    }
    throw new DocumentFailure('NO_PAGES', 'the document has no pages');
  }
  return { doc, pageCount, warnings, repaired };
}

/** The manifest's warning for a repaired document: REPAIRED, with what MuPDF said while repairing. */
export function repairedWarning(openLog: readonly string[]): string {
  const said = openLog.filter((line) => !/^\.\.\. repeated/.test(line)).slice(0, 3);
  return `REPAIRED: MuPDF had to repair the document${said.length ? ` (${said.join('; ')})` : ''}`;
}

/**
 * A page of a repaired document whose page object is gone (a truncated file whose page tree
 * still counts it): MuPDF would draw it as an empty Letter page. Only asked of repaired
 * documents; measured in docs/contract.md ("Repaired documents").
 */
export function pageLostInRepair(doc: mupdf.Document, pageNumber: number): boolean {
  if (!(doc instanceof mupdf.PDFDocument)) return false;
  try {
    const object = doc.findPage(pageNumber - 1);
    return !object.isDictionary() || object.get('Type').asName() !== 'Page';
  } catch {
    return true;
  }
}
