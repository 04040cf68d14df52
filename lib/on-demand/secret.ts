/**
 * The URL-signing secrets: an SSM Parameter Store SecureString, read at the first signed
 * request of a container and again once it is SECRET_TTL_MS old. Chosen over Secrets Manager:
 * a standard parameter costs nothing to keep and needs no rotation machinery.
 *
 * The value holds one secret per line: the first signs (npm run sign-url uses it), a second
 * one (the previous, or the next during a rotation) also verifies, so a rotation has no gap
 * (docs/on-demand.md, "Rotating the secret"). Each is at least 16 characters; more than two
 * lines, or an empty one, is refused.
 *
 * Why five minutes: a rotation step takes effect on every warm container within that time
 * (a removed secret stops working, a new one starts), and it costs one GetParameter per
 * container per five minutes, far below SSM's default 40 GetParameter/s (1,000 warm
 * containers: 3.3/s). A failed read is not cached, so the next request tries again.
 *
 * A failed refresh (SSM throttled or unreachable) keeps the last secrets read, logged, until
 * they are SECRET_GRACE_MS old: otherwise every signed request of every warm container would be
 * a 500 for as long as SSM is down. One hour bounds how long a removed secret can still verify
 * while SSM cannot say it was removed; past it the read's error is the answer (a 500).
 */
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { errorMessage } from '../engine/errors.js';
import { logger } from '../observability.js';

/** The secrets to verify with, the signing one first. */
export type SecretSource = () => Promise<readonly string[]>;

export const SECRET_TTL_MS = 5 * 60_000;
export const SECRET_GRACE_MS = 60 * 60_000;
/** Shorter than 16 bytes is guessable; the sign-url tool suggests 32 random bytes. */
export const MIN_SECRET_LENGTH = 16;

/** The secrets of a parameter's value (one per line, the signing one first), or an error naming the parameter. */
export function parseSecrets(value: string | undefined, name: string): string[] {
  const lines = (value ?? '').replace(/\r\n/g, '\n').replace(/\n+$/, '').split('\n');
  if (lines.length > 2) throw new Error(`SSM parameter ${name} holds ${lines.length} lines: expected the current secret, and at most one more (the previous one) on a second line`);
  for (const [i, line] of lines.entries()) {
    if (line.length < MIN_SECRET_LENGTH) throw new Error(`SSM parameter ${name}: line ${i + 1} is not a secret of at least ${MIN_SECRET_LENGTH} characters`);
  }
  return lines;
}

export function ssmSecret(ssm: SSMClient, name: string, ttlMs = SECRET_TTL_MS, now: () => number = Date.now, graceMs = SECRET_GRACE_MS): SecretSource {
  /** The last secrets read, and when. */
  let good: { secrets: readonly string[]; readAt: number } | undefined;
  /** A read under way, shared by concurrent requests. */
  let reading: Promise<readonly string[]> | undefined;
  return () => {
    if (good && now() - good.readAt < ttlMs) return Promise.resolve(good.secrets);
    reading ??= ssm
      .send(new GetParameterCommand({ Name: name, WithDecryption: true }))
      .then((response) => parseSecrets(response.Parameter?.Value, name))
      .then(
        (secrets) => {
          good = { secrets, readAt: now() };
          return secrets;
        },
        (err: unknown) => {
          const age = good ? now() - good.readAt : Number.POSITIVE_INFINITY;
          if (good && age < graceMs) {
            logger.warn('signing secret refresh failed: serving the last secrets read', { parameter: name, ageMs: age, error: errorMessage(err) });
            return good.secrets;
          }
          throw err;
        },
      )
      .finally(() => {
        reading = undefined;
      });
    return reading;
  };
}
