/**
 * The level cache: IIIF tiles of a page cut from its levels, the pyramidal TIFF of a PDF page
 * made lazily in the container's /tmp. A level is the page's full image scaled down by one of
 * info.json's scale factors (levelGeometry), drawn once, whole, band by band, by a fresh MuPDF
 * into a raw file here (a header, then packed rows: 3 bytes a pixel, or 1 when the page is all
 * gray). A tile of that level is then its rows' bytes read from the file (memory O(tile)), with
 * no MuPDF at all: on a scan MuPDF inflates the whole image up to the tile for every tile it
 * draws (1.4 s a 512 px tile of the 9000 px scan, docs/iiif.md "Latency").
 *
 * The files are bounded by a byte budget (IIIF_LEVEL_CACHE_MB): least recently used levels go
 * first, a level larger than the budget is never drawn (its tiles are drawn as regions). A file
 * appears whole or not at all (drawn to a temporary name, then renamed), is named by a hash of
 * the source's bytes (its etag), page and scale, and says its etag in its header: a re-upload
 * never reads an old level. Concurrent requests for one level in one process wait for one draw
 * (Lambda sends one request at a time; `npm run serve` and the tests do not), and a level some
 * request reads (a lease) is never evicted under it. What an earlier process left is removed at
 * the first use: nothing large is kept in memory, only this index of the files.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, createWriteStream, openSync, readSync } from 'node:fs';
import { mkdir, rename, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { PixelRect } from './image-request.js';

/** A level's pixels: width x height, `channels` bytes each (1 gray, 3 RGB). */
export interface LevelRaster {
  width: number;
  height: number;
  channels: 1 | 3;
}

export interface LevelLease {
  /** This request drew the level; false: it was in the cache (or another request drew it meanwhile). */
  drawn: boolean;
  raster: LevelRaster;
  /** The packed pixels of `rect` (in the level's pixels), read row by row: memory O(rect). */
  read(rect: PixelRect): Uint8Array;
  /** Lets the level be evicted again. */
  release(): void;
}

/**
 * A level is drawn in bands of this many bytes of RGB (RenderOptions.bandBytes), four times a
 * page's (BAND_BYTES): MuPDF decodes a Flate scan from its first row for every band, so the
 * 9000x9000 px scan's level 1 (243 MB) took 20.5 s in 16 MiB bands and 6.9 s in 64 MiB ones,
 * for a WebAssembly heap of 178 and 277 MiB (one run each on the shared machine: startRender
 * with `level: 1` on multipage-9000px-image.pdf p. 2 at 300 dpi). Still a band: a level of any
 * size is drawn in this much memory.
 */
export const LEVEL_BAND_BYTES = 64 * 2 ** 20;

/** The file's header: a line naming the format, then JSON (size, channels, the source's etag), padded. */
const HEADER_BYTES = 512;
const MAGIC = 'pdf-render IIIF level 1\n';

/** Bytes of a level's file. */
export function levelFileBytes(raster: LevelRaster): number {
  return HEADER_BYTES + raster.width * raster.height * raster.channels;
}

function headerOf(raster: LevelRaster, etag: string): Buffer {
  const text = `${MAGIC}${JSON.stringify({ width: raster.width, height: raster.height, channels: raster.channels, etag })}\n`;
  if (Buffer.byteLength(text) > HEADER_BYTES) throw new Error(`level header of ${Buffer.byteLength(text)} bytes: at most ${HEADER_BYTES}`);
  return Buffer.concat([Buffer.from(text), Buffer.alloc(HEADER_BYTES - Buffer.byteLength(text), 0x20)]);
}

function readHeader(path: string): LevelRaster & { etag: string } {
  const fd = openSync(path, 'r');
  try {
    const bytes = Buffer.alloc(HEADER_BYTES);
    const got = readSync(fd, bytes, 0, HEADER_BYTES, 0);
    const text = bytes.subarray(0, got).toString();
    if (!text.startsWith(MAGIC)) throw new Error(`${path} is not a level file`);
    const header = JSON.parse(text.slice(MAGIC.length, text.indexOf('\n', MAGIC.length))) as LevelRaster & { etag: string };
    if (!(header.width > 0 && header.height > 0 && (header.channels === 1 || header.channels === 3) && typeof header.etag === 'string')) throw new Error(`${path}: bad level header`);
    return header;
  } finally {
    closeSync(fd);
  }
}

/** Writes a level's file at `path`: the header, then `rows` (packed, as the raster says). */
export async function writeLevelFile(path: string, raster: LevelRaster, etag: string, rows: Readable): Promise<void> {
  const file = createWriteStream(path, { mode: 0o600 });
  file.write(headerOf(raster, etag));
  await pipeline(rows, file);
}

interface Entry {
  size: number;
  lastUsed: number;
  leases: number;
  raster: LevelRaster;
}

export class LevelCache {
  private readonly entries = new Map<string, Entry>();
  /** Levels being drawn, by id: true once the file is here, false when there was no room. */
  private readonly drawing = new Map<string, Promise<boolean>>();
  /** Bytes promised to levels being drawn (as RGB, the most a level takes). */
  private reserved = 0;
  private cleared: Promise<void> | undefined;
  private clock = 0;

  constructor(
    private readonly dir: string,
    readonly budgetBytes: number,
  ) {}

  /** Bytes of the level files here now. */
  get bytes(): number {
    let total = 0;
    for (const entry of this.entries.values()) total += entry.size;
    return total;
  }

  /** Whether level `id` is here now. */
  has(id: string): boolean {
    return this.entries.has(id);
  }

