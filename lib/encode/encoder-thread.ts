/**
 * JPEG and WebP off the drawing thread: a page's rows go, band by band, to an encoder thread
 * (encoder-worker.ts: the streaming encoder of jpeg-encoder.ts, or webp-encoder.ts, which
 * gathers the page), and its bytes come back in order into the page's output, while the render
 * worker draws on. The PNG side of the same arrangement is zlib on libuv's thread pool
 * (png-encoder.ts).
 *
 * Encoder threads hold no WebAssembly and no document: they are kept from job to job (idle
 * ones never keep the process alive), so their JIT stays warm; the first JPEG page of a
 * process pays for starting one. A page is encoded whole by one thread (its coder state lives
 * there); pages go to the thread with the fewest open, up to one thread per CPU.
 */
import { availableParallelism } from 'node:os';
import { PassThrough } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { readerRoom, type ImageEncoder } from './image-encoder.js';
import { transferOf } from './transfer.js';
import type { JpegImage } from './jpeg-encoder.js';
import { threadScript } from './thread-script.js';
import type { WebpImage } from './webp-encoder.js';

/** A page for an encoder thread: its format and what its encoder needs. */
export type PageImage = { format: 'jpeg'; image: JpegImage } | { format: 'webp'; image: WebpImage };

/** Main thread to encoder thread. `rows`: packed rows (rows.ts); `last` asks for the image's end too. */
export type EncoderRequest =
  | { type: 'begin'; id: number; page: PageImage }
  | { type: 'rows'; id: number; rows: number; bytes: Uint8Array; last: boolean }
  | { type: 'cancel'; id: number };

/** Encoder thread to main thread: one answer per 'rows', in order. */
export type EncoderReply = { type: 'data'; id: number; bytes: Uint8Array } | { type: 'error'; id: number; message: string };

const SCRIPT = threadScript('encoder-worker.mjs', new URL('./encoder-worker.ts', import.meta.url));

interface Pending {
  onData: (bytes: Uint8Array) => void;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** How errors name a page's encoder: "JPEG encoder: …", "WebP encoder: …". */
const LABELS = { jpeg: 'JPEG', webp: 'WebP' } as const;

class EncoderThread {
  private readonly worker: Worker;
  /** Per open page, its 'rows' requests not answered yet, in order. */
  private readonly pages = new Map<number, Pending[]>();
  /** Per open page, its format's label. */
  private readonly labels = new Map<number, string>();
  alive = true;

  constructor() {
    this.worker = new Worker(SCRIPT.script, { eval: SCRIPT.eval, stdout: false, stderr: false });
    this.worker.unref();
    this.worker.on('message', (reply: EncoderReply) => {
      const pending = this.pages.get(reply.id)?.shift();
      if (!pending) return;
      if (reply.type === 'data') {
        pending.onData(reply.bytes);
        pending.resolve();
      } else {
        // The thread has dropped the page already: its other rows in flight fail with it.
        const rest = this.pages.get(reply.id) ?? [];
        const err = new Error(`${this.labels.get(reply.id)} encoder: ${reply.message}`);
        this.close(reply.id, false);
        for (const failed of [pending, ...rest]) failed.reject(err);
      }
    });
    const died = (message: string): void => {
      if (!this.alive) return;
      this.alive = false;
      const at = threads.indexOf(this);
      if (at >= 0) threads.splice(at, 1);
      for (const queue of this.pages.values()) for (const pending of queue) pending.reject(new Error(message));
      this.pages.clear();
    };
    this.worker.on('error', (err) => died(`encoder thread failed: ${err.message}`));
    this.worker.on('exit', (code) => died(`encoder thread exited with code ${code}`));
  }

  get openPages(): number {
    return this.pages.size;
  }

  open(id: number, page: PageImage): void {
    this.pages.set(id, []);
    this.labels.set(id, LABELS[page.format]);
    // A thread with a page open keeps the process alive until the page is out.
    this.worker.ref();
    this.post({ type: 'begin', id, page });
  }

