import pkg from '../../package.json' with { type: 'json' };

/** What the manifest's `renderer` records. The mupdf version is pinned exactly in package.json. */
export const RENDERER = {
  name: 's3-pdf-render',
  version: pkg.version,
  mupdf: pkg.dependencies.mupdf,
} as const;

export function majorVersion(version: string): number {
  return Number.parseInt(version.split('.')[0] ?? '', 10);
}
