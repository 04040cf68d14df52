/**
 * npm run screenshots:iiif -- [--out docs] [--only giant] [--viewers DIR] [--chromium /usr/bin/chromium] [--timeout 180]
 * (--only: the shots whose file name holds it)
 *
 * The screenshots of docs/iiif.md, made by the project: real viewers in a real browser on
 * `npm run serve`. Run by hand, not in CI (it needs Chromium and the viewers from npm, and
 * takes minutes of rendering). It
 *   1. installs OpenSeadragon and Mirador, pinned, from npm into --viewers (outside the
 *      repository: ~/.cache/s3-pdf-render/iiif-viewers by default; once);
 *   2. starts `npm run serve` on a free loopback port with corpus documents and the generated
 *      30000 px page (test/fixtures/generated-pdfs.ts, MAX_PAGE_PIXELS raised so its full image
 *      is 31600 px at IIIF_DPI 300);
 *   3. serves the viewers' pages on another loopback port (so every IIIF request crosses
 *      origins, as in production: CORS is exercised);
 *   4. drives Debian's Chromium, headless, over the DevTools protocol: for each shot it opens the
 *      viewer, waits until the viewer says every tile in view is loaded and no IIIF request has
 *      been in flight for 2 s (Mirador: 5 s), fails if any IIIF answer was an error or a tile
 *      failed, and writes the PNG.
 * Each shot prints its tile count and the answers' statuses. Look at every PNG before you commit it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { homedir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { parseIntSetting } from '../lib/config/settings.js';
import { writeGiantPagePdf } from '../test/fixtures/generated-pdfs.js';
import { runTool, tempFolder, trackProcess, UsageError } from './cleanup.js';
import { corpusFile } from './corpus.js';

const USAGE = 'usage: npm run screenshots:iiif -- [--out docs] [--only giant] [--viewers DIR] [--chromium /usr/bin/chromium] [--timeout 180]';
/** The viewers the screenshots show, pinned: the versions docs/iiif.md names. */
const VIEWERS = { openseadragon: '6.1.1', mirador: '4.0.0' } as const;
const WINDOW = { width: 1200, height: 800 };

interface Shot {
  file: string;
  what: string;
  /** The viewer's page on the viewers' server, with the IIIF URL to open. */
  url: string;
  /** Image answers at least; fewer means the view did not load. */
  minImages: number;
  /** No IIIF request in flight for this long means the viewer is done (Mirador has no "loaded" event to wait for). */
  quietMs: number;
}

/** The viewers' pages: tiny HTML that reports its state in window.__shot for the tool to poll. */
const OSD_PAGE = `<!doctype html><html><head><meta charset="utf-8"><style>html,body,#v{margin:0;width:100%;height:100%;background:#222}
#c{position:absolute;left:8px;bottom:8px;background:rgba(0,0,0,.65);color:#fff;font:14px sans-serif;padding:4px 8px}</style></head>
<body><div id="v"></div><div id="c"></div><script src="/openseadragon.min.js"></script><script>
const p = new URLSearchParams(location.search);
window.__shot = { ready: false, tiles: 0, failed: 0, deepest: 0, error: null };
// What the shot shows, on it: the viewer, the info.json, the scale, the tiles.
const caption = () => {
  const vp = viewer.viewport, scale = vp.viewportToImageZoom(vp.getZoom(true));
  document.getElementById('c').textContent = 'OpenSeadragon ' + OpenSeadragon.version.versionStr + ' · ' + new URL(p.get('info')).pathname +
    ' · ' + (scale >= 0.995 ? '1 image px per screen px' : '1 screen px per ' + (1 / scale).toFixed(1) + ' image px') + ' · tiles loaded ' + __shot.tiles + ', failed ' + __shot.failed;
};
const viewer = OpenSeadragon({ id: 'v', prefixUrl: '/osd-images/', tileSources: p.get('info'), showNavigator: p.has('navigator'), navigatorAutoFade: false,
  animationTime: 0, crossOriginPolicy: 'Anonymous', maxZoomPixelRatio: 1 });
viewer.addHandler('tile-loaded', (e) => { __shot.tiles++; __shot.deepest = Math.max(__shot.deepest, e.tile.level); caption(); });
viewer.addHandler('tile-load-failed', () => { __shot.failed++; caption(); });
viewer.addHandler('open-failed', (e) => { __shot.error = String(e.message); });
viewer.addHandler('open', () => {
  const vp = viewer.viewport;
  // zoom: image pixels per screen pixel (1 = the full image's own pixels); x, y: the centre, in fractions of the image's width.
  if (p.has('zoom')) vp.zoomTo(vp.imageToViewportZoom(Number(p.get('zoom'))), null, true);
  if (p.has('x')) vp.panTo(new OpenSeadragon.Point(Number(p.get('x')), Number(p.get('y'))), true);
  const item = viewer.world.getItemAt(0);
  const check = () => { if (item.getFullyLoaded()) __shot.ready = true; };
  item.addHandler('fully-loaded-change', check);
  check();
});
</script></body></html>`;

