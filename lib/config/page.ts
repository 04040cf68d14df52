/**
 * The page function's own settings (docs/on-demand.md), read once at cold start on top of the
 * render settings every function shares (env.ts): how requests are authenticated, how long a
 * presigned redirect lives, and how much of /tmp the warm source cache may take. An invalid
 * value stops start-up with one message naming the variable, its value and what is allowed.
 */
import { loadConfig, type Config } from './env.js';
import { InvalidSettingError, parseIntSetting } from './settings.js';
import { DEFAULT_SIGNED_URL_MAX_SECONDS } from '../on-demand/signature.js';

export type PageUrlAuthType = 'AWS_IAM' | 'NONE';

export interface PageConfig extends Config {
  sourceBucket: string;
  page: {
    /** The Function URL's AuthType: NONE is accepted only with signed URLs (signingParameter). */
    authType: PageUrlAuthType;
    /**
     * The SSM parameter (SecureString) holding the URL-signing secret. When set, every request
     * must carry a valid `signature` and an unexpired `expires` (lib/on-demand/signature.ts).
     */
    signingParameter?: string;
    /** A signed URL's expiry is at most this many seconds ahead (SIGNED_URL_MAX_SECONDS): a longer one is 403 SIGNATURE_EXPIRY_TOO_FAR. */
    signedUrlMaxSeconds: number;
    /** Lifetime of the presigned GET a request is redirected to. */
    presignSeconds: number;
    /** Bytes of /tmp the warm source cache keeps at most (least recently used PDFs go first). */
    sourceCacheBytes: number;
    /**
     * Bytes of /tmp the IIIF level cache keeps at most (lib/iiif/levels.ts; least recently used
     * levels go first; a level larger than this is never rastered; 0: no level cache).
     */
    levelCacheBytes: number;
    /** IIIF (docs/iiif.md): a page's full image is the page at this DPI, capped by MAX_PAGE_PIXELS. */
    iiifDpi: number;
    /** The scheme and host (and path) that IIIF ids start with; unset: https:// + the Function URL's domain. */
    iiifBaseUrl?: string;
    /** Access-Control-Allow-Origin of every IIIF answer (the Function URL's CORS says the same). */
    corsOrigin: string;
  };
}

/** The variables loadPageConfig reads besides CONFIG_ENV_VARS (test/template.test.ts holds the template to them). */
export const PAGE_CONFIG_ENV_VARS = ['PAGE_URL_AUTH_TYPE', 'PAGE_SIGNING_PARAMETER', 'SIGNED_URL_MAX_SECONDS', 'PAGE_PRESIGN_SECONDS', 'PAGE_SOURCE_CACHE_MB', 'IIIF_LEVEL_CACHE_MB', 'IIIF_DPI', 'IIIF_BASE_URL', 'IIIF_CORS_ORIGIN'] as const;

/**
 * The scans of the corpus are 300 dpi (epson-scan-cjk-6p: 2550 px across 612 pt; jbig2-scan-4p:
 * 2550 across 612; multipage-9000px-image: 9000 across 2160 pt; `mutool pages` and `mutool info
 * -I`), as book scanners usually are: at 300 dpi the deepest zoom shows every scanned pixel once,
 * more only upscales the scan. A Letter page is then 2550x3300 (8.4 Mpx), far under
 * MAX_PAGE_PIXELS; vector pages stay sharp at any zoom a viewer allows past it (^ sizes).
 */
export const DEFAULT_IIIF_DPI = 300;

/**
 * A redirect outlives its use by little: 300 s covers a slow client following it, and a
 * leaked one stops working soon. The browser caches the 302 itself for less (handler.ts).
 */
export const DEFAULT_PRESIGN_SECONDS = 300;
/**
 * A signed URL lives at most 7 days by default: long enough for a link in an e-mail or a
 * cached page, short enough that a leaked URL dies within a week. At most a year.
 */
export const MAX_SIGNED_URL_MAX_SECONDS = 365 * 24 * 3600;
/** Of the template's 2,048 MB of ephemeral storage: the rest is left for a source too large to keep. */
export const DEFAULT_SOURCE_CACHE_MB = 1024;

/**
 * Of the template's 3,072 MB of ephemeral storage (PAGE_SOURCE_CACHE_MB takes 1,024): the
 * 9000x9000 px scan of multipage-9000px-image.pdf at IIIF_DPI 300 is a pyramid of 324 MB of RGB
 * (243 MB its full level, 61 the next, ...) with MAX_PAGE_PIXELS raised to 1e9, so three such
 * pages' pyramids stay (at the default 40 Mpx a pyramid is at most 160 MB: six); a level past
 * it (the 31600 px full level of the generated 14400 pt page: 3.0 GB) is drawn tile by tile.
 */
