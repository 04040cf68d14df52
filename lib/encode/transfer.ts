/** Moving bytes between threads: shared by the encoder threads and the code that feeds them. */

/**
 * What to transfer with a view in postMessage: its buffer when the view is all of it, else
 * nothing (the bytes are copied). A view of a larger buffer must not take the rest with it, and
 * Node's Buffer pool (where a small Buffer.concat or Buffer.from lands) is untransferable: Node 20
 * copies it silently, Node 21 and later throw "Cannot transfer object of unsupported type" (seen
 * on the nodejs24.x runtime's Node 24.22.3: every page of a 72 dpi JPEG render failed).
 */
export function transferOf(view: Uint8Array): ArrayBuffer[] {
  return view.byteOffset === 0 && view.byteLength === view.buffer.byteLength ? [view.buffer as ArrayBuffer] : [];
}
