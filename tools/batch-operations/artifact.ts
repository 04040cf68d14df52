/**
 * The built artifact of a function as Batch Operations' target: `size` warm Lambda containers
 * (tools/lambda-container.ts: the artifact in a folder of its own, the template's environment,
 * the function's memory limit and CPU share), each serving one invocation at a time, as
 * Lambda's concurrent execution environments do.
 */
import { Writable } from 'node:stream';
import { LambdaContainer, type ContainerOptions } from '../lambda-container.js';
import type { Template, TemplateFunction } from '../template.js';
import type { Invoke } from './runner.js';

export interface ArtifactPool {
  invoke: Invoke;
  close(): Promise<void>;
}

/** Discards what it is given: the functions' own logs, when nobody wants 20,000 of them. */
export const discard = (): Writable => new Writable({ write: (_chunk, _encoding, done) => done() });

export async function artifactPool(template: Template, fn: TemplateFunction, size: number, options: ContainerOptions = {}): Promise<ArtifactPool> {
  const start = async (): Promise<LambdaContainer> => {
    const { container, initError } = await LambdaContainer.start(template, fn, options);
    if (initError) {
      await container.close();
      throw new Error(`${fn.logicalId} failed to start: ${JSON.stringify(initError.payload)}`);
    }
    return container;
  };
  const free: LambdaContainer[] = await Promise.all(Array.from({ length: size }, start));
  const all = new Set(free);
  const waiting: ((c: LambdaContainer) => void)[] = [];
  const release = (c: LambdaContainer) => {
    const next = waiting.shift();
    if (next) next(c);
    else free.push(c);
  };
  return {
    async invoke(event) {
      const container = free.pop() ?? (await new Promise<LambdaContainer>((resolve) => waiting.push(resolve)));
      let outcome;
      try {
        outcome = await container.invoke(event);
      } catch (err) {
        // The container ended (a timeout or a crash): replace it, as Lambda would start another.
        all.delete(container);
        const fresh = await start();
        all.add(fresh);
        release(fresh);
        throw err;
      }
      release(container);
      if (!outcome.ok) throw new Error(JSON.stringify(outcome.payload));
      return outcome.payload;
    },
    async close() {
      await Promise.all([...all].map((c) => c.close()));
    },
  };
}