  /**
   * Level `id` (a hash naming the source's bytes, the page, the full image and the scale) of a
   * source whose etag is `etag`, `size` pixels: from here, or drawn now by `draw(path)` (which
   * writes the file with writeLevelFile). Undefined when it does not fit the budget or the disk:
   * the caller draws its region instead. Release the lease when the tile is read.
   */
  async acquire(id: string, etag: string, size: { width: number; height: number }, draw: (path: string) => Promise<void>): Promise<LevelLease | undefined> {
    if (!/^[0-9a-f]{64}$/.test(id)) throw new Error(`level id must be 64 hex digits, got ${JSON.stringify(id)}`);
    await (this.cleared ??= this.clear());
    let drawn = false;
    const pending = this.drawing.get(id);
    if (pending) {
      // Another request is drawing it: wait for that one (its failure is this request's too).
      await pending;
    } else if (!this.entries.has(id)) {
      const estimate = levelFileBytes({ ...size, channels: 3 });
      if (estimate > this.budgetBytes) return undefined;
      const drawing = this.draw(id, estimate, draw);
      this.drawing.set(id, drawing);
      try {
        drawn = await drawing;
      } finally {
        this.drawing.delete(id);
      }
    }
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    const path = this.pathOf(id);
    // The name is the source's etag's; the header says it too, and is checked: old pixels are never served.
    let header: LevelRaster & { etag: string };
    try {
      header = readHeader(path);
    } catch (err) {
      // Removed by another process sharing this /tmp (`npm run serve` beside the tests): drawn again.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || drawn) throw err;
      this.entries.delete(id);
      return this.acquire(id, etag, size, draw);
    }
    if (header.etag !== etag) throw new Error(`level ${id} belongs to etag ${header.etag}, not ${etag}`);
    entry.leases++;
    entry.lastUsed = ++this.clock;
    let released = false;
    const { raster } = entry;
    return {
      drawn,
      raster,
      read: (rect) => readRect(path, raster, rect),
      release: () => {
        if (released) return;
        released = true;
        entry.leases--;
      },
    };
  }

  private pathOf(id: string): string {
    return join(this.dir, `${id}.level`);
  }

  private async draw(id: string, estimate: number, draw: (path: string) => Promise<void>): Promise<boolean> {
    // Again each time: another process sharing this /tmp (`npm run serve` beside the tests) may have removed it.
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // Reserved before any await: two draws of different levels at once cannot both pass the budget.
    this.reserved += estimate;
    let room = false;
    try {
      room = await this.makeRoom();
    } finally {
      // Given back on every path that does not go on to draw (no room, or statfs/rm threw).
      if (!room) this.reserved -= estimate;
    }
    if (!room) return false;
    const part = join(this.dir, `${id}.${randomBytes(8).toString('hex')}.part`);
    try {
      await draw(part);
      const raster = readHeader(part);
      const size = (await stat(part)).size;
      if (size !== levelFileBytes(raster)) throw new Error(`level file of ${size} bytes for ${raster.width}x${raster.height}x${raster.channels}`);
      // A rename within one file system: readers see the whole file or none.
      await rename(part, this.pathOf(id));
      this.entries.set(id, { size, lastUsed: ++this.clock, leases: 0, raster: { width: raster.width, height: raster.height, channels: raster.channels } });
      return true;
    } catch (err) {
      await rm(part, { force: true });
      throw err;
    } finally {
      this.reserved -= estimate;
    }
  }

  /**
   * Evicts least recently used, unleased levels until the reserved draws fit the budget; false
   * if they cannot, or if the disk could not hold them even with every unleased level gone
   * (checked first: nothing is evicted for a draw that cannot happen; levels filling the disk
   * are evicted like any other).
   */
  private async makeRoom(): Promise<boolean> {
    const disk = await statfs(this.dir);
    let evictable = 0;
    for (const entry of this.entries.values()) if (entry.leases === 0) evictable += entry.size;
    if (disk.bavail * disk.bsize + evictable < this.reserved) return false;
    const byAge = [...this.entries.entries()].sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    let free = disk.bavail * disk.bsize;
    while (this.bytes + this.reserved > this.budgetBytes || free < this.reserved) {
      const oldest = byAge.shift();
      if (!oldest) return false;
      const [id, entry] = oldest;
      // Leased (or gone) since the list was made, during an earlier eviction's await: kept.
      if (entry.leases > 0 || this.entries.get(id) !== entry) continue;
      this.entries.delete(id);
      free += entry.size;
      await rm(this.pathOf(id), { force: true });
    }
    return true;
  }

  /** What an earlier process of this container left is removed: the index starts empty. */
  private async clear(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }
}

/**
 * `rect`'s pixels of a level file: each of its rows' bytes read in place. Synchronous preads: a
 * 512 px tile is 512 reads of 1.5 KB from a file just written (in the page cache), and the
 * request has nothing else to do meanwhile.
 */
function readRect(path: string, raster: LevelRaster, rect: PixelRect): Uint8Array {
  const { width, height, channels } = raster;
  if (rect.x < 0 || rect.y < 0 || rect.w < 1 || rect.h < 1 || rect.x + rect.w > width || rect.y + rect.h > height) {
    throw new RangeError(`rect ${rect.x},${rect.y},${rect.w},${rect.h} is outside the level's ${width}x${height}`);
  }
  const rowBytes = rect.w * channels;
  const out = new Uint8Array(rowBytes * rect.h);
  const fd = openSync(path, 'r');
  try {
    for (let row = 0; row < rect.h; row++) {
      const at = HEADER_BYTES + ((rect.y + row) * width + rect.x) * channels;
      for (let done = 0; done < rowBytes; ) {
        const got = readSync(fd, out, row * rowBytes + done, rowBytes - done, at + done);
        if (got === 0) throw new Error(`${path} ends before row ${rect.y + row}`);
        done += got;
      }
    }
  } finally {
    closeSync(fd);
  }
  return out;
}
