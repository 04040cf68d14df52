/**
 * MuPDF's WebAssembly module, compiled once per process (per Lambda container) and handed to
 * every render worker, which only instantiates it. Before compiling, two limits of the build are
 * changed in the binary, each checked against the exact layout of the pinned mupdf release:
 *
 * - The stack. The build has 64 KiB of stack below the heap, and a page whose forms nest about
 *   40 deep overflows it into MuPDF's static data (a trap, or worse, silent corruption). The
 *   stack is moved to the start of the heap with STACK_BYTES of room (native MuPDF has 8 MiB),
 *   and the old stack region stays unused below it, as a guard zone the worker checks after
 *   every page (stackGuard).
 * - The heap ceiling. The build may grow to 2 GiB; it is capped at WASM_HEAP_LIMIT_BYTES, so a
 *   page that would need more fails inside MuPDF with an out-of-memory error (which MuPDF
 *   handles: it evicts its caches and retries first) instead of taking the process over its
 *   memory.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** Native MuPDF's stack (the Linux default): forms nested thousands deep render. */
export const STACK_BYTES = 8 * 2 ** 20;
/** Per worker. With Node and the encoder, a process stays under 512 MB RSS even at the ceiling. */
export const WASM_HEAP_LIMIT_BYTES = 384 * 2 ** 20;

/** The layout of mupdf 1.28.1's build (package.json pins it exactly). */
const BUILD = {
  /**
   * The initial __stack_pointer. The stack grows down from it into the 64 KiB below; the heap
   * starts at it. It appears three times: the global's initializer, an i32.const in the code
   * (the main thread's stack base), and sbrk's initial value in the data (stored in 3 bytes,
   * the linker trims the zero high byte).
   */
  stackTop: 6265424,
  stackBytes: 64 * 1024,
};

/** Where the worker finds the guard zone (the build's own stack, now unused): it must stay zero. */
export interface StackGuard {
  start: number;
  end: number;
}

const PAGE = 65536;

/** Reads an unsigned LEB128 at `at`; returns the value and the byte after it. */
function readLeb(bytes: Uint8Array, at: number): [number, number] {
  let value = 0;
  let shift = 0;
  for (;;) {
    const byte = bytes[at++]!;
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(byte & 0x80)) return [value, at];
  }
}

/** Writes `value` as LEB128 over exactly `length` bytes (padded), so no size changes. */
function writePaddedLeb(bytes: Uint8Array, at: number, length: number, value: number): void {
  for (let i = 0; i < length; i++) {
    const last = i === length - 1;
    bytes[at + i] = (value & 0x7f) | (last ? 0 : 0x80);
    value = Math.floor(value / 128);
  }
  if (value !== 0) throw new Error(`${value} does not fit ${length} LEB128 bytes`);
}

/** Offsets of the binary's sections by id (the ones this file needs appear once). */
function sections(bytes: Uint8Array): Map<number, { start: number; end: number }> {
  const found = new Map<number, { start: number; end: number }>();
  let at = 8;
  while (at < bytes.length) {
    const id = bytes[at]!;
    const [size, start] = readLeb(bytes, at + 1);
    found.set(id, { start, end: start + size });
    at = start + size;
  }
  return found;
}

/** Encoding of `i32.const value` (signed LEB128, which equals unsigned for these values < 2^27). */
function i32Const(value: number): Uint8Array {
  const out = [0x41];
  for (;;) {
    const byte = value & 0x7f;
    value >>>= 7;
    if (value === 0 && !(byte & 0x40)) {
      out.push(byte);
      return Uint8Array.from(out);
    }
    out.push(byte | 0x80);
  }
}

function indexesOf(bytes: Uint8Array, pattern: Uint8Array, from: number, to: number): number[] {
  const found: number[] = [];
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = buffer.indexOf(pattern, from); at !== -1 && at < to; at = buffer.indexOf(pattern, at + 1)) found.push(at);
  return found;
}

/**
 * The module's bytes with the larger stack and the heap ceiling. Throws if the binary is not
 * the layout this was written for (a mupdf upgrade): update BUILD then, never guess.
 */
