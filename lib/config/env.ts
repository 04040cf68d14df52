/**
 * The function's configuration (docs/contract.md, "Configuration"), read from the environment once at cold start.
 * An invalid value stops start-up with one message naming the variable, its value and what
 * is allowed.
 */
import { readEndpoints, type AwsEndpoints } from '../aws/endpoint.js';
import { DEFAULT_JOB_OPTIONS, type JobOptions } from '../job/options.js';
import { InvalidSettingError, parseIntSetting, parseJobOptions } from './settings.js';

export interface Config {
  inputPrefix: string;
  /** Undefined: outputs go to the source bucket. */
  outputBucket?: string;
  outputPrefix: string;
  /** The render options of every object, unless its metadata overrides them (object-options.ts). */
  output: JobOptions;
  /** Pages uploaded at once, at most. */
  uploadConcurrency: number;
  /**
   * Local endpoints per AWS service (AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, or the alias
   * S3_ENDPOINT: lib/aws/endpoint.ts); empty in AWS.
   */
  endpoints: AwsEndpoints;
  /** The bucket both functions work on: the render function ignores events for others, the reprocess function scans only it. */
  sourceBucket?: string;
  /**
   * The render queue: S3 notifications arrive on it; continuations, fan-out ranges and the
   * reprocess function's requests are sent to it. Unset (a direct S3 trigger, local runs without
   * a queue): no fan-out, and a render out of time throws so the invocation is retried.
   */
  renderQueueUrl?: string;
  /** Documents with more pages are split into ranges of this many pages, one invocation each; 0 = off. */
  fanoutPages: number;
  /** The reprocess function leaves objects modified less than this long ago to their own events; 0 = none. */
  recentUploadMs: number;
  /** A document (or range) stops as `partial` after this many invocations or this much render time. */
  documentBudget: { maxHops: number; maxRenderMs: number };
  /** Per-page render time limit in ms; 0 = none. */
  pageTimeoutMs: number;
  /** The function's memory as Lambda reports it (AWS_LAMBDA_FUNCTION_MEMORY_SIZE): its vCPU share decides how many workers draw. */
  functionMemoryMb?: number;
  /** The EventBridge bus (name or ARN) that each final commit announces itself on (lib/events); undefined = no events. */
  eventBus?: string;
}

/** Every environment variable the functions read, so the template can be checked against it. */
export const CONFIG_ENV_VARS = [
  'INPUT_PREFIX',
  'OUTPUT_BUCKET',
  'OUTPUT_PREFIX',
  'FORMAT',
  'DPI',
  'WIDTH',
  'HEIGHT',
  'JPEG_QUALITY',
  'WEBP_QUALITY',
  'AVIF_QUALITY',
  'MAX_PAGE_PIXELS',
  'MAX_PAGES',
  'THUMBNAIL_WIDTH',
  'PAGE_TEXT',
  'UPLOAD_CONCURRENCY',
  'PAGE_TIMEOUT_MS',
  'S3_ENDPOINT',
  'RENDER_QUEUE_URL',
  'FANOUT_PAGES',
  'DOCUMENT_MAX_HOPS',
  'DOCUMENT_MAX_RENDER_SECONDS',
  'RECENT_UPLOAD_SECONDS',
  'SOURCE_BUCKET',
  'EVENT_BUS',
] as const;

/**
 * Read by the process, not by this code: the functions' environment sets them (template.yaml).
 * glibc raises its mmap threshold once large buffers (page bands, PNG data) are freed, and then
 * keeps later ones of that size in its heap, so a warm container would plateau 30-60 MB above
 * its baseline with no leak anywhere. Pinning the threshold makes freed buffers go back to the OS.
 */
export const PROCESS_ENV = { MALLOC_MMAP_THRESHOLD_: '131072' } as const;

export { InvalidSettingError };

type Env = Record<string, string | undefined>;

/** An S3 bucket name as this project accepts it (3-63 characters: a-z, 0-9, "." and "-"). */
export function isBucketName(name: string): boolean {
  return /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name);
}

function bucketSetting(name: string, value: string | undefined): string | undefined {
  const bucket = value || undefined;
  if (bucket !== undefined && !isBucketName(bucket)) {
    throw new InvalidSettingError(`${name}=${JSON.stringify(bucket)} is invalid: expected an S3 bucket name (3-63 characters: a-z, 0-9, "." and "-")`);
  }
  return bucket;
}

