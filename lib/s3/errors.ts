/**
 * What an S3 error means for the render (docs/contract.md, "Errors"): not found, a failed
 * precondition (compare-and-swap lost, or the source changed), or permanent. S3 5xx,
 * throttling (503 SlowDown, 429), timeouts (408) and 403 are transient: retried.
 */
interface S3ErrorShape {
  name?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

function statusOf(err: unknown): number | undefined {
  return (err as S3ErrorShape)?.$metadata?.httpStatusCode;
}

/** S3's "no such object" in its several spellings (GET, HEAD, a missing version). */
export function isNotFound(err: unknown): boolean {
  const name = (err as S3ErrorShape)?.name;
  return name === 'NoSuchKey' || name === 'NotFound' || name === 'NoSuchVersion' || statusOf(err) === 404;
}

/** A conditional request lost: If-Match / If-None-Match did not hold (412), or a concurrent conditional write won (409). */
export function isPreconditionFailed(err: unknown): boolean {
  const name = (err as S3ErrorShape)?.name;
  const status = statusOf(err);
  return name === 'PreconditionFailed' || name === 'ConditionalRequestConflict' || status === 412 || status === 409;
}

/** S3 answered 4xx with something retrying cannot change (KeyTooLongError, InvalidArgument, EntityTooLarge…). */
export function isPermanentS3Error(err: unknown): boolean {
  const status = statusOf(err);
  return status !== undefined && status >= 400 && status < 500 && ![403, 404, 408, 409, 412, 429].includes(status);
}

/** The S3 error code, for logs: KeyTooLongError, SlowDown… */
export function s3ErrorCode(err: unknown): string | undefined {
  const e = err as S3ErrorShape;
  return e?.Code ?? e?.name;
}
