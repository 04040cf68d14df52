import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULT_JOB_OPTIONS } from '../lib/job/options.js';
import { loadConfig } from '../lib/config/env.js';
import { DEFAULT_OUTPUT_OPTIONS } from '../lib/engine/options.js';
import { buildAll } from '../tools/build.js';
import { lambdaNode } from '../tools/lambda-node.js';
import { decodeEventKey, encodeEventKey, outputLocation, skipReason } from '../lib/s3/layout.js';

describe('configuration', () => {
  it('has the documented defaults', () => {
    expect(loadConfig({})).toEqual({
      inputPrefix: 'incoming/',
      outputPrefix: 'rendered/',
      output: DEFAULT_JOB_OPTIONS,
      uploadConcurrency: 4,
      pageTimeoutMs: 600_000,
      fanoutPages: 200,
      documentBudget: { maxHops: 10, maxRenderMs: 3_600_000 },
      recentUploadMs: 300_000,
      // No local endpoint: every client talks to AWS.
      endpoints: {},
    });
    expect(DEFAULT_OUTPUT_OPTIONS).toEqual({ format: 'png', dpi: 150, jpegQuality: 85, webpQuality: 80, avifQuality: 60, maxPagePixels: 40_000_000, maxPages: 0 });
  });

  it.each([
    [{ DPI: '0' }, /^DPI="0" is invalid: expected a whole number from 1 to 1200$/],
    [{ DPI: '1201' }, /^DPI="1201" is invalid/],
    [{ DPI: '150dpi' }, /^DPI="150dpi" is invalid/],
    [{ DPI: '72.5' }, /^DPI="72.5" is invalid/],
    [{ JPEG_QUALITY: '101' }, /^JPEG_QUALITY="101" is invalid: expected a whole number from 1 to 100$/],
    [{ AVIF_QUALITY: '0' }, /^AVIF_QUALITY="0" is invalid: expected a whole number from 1 to 100$/],
    [{ FORMAT: 'gif' }, /^FORMAT="gif" is invalid: expected "png", "jpeg", "webp" or "avif"$/],
    [{ MAX_PAGE_PIXELS: '-5' }, /^MAX_PAGE_PIXELS="-5" is invalid/],
    [{ MAX_PAGES: 'all' }, /^MAX_PAGES="all" is invalid/],
    [{ INPUT_PREFIX: 'incoming' }, /^INPUT_PREFIX="incoming" is invalid: a prefix must end with "\/"/],
    [{ OUTPUT_PREFIX: '/out/' }, /^OUTPUT_PREFIX="\/out\/" is invalid/],
    [{ OUTPUT_BUCKET: 'Not_A_Bucket' }, /^OUTPUT_BUCKET="Not_A_Bucket" is invalid/],
    [{ S3_ENDPOINT: 'localhost:9000' }, /^S3_ENDPOINT="localhost:9000" is invalid/],
    [{ INPUT_PREFIX: 'pdfs/', OUTPUT_PREFIX: 'pdfs/images/' }, /^OUTPUT_PREFIX="pdfs\/images\/" overlaps INPUT_PREFIX="pdfs\/" in the same bucket/],
    [{ INPUT_PREFIX: 'pdfs/in/', OUTPUT_PREFIX: 'pdfs/' }, /overlaps INPUT_PREFIX/],
    [{ INPUT_PREFIX: 'x/', OUTPUT_PREFIX: 'x/' }, /overlaps INPUT_PREFIX/],
    [{ THUMBNAIL_WIDTH: '5000' }, /^THUMBNAIL_WIDTH="5000" is invalid: expected a whole number from 0 to 2048$/],
    [{ PAGE_TEXT: 'sometimes' }, /^PAGE_TEXT="sometimes" is invalid: expected "true" or "false"$/],
    [{ FANOUT_PAGES: '-1' }, /^FANOUT_PAGES="-1" is invalid/],
    [{ DOCUMENT_MAX_HOPS: '0' }, /^DOCUMENT_MAX_HOPS="0" is invalid: expected a whole number from 1 to 1000$/],
    [{ RENDER_QUEUE_URL: 'render-queue' }, /^RENDER_QUEUE_URL="render-queue" is invalid: expected an SQS queue URL/],
    [{ RECENT_UPLOAD_SECONDS: 'soon' }, /^RECENT_UPLOAD_SECONDS="soon" is invalid/],
    [{ EVENT_BUS: 'my bus' }, /^EVENT_BUS="my bus" is invalid: expected an EventBridge bus name/],
    [{ EVENT_BUS: 'arn:aws:events:us-east-1:123:event-bus/default' }, /^EVENT_BUS="arn:aws:events:us-east-1:123:event-bus\/default" is invalid/],
  ])('refuses %j with one message naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('allows overlapping prefixes when outputs go to another bucket', () => {
    expect(loadConfig({ INPUT_PREFIX: 'x/', OUTPUT_PREFIX: 'x/', OUTPUT_BUCKET: 'images-bucket' }).outputBucket).toBe('images-bucket');
  });

  it('takes EVENT_BUS as a bus name or ARN; empty turns events off', () => {
    expect(loadConfig({ EVENT_BUS: 'default' }).eventBus).toBe('default');
    expect(loadConfig({ EVENT_BUS: 'arn:aws:events:eu-west-1:123456789012:event-bus/renders' }).eventBus).toBe('arn:aws:events:eu-west-1:123456789012:event-bus/renders');
    expect(loadConfig({ EVENT_BUS: '' }).eventBus).toBeUndefined();
  });

  it('accepts jpg as jpeg and trims whitespace', () => {
    expect(loadConfig({ FORMAT: ' JPG ', DPI: ' 300 ' }).output).toMatchObject({ format: 'jpeg', dpi: 300 });
  });

  it('stops the function at cold start on a bad value, naming it', async () => {
    // The deployed artifact, as Lambda loads it.
    const { RenderPdfFunction: dir } = await buildAll({ only: ['RenderPdfFunction'] });
    const handler = pathToFileURL(join(dir!, 'handler.mjs')).href;
    const result = spawnSync(lambdaNode(), ['--input-type=module', '-e', `await import(${JSON.stringify(handler)})`], {
      env: { ...process.env, DPI: 'high' },
      encoding: 'utf8',
    });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('DPI="high" is invalid: expected a whole number from 1 to 1200');
  });
});

