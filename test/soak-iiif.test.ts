/**
 * The soak's IIIF checks (tools/soak/iiif.ts) on answers made up here, in milliseconds: what a
 * soak run rarely draws (a tile asked before and after a re-upload) is judged as a run would.
 * A stale cache hit, a 304 or an unchanged ETag across a re-upload, an info.json or a tile of
 * the wrong size, an error without its JSON body: each reported; the right answers are not.
 */
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import type { PageBox } from '../lib/engine/options.js';
import { IiifRequests, type IiifAnswer, type IiifAsk, type UploadRecord } from '../tools/soak/iiif.js';
import { Prng } from '../tools/soak/prng.js';

const KEY = 'incoming/soak/000-a.pdf';
// Letter, then A4, at 72 dpi: 612x792 and 595x842.
const BOXES: Record<string, PageBox[]> = { e1: [[0, 0, 612, 792]], e2: [[0, 0, 595, 842]] };
/** e1 current until 1000 ms, e2 from 1000 ms (its upload done at 1010). */
const UPLOADS = new Map<string, UploadRecord[]>([
  [
    KEY,
    [
      { etag: 'e1', startedAt: 0, doneAt: 10 },
      { etag: 'e2', startedAt: 1000, doneAt: 1010 },
    ],
  ],
]);
const png = (width: number, height: number): Buffer => PNG.sync.write(new PNG({ width, height }));
const TILE: [string, string, string, string] = ['0,0,512,512', '256,', '0', 'default.png'];

function checker(): IiifRequests {
  return new IiifRequests({ baseUrl: 'https://iiif.test', dpi: 72, maxPagePixels: 40_000_000, boxesOf: (etag) => BOXES[etag] }, new Prng(1));
}

function answer(ask: IiifAsk, at: number, status: number, headers: Record<string, string>, body: Buffer): IiifAnswer {
  return { ask, path: `/iiif/3/${ask.kind}`, startedAt: at, endedAt: at + 50, status, headers: { 'access-control-allow-origin': '*', ...headers }, body };
}

const tile = (ifNoneMatch?: { etag: string; answer: number }): IiifAsk => ({ kind: 'image', key: KEY, page: 1, segments: TILE, ...(ifNoneMatch ? { ifNoneMatch } : {}) });
const image = (cache: string, etag: string) => ({ 'content-type': 'image/png', etag, 'x-page-cache': cache });

describe("the soak's IIIF checks", () => {
  it('pass right answers: info.json of the current source, a tile drawn then hit, a 304 within one source, a new ETag after a re-upload', () => {
    const iiif = checker();
    iiif.record(answer({ kind: 'info', key: KEY, page: 1 }, 100, 200, { 'content-type': 'application/json' }, Buffer.from(JSON.stringify({ id: `https://iiif.test/iiif/3/${encodeURIComponent(KEY)};1`, width: 612, height: 792 }))));
    iiif.record(answer(tile(), 200, 200, image('miss', '"a"'), png(256, 256)));
    iiif.record(answer(tile(), 300, 200, image('hit', '"a"'), png(256, 256)));
    iiif.record(answer(tile({ etag: '"a"', answer: 1 }), 400, 304, {}, Buffer.alloc(0)));
    // After the re-upload: drawn again (a miss, a new ETag), then a hit of that.
    iiif.record(answer(tile({ etag: '"a"', answer: 1 }), 2000, 200, image('miss', '"b"'), png(256, 256)));
    iiif.record(answer(tile(), 2100, 200, image('hit', '"b"'), png(256, 256)));
    iiif.record(answer({ kind: 'info', key: KEY, page: 1 }, 2200, 200, {}, Buffer.from(JSON.stringify({ id: `https://iiif.test/iiif/3/${encodeURIComponent(KEY)};1`, width: 595, height: 842 }))));
    iiif.record(answer({ kind: 'info', key: KEY, page: 2 }, 2300, 404, { 'content-type': 'application/json' }, Buffer.from(JSON.stringify({ error: { status: 404, code: 'PAGE_OUT_OF_RANGE', message: 'page 2 does not exist' } }))));
    expect(iiif.problems(UPLOADS)).toEqual(new Map());
  });

  it('report the image of a replaced source (a hit, a 304, an unchanged ETag), sizes that are not the page\'s, and errors without their JSON', () => {
    const iiif = checker();
    iiif.record(answer(tile(), 200, 200, image('miss', '"a"'), png(256, 256)));
    // Only e2 is current for these: the first image was of e1.
    iiif.record(answer(tile(), 2000, 200, image('hit', '"a2"'), png(256, 256)));
    iiif.record(answer(tile({ etag: '"a"', answer: 0 }), 2100, 304, {}, Buffer.alloc(0)));
    iiif.record(answer(tile({ etag: '"a"', answer: 0 }), 2200, 200, image('miss', '"a"'), png(256, 256)));
    iiif.record(answer({ kind: 'info', key: KEY, page: 1 }, 2300, 200, {}, Buffer.from(JSON.stringify({ id: `https://iiif.test/iiif/3/${encodeURIComponent(KEY)};1`, width: 612, height: 792 }))));
    iiif.record(answer(tile(), 2400, 200, image('miss', '"c"'), png(256, 300)));
    iiif.record(answer({ kind: 'info', key: KEY, page: 1 }, 2500, 500, { 'content-type': 'text/plain' }, Buffer.from('oops')));
    const problems = iiif.problems(UPLOADS).get(KEY) ?? [];
    const expected = [
      /a cache hit, yet no earlier request of this image ran while its source \(e2\) was current/,
      /answered 304 to the ETag of the image of source e1, while only e2 was current/,
      /the ETag "a" did not change after the re-upload/,
      /info\.json says 612x792; the page's full image at IIIF_DPI 72 is 595x842/,
      /the image is 256x300; the request resolves to 256x256 on source e2/,
      /answered 500 without the JSON error body/,
    ];
    for (const pattern of expected) expect(problems.some((p) => pattern.test(p)), `${pattern}\n${problems.join('\n')}`).toBe(true);
    expect(problems).toHaveLength(expected.length);
  });
});
