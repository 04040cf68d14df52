/**
 * The warm path: source PDFs kept in /tmp between invocations, one file per source etag, least
 * recently used first out when the next one would pass the cap. A second page of a document
 * then opens the file already there instead of downloading it again. Files appear whole or not
 * at all (downloaded to a temporary name, then renamed), and a file some request holds (a
 * lease) is never evicted under it, so even concurrent requests in one process (Lambda sends
 * one at a time; `npm run serve` and the tests do not) are safe. A source larger than the cap
 * is downloaded for its request alone and removed after it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, statfs, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { isPreconditionFailed } from '../s3/errors.js';
import { downloadTo, type SourceObject } from '../s3/source.js';
import { HttpError } from './errors.js';

export interface SourceLease {
  path: string;
  /** The file was already here: no download. */
  warm: boolean;
  /** Lets the file be evicted again (or removes it, for a source too large to keep). */
  release(): Promise<void>;
}

/** The source does not fit in the free space of /tmp, even with the cache emptied. */
export class SourceTooLargeError extends Error {
  override readonly name = 'SourceTooLargeError';
}

interface Entry {
  size: number;
  lastUsed: number;
  leases: number;
}

const FILE = /^([0-9a-f]{64})\.pdf$/;

export class SourceCache {
  private readonly entries = new Map<string, Entry>();
  private readonly downloads = new Map<string, Promise<void>>();
  private scanned: Promise<void> | undefined;
  private clock = 0;

  constructor(
    private readonly dir: string,
    private readonly capBytes: number,
  ) {}

  /** Bytes the cache holds now. */
  get bytes(): number {
    let total = 0;
    for (const entry of this.entries.values()) total += entry.size;
    return total;
  }

  /**
   * The file for `id` (a hash naming the source's bytes: bucket, key and etag), downloading it
   * with `download(path)` when it is not here. Release the lease when the file is no longer read.
   */
  async acquire(id: string, size: number, download: (path: string) => Promise<void>): Promise<SourceLease> {
    if (!/^[0-9a-f]{64}$/.test(id)) throw new Error(`source cache id must be 64 hex digits, got ${JSON.stringify(id)}`);
    await (this.scanned ??= this.scan());
    const pending = this.downloads.get(id);
    if (pending) await pending.catch(() => undefined);
    const path = join(this.dir, `${id}.pdf`);
    const existing = this.entries.get(id);
    if (existing) return this.lease(id, existing, path, true);

    if (size > this.capBytes) {
      // Too large to keep: this request's own copy, gone after it.
      const scratch = join(this.dir, `once-${randomBytes(8).toString('hex')}.part`);
      await this.ensureRoom(size, 0);
      try {
        await download(scratch);
      } catch (err) {
        await rm(scratch, { force: true });
        throw err;
      }
      return { path: scratch, warm: false, release: () => rm(scratch, { force: true }) };
    }
    const fetched = this.fetch(id, size, path, download);
    this.downloads.set(id, fetched);
    try {
      await fetched;
    } finally {
      this.downloads.delete(id);
    }
    return this.lease(id, this.entries.get(id)!, path, false);
  }

  private lease(id: string, entry: Entry, path: string, warm: boolean): SourceLease {
    entry.leases++;
    entry.lastUsed = ++this.clock;
    // The file's mtime carries the order across a restart of the process (scan()).
    void utimes(path, new Date(), new Date()).catch(() => undefined);
    let released = false;
    return {
      path,
      warm,
      release: async () => {
        if (released) return;
        released = true;
        entry.leases--;
        if (!this.entries.has(id) && entry.leases === 0) await rm(path, { force: true });
      },
    };
  }

  private async fetch(id: string, size: number, path: string, download: (path: string) => Promise<void>): Promise<void> {
    await this.ensureRoom(size, size);
    const part = join(this.dir, `${id}.${randomBytes(8).toString('hex')}.part`);
    try {
      await download(part);
      // A rename within one file system: readers see the whole file or none.
      await rename(part, path);
    } catch (err) {
      await rm(part, { force: true });
      throw err;
    }
    const actual = (await stat(path)).size;
    this.entries.set(id, { size: actual, lastUsed: ++this.clock, leases: 0 });
  }

  /** Evicts least recently used, unleased files until `kept` more bytes fit the cap and `needed` fit the disk. */
  private async ensureRoom(needed: number, kept: number): Promise<void> {
    const byAge = [...this.entries.entries()].filter(([, e]) => e.leases === 0).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    while (byAge.length > 0 && (this.bytes + kept > this.capBytes || (await this.freeBytes()) < needed)) {
      const [id] = byAge.shift()!;
      this.entries.delete(id);
      await rm(join(this.dir, `${id}.pdf`), { force: true });
    }
    const free = await this.freeBytes();
    if (free < needed) throw new SourceTooLargeError(`the file is ${needed} bytes; ${this.dir} has ${free} bytes free (raise the function's ephemeral storage)`);
  }

  private async freeBytes(): Promise<number> {
    const stats = await statfs(this.dir);
    return stats.bavail * stats.bsize;
  }

  /** What an earlier process of this container left: whole files are kept (oldest first out), partial ones removed. */
  private async scan(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const found: [string, Entry, number][] = [];
    for (const name of await readdir(this.dir)) {
      const match = FILE.exec(name);
      if (!match) {
        await rm(join(this.dir, name), { force: true });
        continue;
      }
      const info = await stat(join(this.dir, name));
      found.push([match[1]!, { size: info.size, lastUsed: 0, leases: 0 }, info.mtimeMs]);
    }
    found.sort((a, b) => a[2] - b[2]);
    for (const [id, entry] of found) {
      entry.lastUsed = ++this.clock;
      this.entries.set(id, entry);
    }
  }
}

/**
 * The source of one request (page URL or IIIF) from the warm cache, downloaded when it is not
 * there: the one home of its cache id (bucket, key and etag) and of the answers a failed download
 * gives, 422 TOO_LARGE and 409 SOURCE_CHANGED (replaced between the HEAD and the GET).
 */
export async function leaseSource(cache: SourceCache, s3: S3Client, bucket: string, key: string, current: SourceObject): Promise<SourceLease> {
  const id = createHash('sha256').update(`${bucket}\n${key}\n${current.etag}`).digest('hex');
  try {
    return await cache.acquire(id, current.size, (path) => downloadTo(s3, bucket, key, current, path));
  } catch (err) {
    if (err instanceof SourceTooLargeError) throw new HttpError(422, 'TOO_LARGE', err.message);
    if (isPreconditionFailed(err)) throw new HttpError(409, 'SOURCE_CHANGED', `${key} was replaced during the request: try again`);
    throw err;
  }
}