describe('S3 layout', () => {
  it('decodes event keys the way S3 encodes them', () => {
    expect(decodeEventKey('incoming/a+b%2Bc/%C3%BC.pdf')).toBe('incoming/a b+c/ü.pdf');
    for (const key of ['incoming/a b+c/ü.pdf', 'incoming/100% (final).pdf', 'incoming/ä/ö/報告 v2.PDF']) {
      expect(decodeEventKey(encodeEventKey(key))).toBe(key);
    }
  });

  it('renders only .pdf keys under the input prefix', () => {
    const config = loadConfig({});
    expect(skipReason('incoming/a.pdf', config)).toBeNull();
    expect(skipReason('incoming/deep/A.PDF', config)).toBeNull();
    expect(skipReason('rendered/a.pdf/page-0001.png', config)).toMatch(/outside INPUT_PREFIX/);
    expect(skipReason('incomingx/a.pdf', config)).toMatch(/outside INPUT_PREFIX/);
    expect(skipReason('incoming/a.pdf.png', config)).toBe('not a .pdf key');
  });

  it('maps a source key to its output prefix', () => {
    expect(outputLocation('b', 'incoming/reports/q3.pdf', loadConfig({}))).toEqual({ bucket: 'b', prefix: 'rendered/reports/q3.pdf/' });
    expect(outputLocation('b', 'incoming/q3.pdf', loadConfig({ OUTPUT_BUCKET: 'out-bucket' }))).toEqual({ bucket: 'out-bucket', prefix: 'rendered/q3.pdf/' });
  });
});