export const DEFAULT_LEVEL_CACHE_MB = 1024;

type Env = Record<string, string | undefined>;

export function loadPageConfig(env: Env = process.env): PageConfig {
  const base = loadConfig(env);
  // A URL names a key, not a bucket: the function serves one bucket's PDFs.
  if (!base.sourceBucket) throw new InvalidSettingError('SOURCE_BUCKET is required by the page function: the bucket whose PDFs its URLs name');
  const rawAuth = env['PAGE_URL_AUTH_TYPE'] || 'AWS_IAM';
  if (rawAuth !== 'AWS_IAM' && rawAuth !== 'NONE') {
    throw new InvalidSettingError(`PAGE_URL_AUTH_TYPE=${JSON.stringify(rawAuth)} is invalid: expected "AWS_IAM" or "NONE"`);
  }
  const signingParameter = env['PAGE_SIGNING_PARAMETER'] || undefined;
  if (signingParameter !== undefined && !/^(\/[a-zA-Z0-9_.-]+)+$/.test(signingParameter)) {
    throw new InvalidSettingError(`PAGE_SIGNING_PARAMETER=${JSON.stringify(signingParameter)} is invalid: expected an SSM parameter name such as /s3-pdf-render/url-secret`);
  }
  // A public URL without signatures would let anyone render any PDF of the bucket at any size.
  if (rawAuth === 'NONE' && !signingParameter) {
    throw new InvalidSettingError('PAGE_URL_AUTH_TYPE="NONE" requires PAGE_SIGNING_PARAMETER: a public Function URL only serves signed URLs');
  }
  const signedUrlMaxSeconds = env['SIGNED_URL_MAX_SECONDS']
    ? parseIntSetting('SIGNED_URL_MAX_SECONDS', env['SIGNED_URL_MAX_SECONDS'], 60, MAX_SIGNED_URL_MAX_SECONDS)
    : DEFAULT_SIGNED_URL_MAX_SECONDS;
  const presignSeconds = env['PAGE_PRESIGN_SECONDS'] ? parseIntSetting('PAGE_PRESIGN_SECONDS', env['PAGE_PRESIGN_SECONDS'], 10, 3600) : DEFAULT_PRESIGN_SECONDS;
  const cacheMb = env['PAGE_SOURCE_CACHE_MB'] ? parseIntSetting('PAGE_SOURCE_CACHE_MB', env['PAGE_SOURCE_CACHE_MB'], 0, 10_240) : DEFAULT_SOURCE_CACHE_MB;
  const levelMb = env['IIIF_LEVEL_CACHE_MB'] ? parseIntSetting('IIIF_LEVEL_CACHE_MB', env['IIIF_LEVEL_CACHE_MB'], 0, 10_240) : DEFAULT_LEVEL_CACHE_MB;
  const iiifDpi = env['IIIF_DPI'] ? parseIntSetting('IIIF_DPI', env['IIIF_DPI'], 1, 1200) : DEFAULT_IIIF_DPI;
  const iiifBaseUrl = env['IIIF_BASE_URL'] || undefined;
  if (iiifBaseUrl !== undefined && !/^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/.test(iiifBaseUrl)) {
    throw new InvalidSettingError(`IIIF_BASE_URL=${JSON.stringify(iiifBaseUrl)} is invalid: expected an http(s) URL such as https://iiif.example.org (no query)`);
  }
  const corsOrigin = env['IIIF_CORS_ORIGIN'] || '*';
  if (corsOrigin !== '*' && !/^https?:\/\/[^\s/?#]+$/.test(corsOrigin)) {
    throw new InvalidSettingError(`IIIF_CORS_ORIGIN=${JSON.stringify(corsOrigin)} is invalid: expected * or an origin such as https://viewer.example.org`);
  }
  return {
    ...base,
    sourceBucket: base.sourceBucket,
    page: {
      authType: rawAuth,
      ...(signingParameter ? { signingParameter } : {}),
      signedUrlMaxSeconds,
      presignSeconds,
      sourceCacheBytes: cacheMb * 2 ** 20,
      levelCacheBytes: levelMb * 2 ** 20,
      iiifDpi,
      ...(iiifBaseUrl ? { iiifBaseUrl: iiifBaseUrl.replace(/\/+$/, '') } : {}),
      corsOrigin,
    },
  };
}