  rows(id: number, bytes: Uint8Array, rows: number, last: boolean, onData: Pending['onData']): Promise<void> {
    const queue = this.pages.get(id);
    if (!queue || !this.alive) return Promise.reject(new Error(`${this.labels.get(id) ?? 'image'} encoder: the page is no longer open`));
    return new Promise<void>((resolve, reject) => {
      queue.push({ onData, resolve, reject });
      // A band's own buffer moves to the thread; a view of a larger one is copied.
      this.post({ type: 'rows', id, rows, bytes, last }, transferOf(bytes));
    });
  }

  /** The page is done or given up: forgotten here, and (`cancel`) told to the thread, which forgets a finished or failed page itself. */
  close(id: number, cancel = true): void {
    this.labels.delete(id);
    if (!this.pages.delete(id)) return;
    if (cancel && this.alive) this.post({ type: 'cancel', id });
    if (this.pages.size === 0) this.worker.unref();
  }

  private post(request: EncoderRequest, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(request, transfer);
  }
}

const threads: EncoderThread[] = [];
let nextId = 1;

/** The thread with the fewest open pages; a new one while each has a page open and there is a CPU for it. */
function threadFor(): EncoderThread {
  const least = threads.reduce<EncoderThread | undefined>((best, t) => (!best || t.openPages < best.openPages ? t : best), undefined);
  if (least && (least.openPages === 0 || threads.length >= Math.max(1, availableParallelism()))) return least;
  const started = new EncoderThread();
  threads.push(started);
  return started;
}

/** Encoder threads alive now (idle ones included): for tests. */
export function encoderThreadCount(): number {
  return threads.length;
}

/** A page's JPEG encoder: packed rows in (gray or RGB as `image.channels`), the JPEG file out as its rows are coded. */
export function createJpegEncoder(image: JpegImage): ImageEncoder {
  return createThreadEncoder({ format: 'jpeg', image });
}

/**
 * A page's WebP encoder: packed rows in (gray or RGB), gathered on the thread; the WebP file
 * out when the last rows are in. Each band is answered as soon as it is gathered, so the
 * worker's credits come back and it draws on; only the last band's credit waits for the
 * encoding, which bounds the pages a worker has gathered behind it to its credits.
 */
export function createWebpEncoder(image: WebpImage): ImageEncoder {
  return createThreadEncoder({ format: 'webp', image });
}

function createThreadEncoder(page: PageImage): ImageEncoder {
  const { image } = page;
  const label = LABELS[page.format];
  const output = new PassThrough({ highWaterMark: 1 << 20 });
  const thread = threadFor();
  const id = nextId++;
  const rowBytes = image.width * image.channels;
  let bytesOut = 0;
  let rowsIn = 0;
  thread.open(id, page);
  const emit = (bytes: Uint8Array, last: boolean): void => {
    if (output.destroyed) return;
    bytesOut += bytes.byteLength;
    if (last) output.end(bytes);
    else if (bytes.byteLength > 0) output.write(bytes);
  };
  return {
    output,
    get bytesOut() {
      return bytesOut;
    },
    async writeRows(rows, rowCount) {
      if (rowsIn + rowCount > image.height) throw new Error(`${label} encoder: ${rowsIn + rowCount} rows for an image of ${image.height}`);
      if (rows.byteLength !== rowCount * rowBytes) throw new Error(`${label} encoder: ${rows.byteLength} bytes for ${rowCount} rows of ${rowBytes}`);
      rowsIn += rowCount;
      const last = rowsIn === image.height;
      // Answers come in order, and each is written out as it comes: the file is in order.
      await thread.rows(id, rows, rowCount, last, (bytes) => emit(bytes, last));
      if (last) thread.close(id, false);
      await readerRoom(output);
    },
    end() {
      if (rowsIn !== image.height) this.fail(new Error(`${label} encoder: ended after ${rowsIn} of ${image.height} rows`));
    },
    fail(err) {
      thread.close(id);
      output.destroy(err);
    },
  };
}
