/**
 * JPEG off the drawing thread: a page's rows go, band by band, to an encoder thread
 * (jpeg-worker.ts, the streaming encoder of jpeg-encoder.ts), and its JPEG bytes come back in
 * order into the page's output, while the render worker draws on. The PNG side of the same
 * arrangement is zlib on libuv's thread pool (png-encoder.ts).
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

/** Main thread to encoder thread. `rows`: packed rows (rows.ts); `last` asks for the image's end too. */
export type JpegRequest =
  | { type: 'begin'; id: number; image: JpegImage }
  | { type: 'rows'; id: number; rows: number; bytes: Uint8Array; last: boolean }
  | { type: 'cancel'; id: number };

/** Encoder thread to main thread: one answer per 'rows', in order. */
export type JpegReply = { type: 'data'; id: number; bytes: Uint8Array } | { type: 'error'; id: number; message: string };

const SCRIPT = threadScript('jpeg-worker.mjs', new URL('./jpeg-worker.ts', import.meta.url));

interface Pending {
  onData: (bytes: Uint8Array) => void;
  resolve: () => void;
  reject: (err: Error) => void;
}

class EncoderThread {
  private readonly worker: Worker;
  /** Per open page, its 'rows' requests not answered yet, in order. */
  private readonly pages = new Map<number, Pending[]>();
  alive = true;

  constructor() {
    this.worker = new Worker(SCRIPT.script, { eval: SCRIPT.eval, stdout: false, stderr: false });
    this.worker.unref();
    this.worker.on('message', (reply: JpegReply) => {
      const pending = this.pages.get(reply.id)?.shift();
      if (!pending) return;
      if (reply.type === 'data') {
        pending.onData(reply.bytes);
        pending.resolve();
      } else {
        // The thread has dropped the page already: its other rows in flight fail with it.
        const rest = this.pages.get(reply.id) ?? [];
        this.close(reply.id, false);
        const err = new Error(`JPEG encoder: ${reply.message}`);
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
    this.worker.on('error', (err) => died(`JPEG encoder thread failed: ${err.message}`));
    this.worker.on('exit', (code) => died(`JPEG encoder thread exited with code ${code}`));
  }

  get openPages(): number {
    return this.pages.size;
  }

  open(id: number, image: JpegImage): void {
    this.pages.set(id, []);
    // A thread with a page open keeps the process alive until the page is out.
    this.worker.ref();
    this.post({ type: 'begin', id, image });
  }

  rows(id: number, bytes: Uint8Array, rows: number, last: boolean, onData: Pending['onData']): Promise<void> {
    const queue = this.pages.get(id);
    if (!queue || !this.alive) return Promise.reject(new Error('JPEG encoder: the page is no longer open'));
    return new Promise<void>((resolve, reject) => {
      queue.push({ onData, resolve, reject });
      // A band's own buffer moves to the thread; a view of a larger one is copied.
      this.post({ type: 'rows', id, rows, bytes, last }, transferOf(bytes));
    });
  }

  /** The page is done or given up: forgotten here, and (`cancel`) told to the thread, which forgets a finished or failed page itself. */
  close(id: number, cancel = true): void {
    if (!this.pages.delete(id)) return;
    if (cancel && this.alive) this.post({ type: 'cancel', id });
    if (this.pages.size === 0) this.worker.unref();
  }

  private post(request: JpegRequest, transfer: ArrayBuffer[] = []): void {
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
export function jpegThreadCount(): number {
  return threads.length;
}

/** A page's JPEG encoder: packed rows in (gray or RGB as `image.channels`), the JPEG file out. */
export function createJpegEncoder(image: JpegImage): ImageEncoder {
  const output = new PassThrough({ highWaterMark: 1 << 20 });
  const thread = threadFor();
  const id = nextId++;
  const rowBytes = image.width * image.channels;
  let bytesOut = 0;
  let rowsIn = 0;
  thread.open(id, image);
  const emit = (bytes: Uint8Array, last: boolean): void => {
    if (output.destroyed) return;
    bytesOut += bytes.byteLength;
    if (last) output.end(bytes);
    else output.write(bytes);
  };
  return {
    output,
    get bytesOut() {
      return bytesOut;
    },
    async writeRows(rows, rowCount) {
      if (rowsIn + rowCount > image.height) throw new Error(`JPEG encoder: ${rowsIn + rowCount} rows for an image of ${image.height}`);
      if (rows.byteLength !== rowCount * rowBytes) throw new Error(`JPEG encoder: ${rows.byteLength} bytes for ${rowCount} rows of ${rowBytes}`);
      rowsIn += rowCount;
      const last = rowsIn === image.height;
      // Answers come in order, and each is written out as it comes: the file is in order.
      await thread.rows(id, rows, rowCount, last, (bytes) => emit(bytes, last));
      if (last) thread.close(id, false);
      await readerRoom(output);
    },
    end() {
      if (rowsIn !== image.height) this.fail(new Error(`JPEG encoder: ended after ${rowsIn} of ${image.height} rows`));
    },
    fail(err) {
      thread.close(id);
      output.destroy(err);
    },
  };
}