const MIRADOR_PAGE = `<!doctype html><html><head><meta charset="utf-8"><style>html,body,#m{margin:0;width:100%;height:100%}</style></head>
<body><div id="m"></div><script src="/mirador.min.js"></script><script>
const p = new URLSearchParams(location.search);
window.__shot = { ready: true, error: null };
Mirador.viewer({ id: 'm',
  windows: [{ manifestId: p.get('manifest'), canvasIndex: Number(p.get('canvas') || 0), thumbnailNavigationPosition: 'far-bottom' }],
  window: { allowClose: false, allowMaximize: false, sideBarOpen: true, sideBarPanel: p.get('panel') || 'canvas', defaultSidebarPanelWidth: 300 },
  workspaceControlPanel: { enabled: false } });
</script></body></html>`;

/** A minimal Chrome DevTools Protocol client over the WebSocket Node has built in. */
class Cdp {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly listeners: ((method: string, params: Record<string, unknown>) => void)[] = [];
  private constructor(private readonly socket: WebSocket) {
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: { message: string }; method?: string; params?: Record<string, unknown> };
      if (message.id !== undefined) {
        const waiter = this.pending.get(message.id);
        this.pending.delete(message.id);
        if (message.error) waiter?.reject(new Error(message.error.message));
        else waiter?.resolve(message.result);
      } else if (message.method) {
        for (const listener of this.listeners) listener(message.method, message.params ?? {});
      }
    });
  }

  static async connect(url: string): Promise<Cdp> {
    const socket = new WebSocket(url);
    await new Promise<void>((ok, fail) => {
      socket.addEventListener('open', () => ok(), { once: true });
      socket.addEventListener('error', () => fail(new Error(`cannot connect to Chromium at ${url}`)), { once: true });
    });
    return new Cdp(socket);
  }

  send<T = Record<string, unknown>>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.next++;
    this.socket.send(JSON.stringify({ id, method, params }));
    return new Promise<T>((resolve, reject) => this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject }));
  }

  /** Listens to events until the returned function is called. */
  on(listener: (method: string, params: Record<string, unknown>) => void): () => void {
    this.listeners.push(listener);
    return () => this.listeners.splice(this.listeners.indexOf(listener), 1);
  }

  close(): void {
    this.socket.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    await sleep(250);
  }
}

/** The viewers, pinned, installed once with npm into `dir` (outside the repository). */
function ensureViewers(dir: string): { osd: string; mirador: string } {
  const osd = join(dir, 'node_modules/openseadragon/build/openseadragon');
  const mirador = join(dir, 'node_modules/mirador/dist/mirador.min.js');
  const versionOf = (name: string): string | undefined => {
    try {
      return (JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return undefined;
    }
  };
  if (versionOf('openseadragon') !== VIEWERS.openseadragon || versionOf('mirador') !== VIEWERS.mirador) {
    console.error(`installing openseadragon@${VIEWERS.openseadragon} and mirador@${VIEWERS.mirador} into ${dir}…`);
    const npm = spawnSync('npm', ['install', '--prefix', dir, '--no-audit', '--no-fund', '--ignore-scripts', '--no-save', ...Object.entries(VIEWERS).map(([n, v]) => `${n}@${v}`)], { stdio: 'inherit' });
    if (npm.status !== 0) throw new Error(`npm install into ${dir} failed (exit ${npm.status})`);
  }
  return { osd, mirador };
}

/** Serves the viewers' pages and scripts on loopback. */
async function serveViewers(paths: { osd: string; mirador: string }): Promise<Server> {
  const types: Record<string, string> = { '.js': 'text/javascript', '.png': 'image/png', '.html': 'text/html' };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const send = (body: string | Buffer, type: string) => res.writeHead(200, { 'content-type': type }).end(body);
    if (url.pathname === '/osd.html') return send(OSD_PAGE, 'text/html');
    if (url.pathname === '/mirador.html') return send(MIRADOR_PAGE, 'text/html');
    const file =
      url.pathname === '/openseadragon.min.js'
        ? join(paths.osd, 'openseadragon.min.js')
        : url.pathname === '/mirador.min.js'
          ? paths.mirador
          : url.pathname.startsWith('/osd-images/') && /^[\w.-]+$/.test(url.pathname.slice(12))
            ? join(paths.osd, 'images', url.pathname.slice(12))
            : undefined;
    if (!file) return void res.writeHead(404).end();
    readFile(file).then(
      (body) => send(body, types[extname(file)] ?? 'application/octet-stream'),
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return server;
}

/** `npm run serve` with `files`, on a free port; resolves with its base URL once it serves. */
async function startServe(files: string[], env: Record<string, string>, timeoutMs: number): Promise<{ base: string; child: ChildProcess }> {
  const tsx = resolve('node_modules/.bin/tsx');
  const child = trackProcess(spawn(tsx, ['tools/serve.ts', '--port', '0', '--containers', '2', ...files], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] }), 'SIGTERM');
  let log = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    log += chunk.toString();
    process.stderr.write(chunk);
  });
  const base = await until('npm run serve to start', timeoutMs, () => {
    if (child.exitCode !== null) throw new Error(`npm run serve exited (${child.exitCode})`);
    return /PageFunction on (http:\/\/127\.0\.0\.1:\d+)/.exec(log)?.[1];
  });
  return { base, child };
}

