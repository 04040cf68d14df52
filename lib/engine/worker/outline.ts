/**
 * The document outline (bookmarks), read lazily through MuPDF's outline iterator and bounded:
 * a hostile outline can have millions of entries, nesting thousands deep, or /Next and /First
 * chains that loop. `Document.loadOutline()` would build all of it at once, in C and then in
 * JavaScript by recursion (one JS frame a level: a deep outline overflows the stack); the
 * iterator lets us stop at OUTLINE_LIMITS. MuPDF's iterator first walks the outline once in C
 * to repair it, and refuses one that loops ("Cycle detected in outlines"); that walk recurses
 * a level a frame, and 100,000 levels overflow the stack (V8's RangeError, measured with
 * test/engine/outline.test.ts; 10,000 levels pass). Either way the document has no outline, and
 * its pages are served as any others (the IIIF sizes job that reads it draws no page, and its
 * worker is ended after).
 */
import * as mupdf from 'mupdf';
import { OUTLINE_LIMITS, type OutlineEntry } from '../results.js';
import { isFatal } from './failures.js';

const AT_ITEM = mupdf.OutlineIterator.ITERATOR_AT_ITEM;
const AT_EMPTY = mupdf.OutlineIterator.ITERATOR_AT_EMPTY;

/** The outline as entries with 1-based pages (absent where the entry links nowhere in the document); undefined when there is none. */
export function outlineOf(doc: mupdf.Document, pageCount: number, warn: (message: string) => void): { outline: OutlineEntry[]; truncated: boolean } | undefined {
  let iterator: mupdf.OutlineIterator | undefined;
  try {
    iterator = doc.outlineIterator();
    if (!iterator.item()) return undefined;
    const budget = { left: OUTLINE_LIMITS.entries, truncated: false };
    const outline = readLevel(doc, iterator, pageCount, 1, budget);
    return outline.length > 0 ? { outline, truncated: budget.truncated } : undefined;
  } catch (err) {
    // A trap is the worker's end; anything MuPDF throws about the outline only leaves it out.
    if (isFatal(err)) throw err;
    warn(`the outline is left out: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  } finally {
    iterator?.destroy();
  }
}

/** The entries of one level, the iterator on its first one; recursion is bounded by OUTLINE_LIMITS.depth. */
function readLevel(doc: mupdf.Document, iterator: mupdf.OutlineIterator, pageCount: number, depth: number, budget: { left: number; truncated: boolean }): OutlineEntry[] {
  const entries: OutlineEntry[] = [];
  for (;;) {
    const item = iterator.item();
    if (!item) break;
    if (budget.left <= 0) {
      budget.truncated = true;
      break;
    }
    budget.left--;
    const page = pageOf(doc, item.uri, pageCount);
    const entry: OutlineEntry = { title: (item.title ?? '').trim().slice(0, OUTLINE_LIMITS.titleChars), ...(page !== undefined ? { page } : {}) };
    const down = iterator.down();
    if (down === AT_ITEM) {
      if (depth < OUTLINE_LIMITS.depth) {
        const children = readLevel(doc, iterator, pageCount, depth + 1, budget);
        if (children.length > 0) entry.children = children;
      } else {
        budget.truncated = true;
      }
      iterator.up();
    } else if (down === AT_EMPTY) {
      // No children: the iterator stands at the empty place below the entry.
      iterator.up();
    }
    entries.push(entry);
    if (iterator.next() !== AT_ITEM) break;
  }
  return entries;
}

/** The 1-based page an outline link goes to, when it is a page of this document. */
function pageOf(doc: mupdf.Document, uri: string | undefined, pageCount: number): number | undefined {
  if (!uri) return undefined;
  try {
    const index = doc.resolveLink(uri);
    return index >= 0 && index < pageCount ? index + 1 : undefined;
  } catch {
    // A link MuPDF cannot resolve (a broken named destination) is an entry without a page.
    return undefined;
  }
}
