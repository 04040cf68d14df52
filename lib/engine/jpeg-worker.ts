/**
 * The JPEG encoder thread's loop (jpeg-thread.ts starts it): one streaming encoder per open
 * page, rows in, JPEG bytes back, one answer per band, in order.
 */
import { parentPort } from 'node:worker_threads';
import { JpegEncoder } from './jpeg-encoder.js';
import type { JpegReply, JpegRequest } from './jpeg-thread.js';

const port = parentPort!;
const encoders = new Map<number, JpegEncoder>();

function reply(message: JpegReply): void {
  port.postMessage(message, message.type === 'data' ? [message.bytes.buffer as ArrayBuffer] : []);
}

port.on('message', (request: JpegRequest) => {
  const { id } = request;
  try {
    switch (request.type) {
      case 'begin':
        encoders.set(id, new JpegEncoder(request.image));
        return;
      case 'rows': {
        const encoder = encoders.get(id);
        if (!encoder) throw new Error(`no page ${id} open`);
        const body = encoder.write(request.bytes, request.rows);
        if (!request.last) return reply({ type: 'data', id, bytes: body });
        encoders.delete(id);
        return reply({ type: 'data', id, bytes: Buffer.concat([body, encoder.end()]) });
      }
      case 'cancel':
        encoders.delete(id);
        return;
    }
  } catch (err) {
    encoders.delete(id);
    reply({ type: 'error', id, message: err instanceof Error ? err.message : String(err) });
  }
});
