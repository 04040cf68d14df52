/**
 * What a soak key is made of besides its document (issue 27): the characters of its name, the
 * render options its object metadata asks for, and the intake its events arrive through. One
 * seeded draw per key, logged by the caller, so a seed's keys are the same whatever the timing.
 */
import type { ImageFormat } from '../../lib/encode/formats.js';
import { IMAGE_FORMATS } from '../../lib/encode/formats.js';
import type { Prng } from './prng.js';

/**
 * Name fragments that event encodings get wrong: a space ("+" in an S3 notification, "%20" in
 * a percent-encoded EventBridge key), a literal "+", a literal "%" (with hex after it, so a
 * second decoding would change it), a ".."-like segment that is not "..", and non-ASCII.
 */
export const KEY_DECORATIONS = ['', 'Q3 report ', 'a+b ', '100% %41 ', 'a..b.', 'résumé 日本 ', 'dir with space/x..y '] as const;

/** How a key's upload reaches the render queue. */
export type Intake = 's3' | 'eventbridge';

export interface KeyChoice {
  decoration: string;
  intake: Intake;
  /** Object metadata (render-* options); empty: the function's settings. */
  metadata: Record<string, string>;
  /** The format the key's pages end in (metadata over the function's FORMAT). */
  format: ImageFormat;
}

/** The function's FORMAT for one run. */
export function functionFormat(plan: Prng): ImageFormat {
  return plan.pick(IMAGE_FORMATS);
}

export function chooseKey(plan: Prng, runFormat: ImageFormat, intakes: readonly Intake[]): KeyChoice {
  const decoration = plan.pick(KEY_DECORATIONS);
  const intake = plan.pick(intakes);
  const metadata: Record<string, string> = {};
  let format = runFormat;
  if (plan.chance(0.5)) {
    format = plan.pick(IMAGE_FORMATS);
    metadata['render-format'] = format;
  }
  if (plan.chance(0.3)) metadata['render-thumbnail-width'] = String(plan.pick([32, 48]));
  if (plan.chance(0.3)) metadata['render-text'] = 'true';
  return { decoration, intake, metadata, format };
}

/**
 * A key percent-encoded as a URL path (RFC 3986: every byte but the unreserved ones and "/"),
 * as field reports say EventBridge's "Object Created" events carry it: a space is "%20", a "+"
 * is "%2B", a "%" is "%25".
 */
export function percentEncodeKey(key: string): string {
  return encodeURIComponent(key)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%2F/g, '/');
}