async function startChromium(binary: string, profile: string, timeoutMs: number): Promise<{ cdp: Cdp; child: ChildProcess }> {
  const child = trackProcess(
    spawn(
      binary,
      [
        '--headless=new',
        '--no-sandbox',
        '--disable-gpu',
        '--hide-scrollbars',
        '--no-first-run',
        '--remote-debugging-port=0',
        `--user-data-dir=${profile}`,
        `--window-size=${WINDOW.width},${WINDOW.height}`,
        'about:blank',
      ],
      { stdio: 'ignore' },
    ),
  );
  const port = await until('Chromium to listen', timeoutMs, async () => {
    if (child.exitCode !== null) throw new Error(`Chromium exited (${child.exitCode}): is ${binary} installed? (apt-get install -y chromium)`);
    const text = await readFile(join(profile, 'DevToolsActivePort'), 'utf8').catch(() => '');
    return /^\d+/.exec(text)?.[0];
  });
  const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { type: string; webSocketDebuggerUrl: string }[];
  const target = targets.find((t) => t.type === 'page');
  if (!target) throw new Error('Chromium has no page to drive');
  return { cdp: await Cdp.connect(target.webSocketDebuggerUrl), child };
}

/** Opens `url`, waits for the viewer and for IIIF requests to settle, writes the screenshot. */
async function shoot(cdp: Cdp, iiifBase: string, shot: Shot, out: string, timeoutMs: number): Promise<void> {
  const inFlight = new Set<string>();
  const statuses = new Map<number, number>();
  let images = 0;
  let quietSince = Date.now();
  const stop = cdp.on((method, params) => {
    const id = String(params['requestId']);
    if (method === 'Network.requestWillBeSent' && String((params['request'] as { url: string }).url).startsWith(iiifBase)) inFlight.add(id);
    if (method === 'Network.responseReceived' && inFlight.has(id)) {
      const response = params['response'] as { status: number; mimeType: string };
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      if (response.mimeType.startsWith('image/')) images++;
    }
    if ((method === 'Network.loadingFinished' || method === 'Network.loadingFailed') && inFlight.delete(id)) {
      if (method === 'Network.loadingFailed') statuses.set(0, (statuses.get(0) ?? 0) + 1);
      quietSince = Date.now();
    }
  });
  const started = Date.now();
  await cdp.send('Page.navigate', { url: shot.url });
  const state = await until(`${shot.file}: the viewer's tiles`, timeoutMs, async () => {
    const evaluated = await cdp.send<{ result: { value?: string } }>('Runtime.evaluate', { expression: 'JSON.stringify(window.__shot ?? null)', returnByValue: true });
    const value = JSON.parse(evaluated.result.value ?? 'null') as { ready: boolean; error: string | null; failed?: number } | null;
    if (value?.error) throw new Error(`${shot.file}: the viewer failed: ${value.error}`);
    const settled = value?.ready && images >= shot.minImages && inFlight.size === 0 && Date.now() - quietSince > shot.quietMs;
    return settled && value ? value : undefined;
  }).finally(stop);
  const failed = [...statuses].filter(([status]) => status === 0 || status >= 400);
  if (failed.length > 0 || state.failed) throw new Error(`${shot.file}: IIIF requests failed: ${JSON.stringify(Object.fromEntries(statuses))}, tiles failed in the viewer: ${state.failed ?? 0}`);
  const { data } = await cdp.send<{ data: string }>('Page.captureScreenshot', { format: 'png' });
  const path = join(out, shot.file);
  let png = Buffer.from(data, 'base64');
  // The repository keeps small PNGs: past 250 KB, a 256-colour palette (text and tiles read the same).
  if (png.byteLength > 250_000) png = await sharp(png).png({ palette: true, compressionLevel: 9 }).toBuffer();
  await writeFile(path, png);
  console.error(`${path} (${Math.round(png.byteLength / 1024)} KB): ${shot.what}; ${images} images, statuses ${JSON.stringify(Object.fromEntries(statuses))}, viewer ${JSON.stringify(state)}, ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: 'docs' },
      viewers: { type: 'string', default: join(homedir(), '.cache/s3-pdf-render/iiif-viewers') },
      chromium: { type: 'string', default: '/usr/bin/chromium' },
      timeout: { type: 'string', default: '180' },
      only: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.error(USAGE);
    return 0;
  }
  const timeoutMs = parseIntSetting('--timeout', values.timeout, 10, 3600) * 1000;
  if (!existsSync(values.chromium)) throw new UsageError(`${values.chromium}: no Chromium there (apt-get install -y chromium, or --chromium PATH)`);
  if (!existsSync(values.out)) throw new UsageError(`${values.out}: no such folder`);

  const viewers = ensureViewers(values.viewers);
  const scratch = await tempFolder('iiif-screenshots-');
  const giant = join(scratch, 'giant-page-14400pt.pdf');
  await writeGiantPagePdf(giant);
  const documents = { scan: 'multipage-9000px-image.pdf', thesis: 'geotopo-thesis-117p-cff-mesh.pdf' };
  const serve = await startServe([corpusFile(documents.scan), corpusFile(documents.thesis), giant], { MAX_PAGE_PIXELS: '1000000000' }, timeoutMs);
  const pages = await serveViewers(viewers);
  const { cdp, child: chromium } = await startChromium(values.chromium, join(scratch, 'chromium'), timeoutMs);
  try {
    await cdp.send('Network.enable');
    await cdp.send('Page.enable');
    await cdp.send('Emulation.setDeviceMetricsOverride', { ...WINDOW, deviceScaleFactor: 1, mobile: false });
    const viewerBase = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;
    const iiif = `${serve.base}/iiif/3/`;
    const info = (file: string, page: number) => `${iiif}${encodeURIComponent(`incoming/${file}`)};${page}/info.json`;
    const shots: Shot[] = [
      {
        file: 'iiif-mirador.png',
        what: `Mirador ${VIEWERS.mirador}: ${documents.thesis}'s manifest, its outline as the table of contents, page 6`,
        url: `${viewerBase}/mirador.html?${new URLSearchParams({ manifest: `${iiif}${encodeURIComponent(`incoming/${documents.thesis}`)}/manifest`, canvas: '5' })}`,
        minImages: 4,
        quietMs: 5_000,
      },
      {
        file: 'iiif-openseadragon.png',
        what: `OpenSeadragon ${VIEWERS.openseadragon}: page 2 of ${documents.scan} (a 9000x9000 px scan), whole`,
        url: `${viewerBase}/osd.html?${new URLSearchParams({ info: info(documents.scan, 2) })}`,
        minImages: 1,
        quietMs: 2_000,
      },
      {
        file: 'iiif-openseadragon-deep.png',
        what: `OpenSeadragon: the same scan at its own pixels (the deepest level), on its heading`,
        url: `${viewerBase}/osd.html?${new URLSearchParams({ info: info(documents.scan, 2), zoom: '1', x: '0.2', y: '0.1', navigator: '' })}`,
        minImages: 4,
        quietMs: 2_000,
      },
      {
        file: 'iiif-openseadragon-giant.png',
        what: 'OpenSeadragon: the generated 14400 pt page (31600x31600 px) at its own pixels, the deepest level, on the G of GIANT PAGE and its grid',
        url: `${viewerBase}/osd.html?${new URLSearchParams({ info: info('giant-page-14400pt.pdf', 1), zoom: '1', x: '0.16', y: '0.425' })}`,
        minImages: 4,
        quietMs: 2_000,
      },
    ];
    for (const shot of shots.filter((s) => !values.only || s.file.includes(values.only))) await shoot(cdp, serve.base, shot, values.out, timeoutMs);
    await cdp.send('Browser.close').catch(() => undefined);
  } finally {
    cdp.close();
    chromium.kill('SIGKILL');
    serve.child.kill('SIGTERM');
    pages.close();
  }
  await new Promise((r) => (serve.child.exitCode === null ? serve.child.once('exit', r) : r(undefined)));
  return 0;
}

runTool(main);
