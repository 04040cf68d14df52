/**
 * Walks a page's structured text block by block, line by line, character by character, with
 * only what the page text needs (boxes, characters, their quads). MuPDF.js's own
 * StructuredText.walk makes, for every character, a Font object registered for finalization,
 * a color and an origin, and passes the character as String.fromCharCode (wrong past U+FFFF);
 * this reads the same fields through the same exported functions of MuPDF's WebAssembly
 * module, and falls back to walk() in a build that does not export them.
 */
import type * as mupdf from 'mupdf';

export interface TextVisitor {
  beginTextBlock(bbox: number[]): void;
  beginLine(bbox: number[]): void;
  /** `quad`: the character's four corners, x and y, in MuPDF's order (ul, ur, ll, lr). */
  onChar(c: string, quad: ArrayLike<number>): void;
  endLine(): void;
  endTextBlock(): void;
}

/** The exports of MuPDF's module the walk needs (mupdf-wasm.d.ts names them so). */
interface StextExports {
  HEAPF32: Float32Array;
  _wasm_stext_page_get_first_block(page: number): number;
  _wasm_stext_block_get_next(block: number): number;
  _wasm_stext_block_get_type(block: number): number;
  _wasm_stext_block_get_bbox(block: number): number;
  _wasm_stext_block_get_first_line(block: number): number;
  _wasm_stext_line_get_next(line: number): number;
  _wasm_stext_line_get_bbox(line: number): number;
  _wasm_stext_line_get_first_char(line: number): number;
  _wasm_stext_char_get_next(ch: number): number;
  _wasm_stext_char_get_c(ch: number): number;
  _wasm_stext_char_get_quad(ch: number): number;
}

const NEEDED = [
  '_wasm_stext_page_get_first_block',
  '_wasm_stext_block_get_next',
  '_wasm_stext_block_get_type',
  '_wasm_stext_block_get_bbox',
  '_wasm_stext_block_get_first_line',
  '_wasm_stext_line_get_next',
  '_wasm_stext_line_get_bbox',
  '_wasm_stext_line_get_first_char',
  '_wasm_stext_char_get_next',
  '_wasm_stext_char_get_c',
  '_wasm_stext_char_get_quad',
] as const;

/** MuPDF.js instantiates its Emscripten module on the object wasm-hook.ts gives it: its exports land there. */
function stextExports(): StextExports | undefined {
  const module = (globalThis as Record<string, unknown>)['$libmupdf_wasm_Module'] as Record<string, unknown> | undefined;
  if (!module || !(module['HEAPF32'] instanceof Float32Array)) return undefined;
  return NEEDED.every((name) => typeof module[name] === 'function') ? (module as unknown as StextExports) : undefined;
}

const TEXT_BLOCK = 0;

export function walkStructuredText(stext: mupdf.StructuredText, visitor: TextVisitor): void {
  const m = stextExports();
  if (!m) {
    stext.walk({
      beginTextBlock: (bbox) => visitor.beginTextBlock(bbox),
      beginLine: (bbox) => visitor.beginLine(bbox),
      onChar: (c, _origin, _font, _size, quad) => visitor.onChar(c, quad),
      endLine: () => visitor.endLine(),
      endTextBlock: () => visitor.endTextBlock(),
    });
    return;
  }
  const rect = (ptr: number): number[] => {
    const at = ptr >> 2;
    return [m.HEAPF32[at]!, m.HEAPF32[at + 1]!, m.HEAPF32[at + 2]!, m.HEAPF32[at + 3]!];
  };
  const quad = new Float32Array(8);
  for (let block = m._wasm_stext_page_get_first_block(stext.pointer); block; block = m._wasm_stext_block_get_next(block)) {
    if (m._wasm_stext_block_get_type(block) !== TEXT_BLOCK) continue;
    visitor.beginTextBlock(rect(m._wasm_stext_block_get_bbox(block)));
    for (let line = m._wasm_stext_block_get_first_line(block); line; line = m._wasm_stext_line_get_next(line)) {
      visitor.beginLine(rect(m._wasm_stext_line_get_bbox(line)));
      for (let ch = m._wasm_stext_line_get_first_char(line); ch; ch = m._wasm_stext_char_get_next(ch)) {
        const c = String.fromCodePoint(m._wasm_stext_char_get_c(ch));
        // The heap view is read again for each character: it is replaced when memory grows.
        const at = m._wasm_stext_char_get_quad(ch) >> 2;
        quad.set(m.HEAPF32.subarray(at, at + 8));
        visitor.onChar(c, quad);
      }
      visitor.endLine();
    }
    visitor.endTextBlock();
  }
}
