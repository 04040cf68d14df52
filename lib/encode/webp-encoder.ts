/**
 * WebP pages: libwebp's lossy (VP8) encoder, compiled to WebAssembly (npm @jsquash/webp, the
 * Squoosh build; its SIMD variant), run on an encoder thread (encoder-thread.ts). libwebp takes
 * the whole picture at once, so a page's rows are gathered as RGBA (its only input layout, 4
 * bytes a pixel) and encoded when the last rows arrive.
 *
 * Memory, measured (scratch run on corpus pages at 150 dpi, 2026-12-02): after encoding the
 * 36 Mpx go-poster page the encoder's WebAssembly memory was 395 MiB, 11.5 bytes a pixel (the
 * RGBA copy, 4; libwebp's YUV 4:2:0 picture, 1.5; its working memory and the output), beside
 * the 4 bytes a pixel of RGBA gathered here: about 15.5 bytes a pixel in all. So each page gets
 * a fresh WebAssembly instance (its memory goes with it: WebAssembly memory never shrinks), and
 * a WebP page is at most WEBP_MAX_PIXELS (formats.ts; lib/engine/options.ts draws larger ones
 * at the DPI that fits, with a warning).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import createWebpModule from '@jsquash/webp/codec/enc/webp_enc_simd.js';
import { defaultOptions } from '@jsquash/webp/meta.js';
import { WEBP_MAX_PIXELS, WEBP_MAX_SIDE } from './formats.js';

export interface WebpImage {
  width: number;
  height: number;
  /** Rows as they come: 1 (gray) or 3 (RGB) bytes a pixel. */
  channels: 1 | 3;
  /** libwebp's quality, 0..100. */
  quality: number;
}

interface WebpModule {
  encode(data: Uint8Array, width: number, height: number, options: typeof defaultOptions): Uint8Array | null;
}

let bundledWasm: string | undefined;

/** Set by the bundle's entry (functions/render-pdf/encoder-worker.ts): where esbuild shipped the .wasm. */
export function useWebpWasmFile(path: string): void {
  bundledWasm = path;
}

let compiled: WebAssembly.Module | undefined;

/** libwebp's module, compiled once per thread from the bundle's file (or node_modules from source): no fetch, no network. */
function webpWasmModule(): WebAssembly.Module {
  if (compiled) return compiled;
  const path = bundledWasm ?? join(dirname(createRequire(import.meta.url).resolve('@jsquash/webp')), 'codec/enc/webp_enc_simd.wasm');
  compiled = new WebAssembly.Module(readFileSync(path));
  return compiled;
}

/** A fresh instance of libwebp: its memory is dropped with it after the page. */
async function webpInstance(): Promise<WebpModule> {
  const module = webpWasmModule();
  return (await createWebpModule({
    noInitialRun: true,
    instantiateWasm: (imports: WebAssembly.Imports, ready: (instance: WebAssembly.Instance) => void) => {
      const instance = new WebAssembly.Instance(module, imports);
      ready(instance);
      return instance.exports;
    },
  } as never)) as unknown as WebpModule;
}

/** One page: rows in, gathered as RGBA; the whole WebP file out at the end. */
export class WebpEncoder {
  private readonly rgba: Uint8Array;
  private rowsIn = 0;

  constructor(private readonly image: WebpImage) {
    const { width, height, channels, quality } = image;
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width > WEBP_MAX_SIDE || height > WEBP_MAX_SIDE) {
      throw new Error(`a WebP image is 1 to ${WEBP_MAX_SIDE} pixels a side, not ${width}x${height}`);
    }
    if (width * height > WEBP_MAX_PIXELS) throw new Error(`a WebP page is at most ${WEBP_MAX_PIXELS} pixels, not ${width}x${height}`);
    if (channels !== 1 && channels !== 3) throw new Error(`WebP rows are gray or RGB, not ${channels} channels`);
    if (!(quality >= 0 && quality <= 100)) throw new Error(`WebP quality is 0 to 100, not ${quality}`);
    this.rgba = new Uint8Array(width * height * 4);
  }

  /** Adds rows (packed, `channels` bytes a pixel). Nothing comes out until the end. */
  write(rows: Uint8Array, rowCount: number): Uint8Array {
    const { width, height, channels } = this.image;
    if (this.rowsIn + rowCount > height) throw new Error(`${this.rowsIn + rowCount} rows for an image of ${height}`);
    if (rows.byteLength !== rowCount * width * channels) throw new Error(`${rows.byteLength} bytes for ${rowCount} rows of ${width * channels}`);
    const out = this.rgba;
    let to = this.rowsIn * width * 4;
    if (channels === 3) {
      for (let from = 0; from < rows.byteLength; from += 3, to += 4) {
        out[to] = rows[from]!;
        out[to + 1] = rows[from + 1]!;
        out[to + 2] = rows[from + 2]!;
        out[to + 3] = 255;
      }
    } else {
      for (let from = 0; from < rows.byteLength; from++, to += 4) {
        const v = rows[from]!;
        out[to] = v;
        out[to + 1] = v;
        out[to + 2] = v;
        out[to + 3] = 255;
      }
    }
    this.rowsIn += rowCount;
    // A new one each time: the thread transfers each answer's buffer, detaching it.
    return new Uint8Array(0);
  }

  /** The WebP file, once every row is in. */
  async end(): Promise<Uint8Array> {
    const { width, height, quality } = this.image;
    if (this.rowsIn !== height) throw new Error(`ended after ${this.rowsIn} of ${height} rows`);
    const webp = (await webpInstance()).encode(this.rgba, width, height, { ...defaultOptions, quality });
    if (!webp) throw new Error(`libwebp could not encode a ${width}x${height} image`);
    return webp;
  }
}
