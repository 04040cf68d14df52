/**
 * The URL-signing secret: an SSM Parameter Store SecureString, read once per container (the
 * first signed request pays one GetParameter; later ones none). Chosen over Secrets Manager:
 * a standard parameter costs nothing to keep and the function needs no rotation machinery —
 * rotating means putting a new value and letting containers be recycled (docs/on-demand.md).
 * A failed read is not cached, so the next request tries again.
 */
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';

export type SecretSource = () => Promise<string>;

export function ssmSecret(ssm: SSMClient, name: string): SecretSource {
  let cached: Promise<string> | undefined;
  return () => {
    cached ??= ssm
      .send(new GetParameterCommand({ Name: name, WithDecryption: true }))
      .then((response) => {
        const value = response.Parameter?.Value;
        // Shorter than 16 bytes is guessable; the sign-url tool suggests 32 random bytes.
        if (!value || value.length < 16) throw new Error(`SSM parameter ${name} holds no secret of at least 16 characters`);
        return value;
      })
      .catch((err: unknown) => {
        cached = undefined;
        throw err;
      });
    return cached;
  };
}
