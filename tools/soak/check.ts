/**
 * The soak's verdict: invariants checked for every source key against the object now under it,
 * once the queue has drained and the settle phase has run. Each invariant is one entry of
 * INVARIANTS; the completion events' ("every final commit announced at least once", DESIGN §12)
 * reads `ctx.events`.
 */
import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, ListPartsCommand, type S3Client } from '@aws-sdk/client-s3';
import { isLegacy, isPageFailure, parseManifest, variantFolderOf, type Manifest, type ManifestPage } from '../../lib/job/manifest.js';
import { isNotFound } from '../../lib/s3/errors.js';
import { manifestKey } from '../../lib/s3/manifest-store.js';
import { announcedKey, outputLocation, type OutputLocation } from '../../lib/s3/layout.js';
import { plainEtag } from '../../lib/s3/source.js';
import { PNG } from 'pngjs';
import type { Expected } from './docs.js';

/** A final render's completion event, as an events source reports it (DESIGN §12). */
export interface FinalEvent {
  key: string;
  etag: string;
  status: string;
  generation: string;
  /** detail.renderId: the same for every copy of one commit, different for every commit (absent before issue 27). */
  renderId?: string;
}

/** Where the checker reads completion events from (a rule on the bus that fills a queue). */
export interface EventsSource {
  /** Every final event seen for this source key during the soak. */
  finalEvents(key: string): Promise<FinalEvent[]>;
  /** True when an invocation about this key was killed or timed out (said with a missing event: the kill window of issue 27). */
  interrupted?(key: string): boolean;
}

/**
 * What the soak saw of the paths beside the render function's own (issue 27), per source key:
 * filled while the soak runs, read by the invariants after settle.
 */
export interface PathRecords {
  /** Pages on demand whose answer was wrong (a 302 to a torn image, another page, an old source, a 5xx). */
  pageProblems: ReadonlyMap<string, readonly string[]>;
  /** IIIF answers that were wrong (tools/soak/iiif.ts): a status or error body the spec does not allow, a size not the page's, a stale tile. */
  iiifProblems: ReadonlyMap<string, readonly string[]>;
  /** S3 writes of the page function outside a variant folder of the key's sources. */
  outsideWrites: ReadonlyMap<string, readonly string[]>;
  /** Render requests the schedule or a batch task dispatched that the render function then skipped as up to date, by phase. */
  upToDateDispatches: ReadonlyMap<string, readonly string[]>;
  /** Keys the settle pass had to render: their own upload's events did not. */
  renderedBySettle: ReadonlyMap<string, readonly string[]>;
  /** Batch Operations tasks without exactly one result, or with the wrong one. */
  batchProblems: ReadonlyMap<string, readonly string[]>;
}

export interface CheckContext {
  s3: S3Client;
  bucket: string;
  prefixes: { inputPrefix: string; outputPrefix: string };
  /** What the object with this etag must end as. */
  expectedFor(etag: string): Expected | undefined;
  /** Keys of multipart uploads a kill may have left (the bucket's lifecycle rule removes them: template.yaml). */
  killedMultipartKeys: ReadonlySet<string>;
  /** Dead-lettered message bodies, as drained after the run. */
  deadLetters: readonly string[];
  events?: EventsSource;
  paths?: PathRecords;
  /** The page function's IIIF Presentation manifest of a source key, asked after settle. */
  iiif?: { manifest(key: string): Promise<{ status: number; headers: Record<string, string>; body: string }> };
}

/** What the checker knows about one source key, read once and shared by the invariants. */
export interface KeyState {
  key: string;
  out: OutputLocation;
  current: { etag: string; size: number } | undefined;
  manifest: Manifest | undefined;
  /** Why the manifest could not be read, if so. */
  manifestProblem?: string;
  /** Every object under the output prefix that belongs to this key (not to a nested source). */
  outputs: { key: string; size: number }[];
}

export interface Violation {
  key: string;
  invariant: string;
  detail: string;
}

export interface Invariant {
  name: string;
  check(state: KeyState, ctx: CheckContext): Promise<string[]>;
}

