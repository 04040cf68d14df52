/**
 * The port a page is drawn into: the drawing code (draw-page.ts) says when the
 * page's size is known, waits for credit, and hands over bands; the worker's main loop
 * implements it with messages to the main thread, the tests with an in-process fake.
 */
import type { PageGeometry } from '../options.js';
import type { PageColor } from '../results.js';

export interface PageOutput {
  /** The image's size and color are final (page-begin): bands follow, as rows of that color. */
  begin(geometry: PageGeometry, color: PageColor): void;
  /** Resolves when one more band may be sent: the consumer has released an earlier one (backpressure). */
  takeCredit(): Promise<void>;
  /** Gives back a credit taken for a band that was never sent. */
  returnCredit(): void;
  /** Hands `rows` rows over, in the drawing's layout (its buffer is transferred: do not touch it afterwards). */
  band(rows: number, bytes: Uint8Array): void;
}

/**
 * Called just before MuPDF allocates a pixmap for a page or a band, with its pixel
 * count. Production passes none; tests throw an out-of-memory error from it to drive the
 * fallbacks, which a real heap would need hundreds of MiB and seconds to trigger.
 */
export type BeforeDraw = (what: 'page' | 'band', pixels: number) => void;
