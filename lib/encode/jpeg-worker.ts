/**
 * The JPEG encoder thread's loop (jpeg-thread.ts starts it): one streaming encoder per open
 * page, rows in, JPEG bytes back, one answer per band, in order.
 */
import { parentPort } from 'node:worker_threads';
import { errorMessage } from './error-message.js';
import { JpegEncoder } from './jpeg-encoder.js';
import { transferOf } from './transfer.js';
import type { JpegReply, JpegRequest } from './jpeg-thread.js';

const port = parentPort!;
const encoders = new Map<number, JpegEncoder>();
/** Pages whose encoder could not be made: the reason, answered to their first rows. */
const refused = new Map<number, string>();

function reply(message: JpegReply): void {
  // The last band's bytes come from Buffer.concat: pooled (so copied, not moved) when small.
  port.postMessage(message, message.type === 'data' ? transferOf(message.bytes) : []);
}

port.on('message', (request: JpegRequest) => {
  const { id } = request;
  try {
    switch (request.type) {
      case 'begin':
        try {
          encoders.set(id, new JpegEncoder(request.image));
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
        return reply({ type: 'data', id, bytes: Buffer.concat([body, encoder.end()]) });
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
