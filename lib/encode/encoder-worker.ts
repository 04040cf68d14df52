/**
 * The encoder thread's loop (encoder-thread.ts starts it): one encoder per open page, rows in,
 * bytes back, one answer per band, in order. JPEG streams (each band's MCU rows come back as
 * they are coded); WebP gathers the page and answers its last band with the whole file.
 */
import { parentPort } from 'node:worker_threads';
import { errorMessage } from './error-message.js';
import type { EncoderReply, EncoderRequest, PageImage } from './encoder-thread.js';
import { JpegEncoder } from './jpeg-encoder.js';
import { transferOf } from './transfer.js';
import { WebpEncoder } from './webp-encoder.js';

/** What the thread needs of a page's encoder: bytes for each band, the rest at the end. */
interface PageEncoder {
  write(rows: Uint8Array, rowCount: number): Uint8Array;
  end(): Uint8Array | Promise<Uint8Array>;
}

const port = parentPort!;
const encoders = new Map<number, PageEncoder>();
/** Pages whose encoder could not be made: the reason, answered to their first rows. */
const refused = new Map<number, string>();

function encoderFor(page: PageImage): PageEncoder {
  return page.format === 'jpeg' ? new JpegEncoder(page.image) : new WebpEncoder(page.image);
}

function reply(message: EncoderReply): void {
  // The last band's bytes come from Buffer.concat: pooled (so copied, not moved) when small.
  port.postMessage(message, message.type === 'data' ? transferOf(message.bytes) : []);
}

port.on('message', async (request: EncoderRequest) => {
  const { id } = request;
  try {
    switch (request.type) {
      case 'begin':
        try {
          encoders.set(id, encoderFor(request.page));
        } catch (err) {
          // 'begin' has no answer of its own: the page's first rows get this one.
          refused.set(id, errorMessage(err));
        }
        return;
      case 'rows': {
        const encoder = encoders.get(id);
        if (!encoder) throw new Error(refused.get(id) ?? `no page ${id} open`);
        const body = encoder.write(request.bytes, request.rows);
        if (!request.last) return reply({ type: 'data', id, bytes: body });
        encoders.delete(id);
        // A page's last rows are its last message: nothing of this page can overtake the await.
        return reply({ type: 'data', id, bytes: Buffer.concat([body, await encoder.end()]) });
      }
      case 'cancel':
        encoders.delete(id);
        refused.delete(id);
        return;
    }
  } catch (err) {
    encoders.delete(id);
    refused.delete(id);
    reply({ type: 'error', id, message: errorMessage(err) });
  }
});
