/**
 * Installs mupdf's instantiation hook before `mupdf` is evaluated (ES modules evaluate in import
 * order, so the worker imports this first). The worker then instantiates the WebAssembly.Module
 * the main thread compiled once, instead of reading and compiling 10 MB of wasm per job.
 */
import { workerData } from 'node:worker_threads';
import type { WorkerBoot } from '../protocol.js';

let memory: WebAssembly.Memory | undefined;

type InstantiateCallback = (instance: WebAssembly.Instance, module: WebAssembly.Module) => void;

const wasmModule = (workerData as WorkerBoot).wasmModule;
(globalThis as Record<string, unknown>)['$libmupdf_wasm_Module'] = {
  instantiateWasm(imports: WebAssembly.Imports, done: InstantiateCallback): Record<string, never> {
    void WebAssembly.instantiate(wasmModule, imports).then((instance) => {
      memory = Object.values(instance.exports).find((v): v is WebAssembly.Memory => v instanceof WebAssembly.Memory);
      done(instance, wasmModule);
    });
    return {};
  },
};

/**
 * False once anything wrote below MuPDF's stack: the stack overflowed (content nested deeper
 * than it holds), and MuPDF's memory can no longer be trusted.
 */
export function stackGuardIntact(): boolean {
  const { start, end } = (workerData as WorkerBoot).stackGuard;
  if (!memory) return true;
  const words = new BigUint64Array(memory.buffer, start, (end - start) / 8);
  for (const word of words) if (word !== 0n) return false;
  return true;
}

/** Size of this worker's WebAssembly memory. It only grows, so this is also its high-water mark. */
export function wasmHeapBytes(): number {
  return memory?.buffer.byteLength ?? 0;
}
