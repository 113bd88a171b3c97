// Plays an HLS master playlist with hls.js in Debian's headless Chromium and reports how far it got.
//
//   node tests/player/play.mjs <URL of master.m3u8> [--seconds 3] [--timeout 40]
//        [--screenshot out.png] [--page-origin http://host:port] [--credentials]
//        [--cookie name=value]... [--visit URL]...
//
// Prints one JSON line:
//   {"ok":bool,"currentTime":n,"fatal":null|"type/details","fragsLoaded":n,"httpErrors":[...],"timedOut":bool,
//    "buffered":[{"type":"video/mp4;codecs=…","ranges":[[start,end],…]},…]}
// `buffered` is what each MSE SourceBuffer holds when the report is taken: where the browser put
// each track on the timeline (a track starting late, or frames dropped before 0, show there).
// Exit 0 iff ok (currentTime > seconds and no fatal hls.js/media error); 1 when playback failed;
// 2 when the harness itself could not run (bad arguments, Chromium or hls.js missing), so a test
// expecting a playback failure cannot pass on a broken harness.
//
// The player page and hls.js never touch the network: page.route answers them at
// <page-origin>/__hlspipe_player__/, by default the media's own origin (no CORS needed). Give another
// --page-origin to test cross-origin delivery (CORS, and --credentials/--cookie for signed cookies).
// Debian's Chromium plays H.264/AAC, not HEVC.

import { chromium } from 'playwright-core';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const HLS_JS = join(HERE, 'node_modules', 'hls.js', 'dist', 'hls.min.js');
const CHROMIUM = process.env.HLSPIPE_CHROMIUM || '/usr/bin/chromium';
const PLAYER_PATH = '/__hlspipe_player__/';

function harnessFailure(message) {
  console.log(JSON.stringify({ ok: false, currentTime: 0, fatal: `harness/${message}`, fragsLoaded: 0, httpErrors: [], timedOut: false }));
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { url: null, seconds: 3, timeout: 40, screenshot: null, pageOrigin: null, credentials: false, cookies: [], visits: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) harnessFailure(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--seconds') opts.seconds = Number(value());
    else if (a === '--timeout') opts.timeout = Number(value());
    else if (a === '--screenshot') opts.screenshot = value();
    else if (a === '--page-origin') opts.pageOrigin = value();
    else if (a === '--credentials') opts.credentials = true;
    else if (a === '--cookie') opts.cookies.push(value());
    else if (a === '--visit') opts.visits.push(value());
    else if (a.startsWith('--')) harnessFailure(`unknown option ${a}`);
    else if (opts.url === null) opts.url = a;
    else harnessFailure(`unexpected argument ${a}`);
  }
  if (!opts.url) harnessFailure('usage: play.mjs <URL of master.m3u8> [--seconds N] [--screenshot out.png]');
  if (!(opts.seconds >= 0) || !(opts.timeout > 0)) harnessFailure('--seconds and --timeout must be numbers');
  opts.pageOrigin ??= new URL(opts.url).origin;
  return opts;
}

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>hlspipe player test</title></head>
<body style="margin:0;background:#000">
<video id="v" muted playsinline autoplay style="width:100%"></video>
<script src="hls.min.js"></script>
<script>
  const params = new URLSearchParams(location.search);
  const state = { fatal: null, fragsLoaded: 0, sourceBuffers: [] };
  window.__player = state;
  // Remember every SourceBuffer hls.js makes, to report what each one holds.
  const addSourceBuffer = MediaSource.prototype.addSourceBuffer;
  MediaSource.prototype.addSourceBuffer = function (type) {
    const sb = addSourceBuffer.call(this, type);
    state.sourceBuffers.push({ type, sb });
    return sb;
  };
  const video = document.getElementById('v');
  video.addEventListener('error', () => {
    state.fatal ??= 'media/' + (video.error ? 'code ' + video.error.code + ' ' + video.error.message : 'error');
  });
  if (!window.Hls || !Hls.isSupported()) {
    state.fatal = 'env/hls.js not supported (no MediaSource?)';
  } else {
    const credentials = params.get('credentials') === '1';
    const hls = new Hls({ xhrSetup: (xhr) => { xhr.withCredentials = credentials; } });
    hls.on(Hls.Events.FRAG_LOADED, () => { state.fragsLoaded += 1; });
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (data.fatal) state.fatal ??= data.type + '/' + data.details;
    });
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      video.play().catch((e) => { state.fatal ??= 'play/' + e.name; });
    });
    hls.loadSource(params.get('src'));
    hls.attachMedia(video);
  }
