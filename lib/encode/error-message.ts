/**
 * The message of anything thrown. Its one home: lib/engine/errors.ts re-exports it, since
 * lib/encode/ sits below the engine and imports nothing of it.
 */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