export function patchMupdfWasm(original: Uint8Array): { bytes: Uint8Array; guard: StackGuard } {
  const bytes = new Uint8Array(original);
  const fail = (what: string): never => {
    throw new Error(`mupdf-wasm.wasm is not the build lib/engine/wasm.ts expects (${what}); update BUILD for this mupdf release`);
  };
  const byId = sections(bytes);

  // Memory section (5): one memory, flags 1 (has a maximum), min, max.
  const memory = byId.get(5) ?? fail('no memory section');
  const [count, flagsAt] = readLeb(bytes, memory.start);
  if (count !== 1 || bytes[flagsAt] !== 1) fail('memory limits');
  const [minPages, maxAt] = readLeb(bytes, flagsAt + 1);
  const [, maxEnd] = readLeb(bytes, maxAt);
  const newTop = BUILD.stackTop + STACK_BYTES;
  if (minPages * PAGE < newTop) fail('initial memory below the moved stack');
  writePaddedLeb(bytes, maxAt, maxEnd - maxAt, WASM_HEAP_LIMIT_BYTES / PAGE);

  // Global section (6): global 0 is __stack_pointer, `i32 mut = i32.const stackTop`.
  const globals = byId.get(6) ?? fail('no global section');
  const [globalCount, globalAt] = readLeb(bytes, globals.start);
  const stackPointerInit = i32Const(BUILD.stackTop);
  if (globalCount !== 1 || bytes[globalAt] !== 0x7f || bytes[globalAt + 1] !== 1) fail('stack pointer global');
  if (!Buffer.from(bytes.subarray(globalAt + 2, globalAt + 2 + stackPointerInit.length)).equals(stackPointerInit)) fail('stack pointer value');

  // Code section (10): the main thread's stack base.
  const code = byId.get(10) ?? fail('no code section');
  const codeUses = indexesOf(bytes, stackPointerInit, code.start, code.end);
  if (codeUses.length !== 1) fail(`${codeUses.length} uses of the stack top in the code`);
  const newTopConst = i32Const(newTop);
  if (newTopConst.length !== stackPointerInit.length) fail('the moved stack top does not encode in place');
  for (const at of [globalAt + 2, ...codeUses]) bytes.set(newTopConst, at);

  // Data section (11): sbrk's start, the heap base, moves above the new stack.
  const data = byId.get(11) ?? fail('no data section');
  const le24 = (value: number): Uint8Array => Uint8Array.of(value & 0xff, (value >> 8) & 0xff, (value >> 16) & 0xff);
  const dataUses = indexesOf(bytes, le24(BUILD.stackTop), data.start, data.end);
  if (dataUses.length !== 1) fail(`${dataUses.length} copies of the heap base in the data`);
  if (newTop >= 2 ** 24) fail('the moved heap base does not fit 3 bytes');
  bytes.set(le24(newTop), dataUses[0]!);
  return { bytes, guard: { start: BUILD.stackTop - BUILD.stackBytes / 2, end: BUILD.stackTop } };
}

let compiled: Promise<{ module: WebAssembly.Module; guard: StackGuard }> | undefined;

/** Compiled once per process. */
export function mupdfWasmModule(): Promise<{ module: WebAssembly.Module; guard: StackGuard }> {
  compiled ??= readFile(mupdfWasmPath())
    .then(async (original) => {
      const { bytes, guard } = patchMupdfWasm(original);
      return { module: await WebAssembly.compile(bytes), guard };
    })
    .catch((err: unknown) => {
      // Not kept: the next job tries again rather than failing on a stale rejection.
      compiled = undefined;
      throw err;
    });
  return compiled;
}

let bundledWasm: string | undefined;

/** Set by the bundle's entry (functions/render-pdf/mupdf-wasm.ts): where esbuild shipped the .wasm. */
export function useMupdfWasmFile(path: string): void {
  bundledWasm = path;
}

/** Where the bundle put it; in node_modules when running from source. */
export function mupdfWasmPath(): string {
  if (bundledWasm) return bundledWasm;
  const mupdfEntry = createRequire(import.meta.url).resolve('mupdf');
  return join(dirname(mupdfEntry), 'mupdf-wasm.wasm');
}