</script>
</body></html>`;

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!existsSync(HLS_JS)) harnessFailure(`${HLS_JS} missing: run scripts/install-test-deps.sh`);
  if (!existsSync(CHROMIUM)) harnessFailure(`${CHROMIUM} missing: run scripts/install-test-deps.sh`);

  const profile = mkdtempSync(join(tmpdir(), 'hlspipe-chromium-'));
  let context;
  try {
    try {
      context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
          '--autoplay-policy=no-user-gesture-required',
        ],
      });
    } catch (e) {
      harnessFailure(`chromium did not start: ${String(e.message).split('\n')[0]}`);
    }

    // Chromium's Local Network Access (enforced since about version 142) blocks a page that is
    // not itself on loopback from fetching loopback URLs unless the user allows it; a page
    // answered by page.route has no address of its own, so cross-origin tests grant it.
    if (opts.pageOrigin !== new URL(opts.url).origin) {
      try {
        await context.grantPermissions(['local-network-access'], { origin: opts.pageOrigin });
      } catch (e) {
        harnessFailure(`cannot grant local-network-access: ${String(e.message).split('\n')[0]}`);
      }
    }

    for (const cookie of opts.cookies) {
      const eq = cookie.indexOf('=');
      if (eq < 1) harnessFailure(`--cookie wants name=value, got ${cookie}`);
      await context.addCookies([{ name: cookie.slice(0, eq), value: cookie.slice(eq + 1), url: opts.url }]);
    }

    const page = context.pages()[0] ?? (await context.newPage());
    // --visit: open these URLs first, so the browser itself takes their Set-Cookie headers
    // (Secure, HttpOnly, SameSite and all), as a player app calling a playback API would.
    for (const visit of opts.visits) {
      const response = await page.goto(visit, { timeout: opts.timeout * 1000 });
      if (!response || response.status() >= 400) {
        harnessFailure(`--visit ${visit} answered ${response ? response.status() : 'nothing'}`);
      }
    }
    await page.route(`${opts.pageOrigin}${PLAYER_PATH}**`, (route) => {
      const path = new URL(route.request().url()).pathname;
      if (path.endsWith('/hls.min.js')) {
        return route.fulfill({ status: 200, contentType: 'text/javascript', body: readFileSync(HLS_JS) });
      }
      return route.fulfill({ status: 200, contentType: 'text/html', body: PAGE });
    });

    const httpErrors = [];
    page.on('response', (response) => {
      if (response.status() >= 400) httpErrors.push({ url: response.url(), status: response.status() });
    });
    page.on('requestfailed', (request) => {
      httpErrors.push({ url: request.url(), status: 0, failure: request.failure()?.errorText ?? 'failed' });
    });

    const pageUrl = new URL(`${opts.pageOrigin}${PLAYER_PATH}index.html`);
    pageUrl.searchParams.set('src', opts.url);
    if (opts.credentials) pageUrl.searchParams.set('credentials', '1');
    await page.goto(pageUrl.href, { timeout: opts.timeout * 1000 });

    const deadline = Date.now() + opts.timeout * 1000;
    let report;
    for (;;) {
      const s = await page.evaluate(() => ({
        currentTime: document.getElementById('v').currentTime,
        fatal: window.__player.fatal,
        fragsLoaded: window.__player.fragsLoaded,
        buffered: window.__player.sourceBuffers.map(({ type, sb }) => {
          const ranges = [];
          try {
            for (let i = 0; i < sb.buffered.length; i++) ranges.push([sb.buffered.start(i), sb.buffered.end(i)]);
          } catch (_) {
            // A SourceBuffer removed from its MediaSource has no buffered ranges.
          }
          return { type, ranges };
        }),
      }));
      const timedOut = Date.now() > deadline;
      if (s.currentTime > opts.seconds || s.fatal !== null || timedOut) {
        const ok = s.currentTime > opts.seconds && s.fatal === null;
        report = { ok, currentTime: s.currentTime, fatal: s.fatal, fragsLoaded: s.fragsLoaded, httpErrors, timedOut: !ok && timedOut, buffered: s.buffered };
        break;
      }
      await page.waitForTimeout(200);
    }
    if (opts.screenshot) await page.screenshot({ path: opts.screenshot });
    console.log(JSON.stringify(report));
    await context.close();
    context = undefined;
    process.exitCode = report.ok ? 0 : 1;
  } finally {
    if (context) await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((e) => harnessFailure(String(e && e.message ? e.message : e).split('\n')[0]));
