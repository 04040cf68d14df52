/**
 * The document token of signed mode: `{expires}.{signature}` in the path, `/iiif/3/~{token}/…`,
 * granting one document (its key) until its expiry. A viewer builds every tile URL from
 * info.json's `id`, which carries the token, so it never needs to sign anything. The signature
 * is the page URLs' own (signature.ts: HMAC-SHA256 of the key and the parameters), over the
 * key, `expires` and `scope=iiif-document`: a page URL's signature is never a token, nor the
 * reverse. One home of the token's form: the handler and `npm run sign-url -- --iiif` call it.
 */
import { HttpError } from '../on-demand/errors.js';
import { canonicalRequest, DEFAULT_SIGNED_URL_MAX_SECONDS, EXPIRES_PARAM, sign, verifySigned } from '../on-demand/signature.js';

const SCOPE: readonly [string, string] = ['scope', 'iiif-document'];

export function makeToken(secret: string | Uint8Array, key: string, expires: number): string {
  return `${expires}.${sign(secret, key, [[EXPIRES_PARAM, String(expires)], SCOPE])}`;
}

/**
 * Throws a 403 unless `token` grants `key` now: the same checks, and codes, as a signed page
 * URL (verifySigned): any of the current secrets (a rotation has no gap), unexpired, and at
 * most `maxSeconds` (SIGNED_URL_MAX_SECONDS) ahead.
 */
export function verifyToken(
  secrets: ReadonlyArray<string | Uint8Array>,
  key: string,
  token: string | undefined,
  nowMs: number = Date.now(),
  maxSeconds: number = DEFAULT_SIGNED_URL_MAX_SECONDS,
): void {
  if (token === undefined) throw new HttpError(403, 'SIGNATURE_MISSING', 'this IIIF URL must carry a document token: /iiif/3/~{token}/… (npm run sign-url -- --iiif)');
  const m = /^(\d{1,12})\.([A-Za-z0-9_-]{1,100})$/.exec(token);
  if (!m) throw new HttpError(403, 'SIGNATURE_INVALID', 'the document token is malformed: expected {expires}.{signature}');
  const result = verifySigned(canonicalRequest(key, [[EXPIRES_PARAM, m[1]!], SCOPE]), m[2], m[1], nowMs, secrets, maxSeconds);
  if (!result.ok) throw new HttpError(403, result.code, result.message);
}
