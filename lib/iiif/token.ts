/**
 * The document token of signed mode: `{expires}.{signature}` in the path, `/iiif/3/~{token}/…`,
 * granting one document (its key) until its expiry. A viewer builds every tile URL from
 * info.json's `id`, which carries the token, so it never needs to sign anything. The signature
 * is the page URLs' own (signature.ts: HMAC-SHA256 of the key and the parameters), over the
 * key, `expires` and `scope=iiif-document`: a page URL's signature is never a token, nor the
 * reverse. One home of the token's form: the handler and `npm run sign-url -- --iiif` call it.
 */
import { HttpError } from '../on-demand/errors.js';
import { EXPIRES_PARAM, sign, SIGNATURE_PARAM, verifySignature } from '../on-demand/signature.js';

const SCOPE: readonly [string, string] = ['scope', 'iiif-document'];

export function makeToken(secret: string | Uint8Array, key: string, expires: number): string {
  return `${expires}.${sign(secret, key, [[EXPIRES_PARAM, String(expires)], SCOPE])}`;
}

/** Throws a 403 unless `token` grants `key` now (the same checks, and messages, as a signed page URL). */
export function verifyToken(secret: string | Uint8Array, key: string, token: string | undefined, nowMs: number = Date.now()): void {
  if (token === undefined) throw new HttpError(403, 'SIGNATURE_MISSING', 'this IIIF URL must carry a document token: /iiif/3/~{token}/… (npm run sign-url -- --iiif)');
  const m = /^(\d{1,12})\.([A-Za-z0-9_-]{1,100})$/.exec(token);
  if (!m) throw new HttpError(403, 'SIGNATURE_INVALID', 'the document token is malformed: expected {expires}.{signature}');
  verifySignature(secret, key, [[EXPIRES_PARAM, m[1]!], SCOPE, [SIGNATURE_PARAM, m[2]!]], nowMs);
}