function prefixSetting(name: string, value: string | undefined, fallback: string): string {
  const prefix = value === undefined || value === '' ? fallback : value;
  if (prefix.startsWith('/')) throw new InvalidSettingError(`${name}=${JSON.stringify(prefix)} is invalid: an S3 key prefix does not start with "/"`);
  if (prefix !== '' && !prefix.endsWith('/')) throw new InvalidSettingError(`${name}=${JSON.stringify(prefix)} is invalid: a prefix must end with "/" (for example "${prefix}/")`);
  return prefix;
}

/**
 * A page still drawing after this fails with PAGE_TIMEOUT and the document goes on in a fresh
 * worker. The slowest honest page measured, a 30000x30000 px Flate image drawn at full size
 * (MuPDF inflates it again from the top for every band), took 199 s here; a hostile content
 * stream is still cut off within the function's 900 s.
 */
export const DEFAULT_PAGE_TIMEOUT_MS = 600_000;

/**
 * Pages per fan-out range. A range must be long enough that its invocation's fixed cost is small
 * beside its drawing, and short enough that a long document's ranges run side by side. Measured
 * (npm run bench:fanout, freeculture-book-352p at 150 dpi, warm containers of 1,769 MB): one
 * invocation draws 24 pages/s; 8 ranges of 50 pages cost 6.2 container-seconds more in all, about
 * 0.8 s a range (download, open, part record, merge). At 200 pages (8 s of drawing) that is ~10%,
 * and a 2,000-page document still runs as 10 ranges side by side.
 */
export const DEFAULT_FANOUT_PAGES = 200;
/** Invocations one document (or range) may take, and its render time across them. */
export const DEFAULT_DOCUMENT_BUDGET = { maxHops: 10, maxRenderSeconds: 3600 } as const;

/** True when one prefix starts with the other: in one bucket, outputs would land among the inputs. */
export function prefixesOverlap(config: Pick<Config, 'inputPrefix' | 'outputPrefix'>): boolean {
  return config.outputPrefix.startsWith(config.inputPrefix) || config.inputPrefix.startsWith(config.outputPrefix);
}

/** An EventBridge bus as PutEvents takes it: a name (`default`, `orders`, `aws.partner/…`) or a bus ARN. */
const EVENT_BUS = /^(arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus\/)?[A-Za-z0-9._\-/]{1,256}$/;

function eventBusSetting(value: string | undefined): string | undefined {
  const bus = value || undefined;
  if (bus !== undefined && !EVENT_BUS.test(bus)) {
    throw new InvalidSettingError(
      `EVENT_BUS=${JSON.stringify(bus)} is invalid: expected an EventBridge bus name (1-256 characters: A-Z, a-z, 0-9, ".", "-", "_", "/") or a bus ARN such as arn:aws:events:us-east-1:123456789012:event-bus/default; empty turns completion events off`,
    );
  }
  return bus;
}

