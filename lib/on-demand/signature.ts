/**
 * Signed URLs (imgproxy's scheme, with an expiry): `signature` is the HMAC-SHA256, base64url,
 * of the source key and every other query parameter in a canonical order, `expires` (Unix
 * seconds) among them. So a signature covers the page, the size, the format and the expiry:
 * changing any of them, or reordering nothing but the text, breaks or keeps it exactly as the
 * request's meaning changes. The one home of the canonical form: `npm run sign-url` and the
 * function both call it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { HttpError } from './errors.js';

export const SIGNATURE_PARAM = 'signature';
export const EXPIRES_PARAM = 'expires';

/** The signed text: the key, then the parameters but `signature`, sorted by name, each URL-encoded. */
export function canonicalRequest(key: string, params: ReadonlyArray<readonly [string, string]>): string {
  const query = params
    .filter(([name]) => name !== SIGNATURE_PARAM)
    .map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`)
    .sort()
    .join('&');
  return `/${key}\n${query}`;
}

export function sign(secret: string | Uint8Array, key: string, params: ReadonlyArray<readonly [string, string]>): string {
  return createHmac('sha256', secret).update(canonicalRequest(key, params)).digest('base64url');
}

/**
 * Throws a 403 HttpError unless the parameters carry an unexpired `expires` and the signature
 * of the rest. The comparison takes the same time whatever the signature given.
 */
export function verifySignature(secret: string | Uint8Array, key: string, params: ReadonlyArray<readonly [string, string]>, nowMs: number = Date.now()): void {
  const given = params.find(([name]) => name === SIGNATURE_PARAM)?.[1];
  if (given === undefined) throw new HttpError(403, 'SIGNATURE_MISSING', `this URL must be signed: add "${EXPIRES_PARAM}" and "${SIGNATURE_PARAM}" (npm run sign-url)`);
  const expires = params.find(([name]) => name === EXPIRES_PARAM)?.[1];
  if (expires === undefined || !/^\d{1,12}$/.test(expires)) {
    throw new HttpError(403, 'SIGNATURE_INVALID', `${EXPIRES_PARAM}=${JSON.stringify(expires ?? '')} is invalid: a signed URL carries its expiry in Unix seconds`);
  }
  const expected = Buffer.from(sign(secret, key, params));
  const actual = Buffer.from(given);
  // timingSafeEqual needs equal lengths; comparing with itself keeps the time the same either way.
  const equal = actual.length === expected.length ? timingSafeEqual(actual, expected) : !timingSafeEqual(expected, expected);
  if (!equal) throw new HttpError(403, 'SIGNATURE_INVALID', 'the signature does not match this URL (its key, parameters or expiry were changed, or it was signed with another secret)');
  // After the signature: an attacker learns nothing from which check failed first.
  if (Number(expires) * 1000 <= nowMs) throw new HttpError(403, 'SIGNATURE_EXPIRED', `the URL expired at ${new Date(Number(expires) * 1000).toISOString()}`);
}
