/**
 * Signed URLs (imgproxy's scheme, with an expiry): `signature` is the HMAC-SHA256, base64url,
 * of the source key and every other query parameter in a canonical order, `expires` (Unix
 * seconds) among them. So a signature covers the page, the size, the format and the expiry:
 * changing any of them, or reordering nothing but the text, breaks or keeps it exactly as the
 * request's meaning changes. The one home of the canonical form and of the checks: `npm run
 * sign-url` and the function both call it.
 *
 * `verifySigned` is the check on its own (a signed string, its signature and expiry, the time,
 * the secrets, the longest lifetime allowed → a result), for any token built on the same rule;
 * `verifySignature` applies it to a page URL and throws the 403.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { HttpError } from './errors.js';

export const SIGNATURE_PARAM = 'signature';
export const EXPIRES_PARAM = 'expires';

/** A signature's expiry is at most this far ahead by default: 7 days (SIGNED_URL_MAX_SECONDS). */
export const DEFAULT_SIGNED_URL_MAX_SECONDS = 7 * 24 * 3600;

export type SignatureCode = 'SIGNATURE_MISSING' | 'SIGNATURE_INVALID' | 'SIGNATURE_EXPIRED' | 'SIGNATURE_EXPIRY_TOO_FAR';

export type VerifyResult = { ok: true; expiresAt: number } | { ok: false; code: SignatureCode; message: string };

/** The signed text: the key, then the parameters but `signature`, sorted by name, each URL-encoded. */
export function canonicalRequest(key: string, params: ReadonlyArray<readonly [string, string]>): string {
  const query = params
    .filter(([name]) => name !== SIGNATURE_PARAM)
    .map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`)
    .sort()
    .join('&');
  return `/${key}\n${query}`;
}

/** The HMAC-SHA256, base64url, of any signed text. */
export function hmac(secret: string | Uint8Array, signed: string): string {
  return createHmac('sha256', secret).update(signed).digest('base64url');
}

export function sign(secret: string | Uint8Array, key: string, params: ReadonlyArray<readonly [string, string]>): string {
  return hmac(secret, canonicalRequest(key, params));
}

/**
 * Why an expiry (Unix seconds, as text) is refused at `nowMs`, or null when it is acceptable:
 * not a number, past, or more than `maxSeconds` ahead. The signer (npm run sign-url) asks the
 * same before it signs.
 */
export function expiryProblem(expires: string | undefined, nowMs: number, maxSeconds: number): { code: SignatureCode; message: string } | null {
  if (expires === undefined || !/^\d{1,12}$/.test(expires)) {
    return { code: 'SIGNATURE_INVALID', message: `${EXPIRES_PARAM}=${JSON.stringify(expires ?? '')} is invalid: a signed URL carries its expiry in Unix seconds` };
  }
  const expiresMs = Number(expires) * 1000;
  if (expiresMs <= nowMs) return { code: 'SIGNATURE_EXPIRED', message: `the URL expired at ${new Date(expiresMs).toISOString()}` };
  if (expiresMs - nowMs > maxSeconds * 1000) {
    return {
      code: 'SIGNATURE_EXPIRY_TOO_FAR',
      message: `the URL expires at ${new Date(expiresMs).toISOString()}, more than SIGNED_URL_MAX_SECONDS (${maxSeconds} s) ahead: sign it for a shorter time`,
    };
  }
  return null;
}

/**
 * Checks `signature` over `signed` (which must cover `expires`) with each of `secrets` (the
 * current one and, during a rotation, the previous one), then the expiry: unexpired and at most
 * `maxSeconds` ahead. The comparison takes the same time whatever the signature given, and the
 * expiry is judged after the signature, so a forger learns nothing from which check failed.
 */
export function verifySigned(
  signed: string,
  signature: string | undefined,
  expires: string | undefined,
  nowMs: number,
  secrets: ReadonlyArray<string | Uint8Array>,
  maxSeconds: number,
): VerifyResult {
  if (signature === undefined) return { ok: false, code: 'SIGNATURE_MISSING', message: `this URL must be signed: add "${EXPIRES_PARAM}" and "${SIGNATURE_PARAM}" (npm run sign-url)` };
  if (expires === undefined || !/^\d{1,12}$/.test(expires)) return { ok: false, ...expiryProblem(expires, nowMs, maxSeconds)! };
  const actual = Buffer.from(signature);
  let equal = false;
  for (const secret of secrets) {
    const expected = Buffer.from(hmac(secret, signed));
    // timingSafeEqual needs equal lengths; comparing with itself keeps the time the same either way.
    const same = actual.length === expected.length ? timingSafeEqual(actual, expected) : !timingSafeEqual(expected, expected);
    equal ||= same;
  }
  if (!equal) return { ok: false, code: 'SIGNATURE_INVALID', message: 'the signature does not match this URL (its key, parameters or expiry were changed, or it was signed with another secret)' };
  const problem = expiryProblem(expires, nowMs, maxSeconds);
  return problem ? { ok: false, ...problem } : { ok: true, expiresAt: Number(expires) };
}

/** Throws a 403 HttpError unless the page URL's parameters carry a valid signature and expiry (verifySigned). */
export function verifySignature(
  secrets: ReadonlyArray<string | Uint8Array>,
  key: string,
  params: ReadonlyArray<readonly [string, string]>,
  nowMs: number = Date.now(),
  maxSeconds: number = DEFAULT_SIGNED_URL_MAX_SECONDS,
): void {
  const value = (name: string): string | undefined => params.find(([n]) => n === name)?.[1];
  const result = verifySigned(canonicalRequest(key, params), value(SIGNATURE_PARAM), value(EXPIRES_PARAM), nowMs, secrets, maxSeconds);
  if (!result.ok) throw new HttpError(403, result.code, result.message);
}