export function loadConfig(env: Env = process.env): Config {
  const inputPrefix = prefixSetting('INPUT_PREFIX', env['INPUT_PREFIX'], 'incoming/');
  const outputPrefix = prefixSetting('OUTPUT_PREFIX', env['OUTPUT_PREFIX'], 'rendered/');
  const outputBucket = bucketSetting('OUTPUT_BUCKET', env['OUTPUT_BUCKET']);
  const sourceBucket = bucketSetting('SOURCE_BUCKET', env['SOURCE_BUCKET']);
  // In one bucket, outputs under the input prefix would re-trigger the function (and the other way round).
  if ((!outputBucket || outputBucket === sourceBucket) && prefixesOverlap({ inputPrefix, outputPrefix })) {
    throw new InvalidSettingError(
      `OUTPUT_PREFIX=${JSON.stringify(outputPrefix)} overlaps INPUT_PREFIX=${JSON.stringify(inputPrefix)} in the same bucket${outputBucket ? ` (OUTPUT_BUCKET is SOURCE_BUCKET)` : ''}: choose prefixes where neither starts with the other, or set OUTPUT_BUCKET to another bucket`,
    );
  }
  const output = parseJobOptions(
    {
      format: env['FORMAT'],
      dpi: env['DPI'],
      width: env['WIDTH'],
      height: env['HEIGHT'],
      jpegQuality: env['JPEG_QUALITY'],
      webpQuality: env['WEBP_QUALITY'],
      avifQuality: env['AVIF_QUALITY'],
      maxPagePixels: env['MAX_PAGE_PIXELS'],
      maxPages: env['MAX_PAGES'],
      thumbnailWidth: env['THUMBNAIL_WIDTH'],
      pageText: env['PAGE_TEXT'],
    },
    { format: 'FORMAT', dpi: 'DPI', width: 'WIDTH', height: 'HEIGHT', jpegQuality: 'JPEG_QUALITY', webpQuality: 'WEBP_QUALITY', avifQuality: 'AVIF_QUALITY', maxPagePixels: 'MAX_PAGE_PIXELS', maxPages: 'MAX_PAGES', thumbnailWidth: 'THUMBNAIL_WIDTH', pageText: 'PAGE_TEXT' },
    DEFAULT_JOB_OPTIONS,
    // The template always sets DPI: WIDTH/HEIGHT, when set, are the more specific choice.
    'ignored',
  );
  const uploadConcurrency = env['UPLOAD_CONCURRENCY'] ? parseIntSetting('UPLOAD_CONCURRENCY', env['UPLOAD_CONCURRENCY'], 1, 64) : 4;
  const pageTimeoutMs = env['PAGE_TIMEOUT_MS'] ? parseIntSetting('PAGE_TIMEOUT_MS', env['PAGE_TIMEOUT_MS'], 0, 900_000) : DEFAULT_PAGE_TIMEOUT_MS;
  const fanoutPages = env['FANOUT_PAGES'] ? parseIntSetting('FANOUT_PAGES', env['FANOUT_PAGES'], 0, 100_000) : DEFAULT_FANOUT_PAGES;
  const maxHops = env['DOCUMENT_MAX_HOPS'] ? parseIntSetting('DOCUMENT_MAX_HOPS', env['DOCUMENT_MAX_HOPS'], 1, 1000) : DEFAULT_DOCUMENT_BUDGET.maxHops;
  const maxRenderSeconds = env['DOCUMENT_MAX_RENDER_SECONDS']
    ? parseIntSetting('DOCUMENT_MAX_RENDER_SECONDS', env['DOCUMENT_MAX_RENDER_SECONDS'], 1, 86_400)
    : DEFAULT_DOCUMENT_BUDGET.maxRenderSeconds;
  // An upload's own S3 event may still wait in the queue this long after the upload (a burst).
  const recentUploadSeconds = env['RECENT_UPLOAD_SECONDS'] ? parseIntSetting('RECENT_UPLOAD_SECONDS', env['RECENT_UPLOAD_SECONDS'], 0, 86_400) : 300;
  const renderQueueUrl = env['RENDER_QUEUE_URL'] || undefined;
  if (renderQueueUrl !== undefined && !/^https?:\/\/[^/]+\/.+/.test(renderQueueUrl)) {
    throw new InvalidSettingError(`RENDER_QUEUE_URL=${JSON.stringify(renderQueueUrl)} is invalid: expected an SQS queue URL such as https://sqs.us-east-1.amazonaws.com/123456789012/render`);
  }
  const endpoints = readEndpoints(env);
  const eventBus = eventBusSetting(env['EVENT_BUS']);
  return {
    inputPrefix,
    ...(outputBucket ? { outputBucket } : {}),
    outputPrefix,
    output,
    uploadConcurrency,
    pageTimeoutMs,
    fanoutPages,
    documentBudget: { maxHops, maxRenderMs: maxRenderSeconds * 1000 },
    recentUploadMs: recentUploadSeconds * 1000,
    endpoints,
    ...(renderQueueUrl ? { renderQueueUrl } : {}),
    ...(env['AWS_LAMBDA_FUNCTION_MEMORY_SIZE'] ? { functionMemoryMb: parseIntSetting('AWS_LAMBDA_FUNCTION_MEMORY_SIZE', env['AWS_LAMBDA_FUNCTION_MEMORY_SIZE'], 128, 10_240) } : {}),
    ...(sourceBucket ? { sourceBucket } : {}),
    ...(eventBus ? { eventBus } : {}),
  };
}
