/**
 * Committing a render (docs/contract.md, "The manifest"): only a render of the object that is
 * current in S3 replaces the manifest, and only by compare-and-swap. A lost race re-reads and
 * decides: the same generation already as far along means done; a newer source means
 * superseded (and this render's own files go, unless the manifest already points at them);
 * anything else is tried again against the new etag. After a commit the other generations go,
 * and the part records of a final one: on every path that finds the render committed, not only
 * the one that wrote it (a crash after the PUT, or a PUT whose answer was lost and whose retry
 * got 412, would otherwise leave them for good). Why not a sweep instead: the clean-up costs one
 * LIST where it finds the render committed (the commit, a duplicate or late message), while a
 * sweep of what no manifest points at would list every prefix of the bucket on a schedule.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Announcement, Announcer } from '../events/completion.js';
import { isLegacy, variantFolderOf, type Manifest } from '../job/manifest.js';
import { commitManifest, readManifest } from '../s3/manifest-store.js';
import { cleanUpAfterCommit, deleteGeneration } from '../s3/page-store.js';
import { headCurrent } from '../s3/source.js';
import type { OutputLocation } from '../s3/layout.js';

export type CommitResult = 'committed' | 'superseded' | 'duplicate';

/** A committed render whose completion event could not be put in this invocation: transient, so the message is retried. */
export class CompletionEventNotSentError extends Error {
  override readonly name = 'CompletionEventNotSent';
}

/** How far a manifest got: a finished render (complete, failed, partial without nextPage) beats any unfinished one. */
function progress(manifest: Manifest): number {
  return manifest.status === 'partial' && manifest.nextPage !== undefined ? manifest.nextPage : Number.POSITIVE_INFINITY;
}

/** Compare-and-swap attempts before the invocation gives up (and is retried). */
const MAX_ATTEMPTS = 5;

export class ManifestCommitter {
  constructor(
    private readonly s3: S3Client,
    private readonly out: OutputLocation,
    private readonly source: { bucket: string; key: string },
    /** The manifest's etag when the render started; undefined when there was none. */
    private expectedEtag: string | undefined,
    /** Announces the final commits (lib/events/completion.ts), beside the clean-up; undefined when events are off. */
    private readonly announcer?: Announcer,
  ) {}

  async commit(manifest: Manifest): Promise<CommitResult> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await headCurrent(this.s3, this.source.bucket, this.source.key);
      if (!current || current.etag !== manifest.source.etag) {
        await this.discard(manifest.generation);
        return 'superseded';
      }
      const etag = await commitManifest(this.s3, this.out, manifest, this.expectedEtag);
      if (etag !== null) {
        this.expectedEtag = etag;
        await this.finish(manifest, this.announcer?.committed(manifest, etag));
        return 'committed';
      }
      const { manifest: stored, etag: storedEtag } = await readManifest(this.s3, this.out);
      this.expectedEtag = storedEtag;
      if (stored && !isLegacy(stored) && stored.generation === manifest.generation && progress(stored) >= progress(manifest)) {
        // Our own PUT, applied but its answer lost (the SDK's retry then got 412): the stored
        // manifest is ours to the millisecond, so it was this render that committed, and it announces it.
        if (JSON.stringify(stored) === JSON.stringify(manifest)) {
          await this.finish(manifest, this.announcer?.committed(manifest, storedEtag!));
          return 'committed';
        }
        // Another delivery's commit: its clean-up may not have run, nor its announcement.
        await this.finish(stored, this.announcer?.found(stored, storedEtag!));
        return 'duplicate';
      }
    }
    throw new Error(`the manifest under ${this.out.prefix} kept changing: ${MAX_ATTEMPTS} compare-and-swap attempts lost`);
  }

  /**
   * A manifest found committed for the current source (a duplicate, redelivered or late message):
   * its clean-up, again, and its completion event when `etag` (the manifest object's) is given
   * and no marker says the event went.
   */
  settle(stored: Manifest, etag?: string): Promise<void> {
    return this.finish(stored, etag !== undefined ? this.announcer?.found(stored, etag) : undefined);
  }

  /**
   * The clean-up, and beside it the announcement (never ahead of it: PutEvents' retries must not
   * hold back the deletes). An event not sent fails the request once the clean-up is done: the
   * message comes back, finds the render committed and no marker, and announces.
   */
  private async finish(manifest: Manifest, announcing: Promise<Announcement> | undefined): Promise<void> {
    const [announced] = await Promise.all([announcing, this.cleanUp(manifest)]);
    if (announced === 'unsent') throw new CompletionEventNotSentError(`the ${manifest.status} manifest under ${this.out.prefix} is committed, its completion event is not sent yet: the redelivered message announces it`);
  }

  private async cleanUp(manifest: Manifest): Promise<void> {
    // The page function's variants of these same bytes stay; those of an old source go.
    const keep = { generation: manifest.generation, final: progress(manifest) === Number.POSITIVE_INFINITY, alsoKeep: [variantFolderOf(manifest.source.etag)] };
    await cleanUpAfterCommit(this.s3, this.out, keep, async () => (await headCurrent(this.s3, this.source.bucket, this.source.key))?.etag === manifest.source.etag);
  }

  /**
   * For work that commits nothing yet (a fan-out range whose set is not complete): if the source
   * was replaced meanwhile, this render's files go, as a superseded commit's do. Asked after the
   * files were written: a newer render whose clean-up listed the prefix before they existed
   * committed after the new upload, so this HEAD sees that upload.
   */
  async discardIfSuperseded(sourceEtag: string, generation: string): Promise<boolean> {
    const current = await headCurrent(this.s3, this.source.bucket, this.source.key);
    if (current && current.etag === sourceEtag) return false;
    await this.discard(generation);
    return true;
  }

  /** A superseded render's files, unless the stored manifest points at them (an earlier checkpoint of ours): the newer render's commit removes those. */
  private async discard(generation: string): Promise<void> {
    const { manifest: stored } = await readManifest(this.s3, this.out);
    if (stored && !isLegacy(stored) && stored.generation === generation) return;
    await deleteGeneration(this.s3, this.out, generation);
  }
}