/** Bytes a design-allowed leftover holds, by reason: reported with the figures, not as violations. */
export type Leftovers = Map<string, { count: number; bytes: number }>;

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Width and height from a PNG's IHDR, a JPEG's first SOF marker, a WebP's VP8/VP8L/VP8X header or an AVIF's ispe box; undefined when it is none of them. */
export function imageSize(bytes: Buffer): { type: string; width: number; height: number } | undefined {
  if (bytes.length >= 24 && bytes.subarray(0, 8).equals(PNG_SIGNATURE) && bytes.toString('latin1', 12, 16) === 'IHDR') {
    return { type: 'image/png', width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
  }
  if (bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8) {
    let at = 2;
    while (at + 9 < bytes.length) {
      if (bytes[at] !== 0xff) return undefined;
      const marker = bytes[at + 1]!;
      const length = bytes.readUInt16BE(at + 2);
      // SOF0-SOF15, except DHT (C4), JPG (C8) and DAC (CC).
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        return { type: 'image/jpeg', width: bytes.readUInt16BE(at + 7), height: bytes.readUInt16BE(at + 5) };
      }
      at += 2 + length;
    }
  }
  if (bytes.length >= 30 && bytes.toString('latin1', 0, 4) === 'RIFF' && bytes.toString('latin1', 8, 12) === 'WEBP') {
    const chunk = bytes.toString('latin1', 12, 16);
    // Lossy: a 3-byte frame tag, the start code 9d 01 2a, then 14-bit sides.
    if (chunk === 'VP8 ' && bytes[23] === 0x9d && bytes[24] === 0x01 && bytes[25] === 0x2a) {
      return { type: 'image/webp', width: bytes.readUInt16LE(26) & 0x3fff, height: bytes.readUInt16LE(28) & 0x3fff };
    }
    // Lossless: the signature 0x2f, then width-1 and height-1 in 14 bits each.
    if (chunk === 'VP8L' && bytes[20] === 0x2f) {
      const bits = bytes.readUInt32LE(21);
      return { type: 'image/webp', width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
    }
    // Extended: the canvas's width-1 and height-1 in 24 bits each.
    if (chunk === 'VP8X') return { type: 'image/webp', width: bytes.readUIntLE(24, 3) + 1, height: bytes.readUIntLE(27, 3) + 1 };
  }
  // AVIF (ISO BMFF): an ftyp box naming avif, the primary image's sides in its first ispe box (after 4 bytes of version and flags).
  if (bytes.length >= 16 && bytes.toString('latin1', 4, 8) === 'ftyp' && bytes.subarray(8, Math.min(bytes.length, bytes.readUInt32BE(0))).includes('avif')) {
    const at = bytes.indexOf('ispe');
    if (at >= 4 && at + 16 <= bytes.length) return { type: 'image/avif', width: bytes.readUInt32BE(at + 8), height: bytes.readUInt32BE(at + 12) };
  }
  return undefined;
}

/** Whether the top-level boxes of an ISO BMFF file (AVIF) add up to the file, none cut short. */
function boxesWhole(bytes: Buffer): boolean {
  let at = 0;
  while (at + 8 <= bytes.length) {
    let size = bytes.readUInt32BE(at);
    if (size === 1) size = at + 16 <= bytes.length ? Number(bytes.readBigUInt64BE(at + 8)) : 0;
    else if (size === 0) size = bytes.length - at;
    if (size < 8) return false;
    at += size;
  }
  return at === bytes.length;
}

/**
 * Why these bytes are not one whole image (undefined when they are): a PNG decoded through
 * (every chunk's CRC, the zlib stream to its end), a JPEG that ends with its EOI marker, a
 * WebP whose RIFF size is the file's. A torn or truncated object fails.
 */
export function notWhole(bytes: Buffer): string | undefined {
  const size = imageSize(bytes);
  if (!size) return `neither PNG, JPEG, WebP nor AVIF (${bytes.length} bytes)`;
  if (size.type === 'image/png') {
    try {
      const png = PNG.sync.read(bytes);
      return png.width === size.width && png.height === size.height ? undefined : `PNG decodes to ${png.width}x${png.height}, its header says ${size.width}x${size.height}`;
    } catch (err) {
      return `PNG does not decode: ${(err as Error).message}`;
    }
  }
  if (size.type === 'image/jpeg') return bytes.length >= 4 && bytes[bytes.length - 2] === 0xff && bytes[bytes.length - 1] === 0xd9 ? undefined : 'JPEG without its end marker (truncated)';
  if (size.type === 'image/avif') return boxesWhole(bytes) ? undefined : `AVIF boxes do not add up to the file's ${bytes.length} bytes (truncated)`;
  return bytes.readUInt32LE(4) + 8 === bytes.length ? undefined : `WebP RIFF size ${bytes.readUInt32LE(4) + 8}, file ${bytes.length} bytes`;
}

const renderedPages = (manifest: Manifest): ManifestPage[] => manifest.pages.filter((p): p is ManifestPage => !isPageFailure(p));

/** Every key a manifest points at: pages, thumbnails, page text. */
function listedKeys(manifest: Manifest): string[] {
  return renderedPages(manifest).flatMap((p) => [p.key, ...(p.thumbnail ? [p.thumbnail.key] : []), ...(p.text ? [p.text.key] : [])]);
}

function isJson(bytes: Buffer): boolean {
  try {
    JSON.parse(bytes.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}

async function getBytes(s3: S3Client, bucket: string, key: string): Promise<{ body: Buffer; contentType?: string; metadata: Record<string, string> } | undefined> {
  try {
    const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return { body: Buffer.from(await response.Body!.transformToByteArray()), ...(response.ContentType ? { contentType: response.ContentType } : {}), metadata: response.Metadata ?? {} };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export const INVARIANTS: Invariant[] = [
  {
    name: 'manifest describes the current object',
    async check(state) {
      if (!state.current) return [];
      if (!state.manifest) return [`no manifest for the current object (${state.manifestProblem ?? 'none at all'})`];
      const problems: string[] = [];
      if (state.manifest.source.etag !== state.current.etag) problems.push(`manifest etag ${state.manifest.source.etag}, current object ${state.current.etag}`);
      if (state.manifest.source.size !== state.current.size) problems.push(`manifest size ${state.manifest.source.size}, current object ${state.current.size}`);
      return problems;
    },
  },
  {
    name: 'status as expected',
    async check(state, ctx) {
      if (!state.current || !state.manifest || state.manifest.source.etag !== state.current.etag) return [];
      const expected = ctx.expectedFor(state.current.etag);
      if (!expected) return [`the soak did not upload etag ${state.current.etag}`];
      const m = state.manifest;
      if (expected.status === 'failed') {
        return m.status === 'failed' && m.error?.code === expected.code ? [] : [`expected failed ${expected.code}, found ${m.status}${m.error ? ` ${m.error.code}` : ''}`];
      }
      if (m.status !== 'complete') return [`expected complete, found ${m.status}${m.error ? ` ${m.error.code}: ${m.error.message}` : ''}${m.nextPage ? ` (nextPage ${m.nextPage})` : ''}`];
      const failed = m.pages.filter(isPageFailure);
      if (failed.length > 0) return [`complete with ${failed.length} failed pages`];
      const numbers = m.pages.map((p) => p.number);
      if (numbers.length !== m.pageCount || numbers.some((n, i) => n !== i + 1)) return [`complete but lists pages ${numbers.slice(0, 5).join(',')}… of ${m.pageCount}`];
      return [];
    },
  },
  {
    name: 'every listed page exists, decodes and is as listed',
    async check(state, ctx) {
      if (!state.manifest) return [];
      const problems: string[] = [];
      const m = state.manifest;
      for (const page of renderedPages(m)) {
        const got = await getBytes(ctx.s3, ctx.bucket, page.key);
        if (!got) {
          problems.push(`page ${page.number} missing: ${page.key}`);
          continue;
        }
        const image = imageSize(got.body);
        const torn = notWhole(got.body);
        if (torn) problems.push(`page ${page.number} is not a whole image (${torn}): ${page.key}`);
        if (image) {
          if (image.width !== page.width || image.height !== page.height) problems.push(`page ${page.number} is ${image.width}x${image.height}, listed ${page.width}x${page.height}`);
          if (image.type !== page.contentType) problems.push(`page ${page.number} is ${image.type}, listed ${page.contentType}`);
        }
        if (got.body.length !== page.bytes) problems.push(`page ${page.number} has ${got.body.length} bytes, listed ${page.bytes}`);
        if (got.contentType !== page.contentType) problems.push(`page ${page.number} stored as ${got.contentType}, listed ${page.contentType}`);
        if (got.metadata['source-etag'] !== m.source.etag || got.metadata['generation'] !== m.generation) {
          problems.push(`page ${page.number} metadata says etag ${got.metadata['source-etag']} generation ${got.metadata['generation']}`);
        }
        // Thumbnails and page text: there, whole, of this commit.
        for (const [what, extra] of [['thumbnail', page.thumbnail], ['text', page.text]] as const) {
          if (!extra) continue;
          const file = await getBytes(ctx.s3, ctx.bucket, extra.key);
          if (!file) problems.push(`page ${page.number}'s ${what} missing: ${extra.key}`);
          else if (what === 'thumbnail' && notWhole(file.body)) problems.push(`page ${page.number}'s thumbnail is not a whole image (${notWhole(file.body)})`);
          else if (what === 'text' && !isJson(file.body)) problems.push(`page ${page.number}'s text is not JSON: ${extra.key}`);
          else if (file.metadata['generation'] !== undefined && file.metadata['generation'] !== m.generation) problems.push(`page ${page.number}'s ${what} is of generation ${file.metadata['generation']}`);
        }
      }
      return problems;
    },
  },
  {
    // Pages, thumbnails, text, fan-out part records, page variants and event markers: only the current commit's.
    name: 'nothing unlisted under the output prefix',
    async check(state, ctx) {
      if (!state.manifest) return state.outputs.length > 0 ? [`${state.outputs.length} objects and no manifest: ${state.outputs.map((o) => o.key).slice(0, 3).join(', ')}`] : [];
      const allowed = new Set([...listedKeys(state.manifest), manifestKey(state.out), announcedKey(state.out, state.manifest.generation)]);
      // The completion event's marker of the committed generation is the one file no manifest lists;
      // the page function's variants and IIIF images of the current source (any page, any options) are its cache, not leftovers.
      const variants = state.current ? `${state.out.prefix}${variantFolderOf(state.current.etag)}/` : undefined;
      const extra = state.outputs.filter((o) => !allowed.has(o.key) && !(variants && o.key.startsWith(variants) && /\/(?:(?:variant|iiif)-\d{4,}-[0-9a-f]{16}\.\w+|iiif-pages\.json)$/.test(o.key)));
      if (extra.length === 0) return [];
      const bytes = extra.reduce((sum, o) => sum + o.size, 0);
      const kinds = new Map<string, number>();
      for (const o of extra) {
        const kind = /\/(?:(page|thumb|text|part|variant|iiif)-[^/]*|(announced)\.json)$/.exec(o.key)?.slice(1).find(Boolean) ?? 'other';
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      }
      const byKind = [...kinds].map(([k, n]) => `${n} ${k}`).join(', ');
      return [`${extra.length} unlisted objects (${byKind}; ${bytes} bytes): ${extra.map((o) => o.key.slice(state.out.prefix.length)).slice(0, 4).join(', ')}${extra.length > 4 ? ', …' : ''}`];
    },
  },
  {
    // At least once, kills included (DESIGN §12, issue 27): copies share the commit's renderId; two commits never share one.
    name: 'every final commit announced, one renderId per commit',
    async check(state, ctx) {
      if (!ctx.events) return [];
      const all = await ctx.events.finalEvents(state.key);
      const problems: string[] = [];
      const byId = new Map<string, FinalEvent[]>();
      for (const e of all) {
        if (e.renderId === undefined) continue;
        byId.set(e.renderId, [...(byId.get(e.renderId) ?? []), e]);
      }
      for (const [id, copies] of byId) {
        const commits = new Set(copies.map((e) => `${e.etag} ${e.generation} ${e.status}`));
        if (commits.size > 1) problems.push(`renderId ${id} is on ${commits.size} different commits: ${[...commits].join('; ')}`);
      }
      const m = state.manifest;
      if (!state.current || !m || isLegacy(m) || m.source.etag !== state.current.etag) return problems;
      if (m.status === 'partial' && m.nextPage !== undefined) return problems;
      const mine = all.filter((e) => e.etag === m.source.etag && e.generation === m.generation && e.status === m.status);
      const wrong = all.filter((e) => e.etag === m.source.etag && e.generation === m.generation && e.status !== m.status);
      if (wrong.length > 0) problems.push(`an event says ${wrong[0]!.status}, the manifest ${m.status}`);
      if (mine.length === 0) problems.push(`no completion event for the ${m.status} manifest of generation ${m.generation}${ctx.events.interrupted?.(state.key) ? ' (an invocation of the key was killed or timed out)' : ''}`);
      const missing = mine.filter((e) => e.renderId === undefined).length;
      if (missing > 0) problems.push(`${missing} of ${mine.length} events for the final commit carry no detail.renderId`);
      const ids = new Set(mine.flatMap((e) => (e.renderId === undefined ? [] : [e.renderId])));
      // One result (source etag, generation, status) announced under two ids: a consumer cannot drop the copy by renderId
      // (seen when a repeat of a failed render was committed again after a kill between PutEvents and its marker).
      if (ids.size > 1) problems.push(`${mine.length} events for one result (etag, generation, status) carry ${ids.size} renderIds: ${[...ids].join(', ')}`);
      return problems;
    },
  },
  ...(
    [
      ['every page on demand is whole, of the page asked, of a current source', 'pageProblems'],
      ['every IIIF answer is a spec status (errors in JSON), of the size its page and request give, of a current source', 'iiifProblems'],
      ["the page function writes only in its source's cache prefix", 'outsideWrites'],
      ['no dispatch skipped as up to date', 'upToDateDispatches'],
      ["rendered by its own upload's events (nothing left for the settle pass)", 'renderedBySettle'],
      ['every batch task gets exactly one right result', 'batchProblems'],
    ] as const
  ).map(
    ([name, field]): Invariant => ({
      name,
      async check(state, ctx) {
        return [...(ctx.paths?.[field].get(state.key) ?? [])];
      },
    }),
  ),
  {
    // After settle (DESIGN §14): the manifest a viewer opens lists what the eager render committed.
    name: 'the IIIF manifest has a canvas per page of the committed manifest, seeAlso per page text',
    async check(state, ctx) {
      const m = state.manifest;
      if (!ctx.iiif || !state.current || !m || m.source.etag !== state.current.etag) return [];
      const answer = await ctx.iiif.manifest(state.key);
      if (m.status === 'failed') {
        const code = (() => {
          try {
            return (JSON.parse(answer.body) as { error?: { code?: string } }).error?.code;
          } catch {
            return undefined;
          }
        })();
        return answer.status === 422 && code === m.error?.code ? [] : [`the committed manifest failed ${m.error?.code}; the IIIF manifest answered ${answer.status} ${code ?? answer.body.slice(0, 120)}`];
      }
      if (m.status !== 'complete') return [];
      let body = answer.body;
      if (answer.status === 302) body = await (await fetch(answer.headers['location']!)).text();
      else if (answer.status !== 200) return [`the IIIF manifest answered ${answer.status}: ${body.slice(0, 160)}`];
      let iiif: { items?: { seeAlso?: unknown[] }[] };
      try {
        iiif = JSON.parse(body) as typeof iiif;
      } catch {
        return [`the IIIF manifest is not JSON: ${body.slice(0, 160)}`];
      }
      const canvases = iiif.items ?? [];
      const problems: string[] = [];
      if (canvases.length !== m.pageCount) problems.push(`the IIIF manifest has ${canvases.length} canvases, the committed manifest ${m.pageCount} pages`);
      const texts = renderedPages(m).filter((p) => p.text).length;
      const seeAlso = canvases.filter((c) => (c.seeAlso ?? []).length > 0).length;
      if (seeAlso !== texts) problems.push(`the IIIF manifest links page text (seeAlso) on ${seeAlso} canvases, the committed manifest has text for ${texts} pages`);
      return problems;
    },
  },
  {
    name: 'no dead-lettered message',
    async check(state, ctx) {
      const mine = ctx.deadLetters.filter((body) => bodyKeys(body).includes(state.key));
      return mine.length > 0 ? [`${mine.length} message(s) in the dead-letter queue: ${mine[0]!.slice(0, 160)}`] : [];
    },
  },
];

/** The source keys a queue message is about. */
export function bodyKeys(body: string): string[] {
  try {
    const value = JSON.parse(body) as { type?: string; key?: string; Records?: { s3?: { object?: { key?: string } } }[] };
    if (value.type === 'render' && value.key) return [value.key];
    return (value.Records ?? []).map((r) => decodeURIComponent((r.s3?.object?.key ?? '').replace(/\+/g, ' ')));
  } catch {
    return [];
  }
}

async function listAll(s3: S3Client, bucket: string, prefix: string): Promise<{ key: string; size: number }[]> {
  const found: { key: string; size: number }[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
    found.push(...(page.Contents ?? []).map((o) => ({ key: o.Key!, size: o.Size ?? 0 })));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return found;
}

async function stateOf(ctx: CheckContext, key: string, sourceKeys: ReadonlySet<string>): Promise<KeyState> {
  const out = outputLocation(ctx.bucket, key, { ...ctx.prefixes, outputBucket: undefined });
  let current: KeyState['current'];
  try {
    const head = await ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key }));
    current = { etag: plainEtag(head.ETag), size: head.ContentLength ?? 0 };
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  let manifest: Manifest | undefined;
  let manifestProblem: string | undefined;
  const text = await getBytes(ctx.s3, ctx.bucket, manifestKey(out));
  if (text) {
    const parsed = parseManifest(text.body.toString('utf8'));
    if (parsed && !isLegacy(parsed)) manifest = parsed;
    else manifestProblem = 'not a valid v2 manifest';
  }
  // A nested source's outputs (rendered/a.pdf/b.pdf/…) are that source's, not this one's.
  const nested = [...sourceKeys].filter((k) => k !== key).map((k) => outputLocation(ctx.bucket, k, { ...ctx.prefixes, outputBucket: undefined }).prefix);
  const outputs = (await listAll(ctx.s3, ctx.bucket, out.prefix)).filter((o) => !nested.some((p) => p.startsWith(out.prefix) && o.key.startsWith(p)));
  return { key, out, current, manifest, ...(manifestProblem ? { manifestProblem } : {}), outputs };
}

export interface CheckResult {
  violations: Violation[];
  passed: number;
  failed: number;
  leftovers: Leftovers;
}

/** Runs every invariant on every key (source keys are the unit), then the bucket-wide ones. */
export async function checkInvariants(ctx: CheckContext, sourceKeys: readonly string[], invariants: readonly Invariant[] = INVARIANTS): Promise<CheckResult> {
  const violations: Violation[] = [];
  const failedKeys = new Set<string>();
  const keys = new Set(sourceKeys);
  for (const key of [...keys].sort()) {
    const state = await stateOf(ctx, key, keys);
    for (const invariant of invariants) {
      for (const detail of await invariant.check(state, ctx)) {
        violations.push({ key, invariant: invariant.name, detail });
        failedKeys.add(key);
      }
    }
  }
  // Incomplete multipart uploads: a kill mid-upload leaves one by design (template.yaml's lifecycle rule aborts it); any other is a violation.
  const leftovers: Leftovers = new Map();
  let keyMarker: string | undefined;
  let uploadMarker: string | undefined;
  for (;;) {
    const page = await ctx.s3.send(new ListMultipartUploadsCommand({ Bucket: ctx.bucket, ...(keyMarker ? { KeyMarker: keyMarker, UploadIdMarker: uploadMarker } : {}) }));
    for (const upload of page.Uploads ?? []) {
      const owner = [...keys].find((k) => upload.Key!.startsWith(outputLocation(ctx.bucket, k, { ...ctx.prefixes, outputBucket: undefined }).prefix)) ?? upload.Key!;
      if (ctx.killedMultipartKeys.has(upload.Key!)) {
        const parts = await ctx.s3.send(new ListPartsCommand({ Bucket: ctx.bucket, Key: upload.Key!, UploadId: upload.UploadId! }));
        const entry = leftovers.get('incomplete multipart upload of a killed container') ?? { count: 0, bytes: 0 };
        entry.count++;
        entry.bytes += (parts.Parts ?? []).reduce((sum, p) => sum + (p.Size ?? 0), 0);
        leftovers.set('incomplete multipart upload of a killed container', entry);
        continue;
      }
      violations.push({ key: owner, invariant: 'no incomplete multipart upload', detail: `${upload.Key} (upload ${upload.UploadId})` });
      failedKeys.add(owner);
    }
    if (!page.IsTruncated) break;
    keyMarker = page.NextKeyMarker;
    uploadMarker = page.NextUploadIdMarker;
  }
  return { violations, passed: keys.size - [...failedKeys].filter((k) => keys.has(k)).length, failed: failedKeys.size, leftovers };
}
