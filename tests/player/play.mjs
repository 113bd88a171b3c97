// Plays an HLS master playlist with hls.js in Debian's headless Chromium and reports how far it got.
//
//   node tests/player/play.mjs <URL of master.m3u8> [--seconds 3] [--timeout 40]
//        [--screenshot out.png] [--page-origin http://host:port] [--credentials]
//        [--cookie name=value]... [--visit URL]... [--subtitle-track N] [--cues N]
//        [--api URL [--api-token T] [--refresh]] [--max-buffer SECS] [--switch-levels N]
//        [--playback-rate R] [--until-ended]
//
// Prints one JSON line:
//   {"ok":bool,"currentTime":n,"fatal":null|"type/details","fragsLoaded":n,"httpErrors":[...],"timedOut":bool,
//    "subtitleTracks":[{"name","lang","default","forced","autoselect"}],"cues":[{"track","start","end","text"}],
//    "buffered":[{"type":"video/mp4;codecs=…","ranges":[[start,end],…]},…]}
// subtitleTracks is hls.subtitleTracks; cues are those delivered to the video's text tracks.
// --subtitle-track N selects hls.subtitleTrack = N once the manifest is parsed; --cues N keeps
// playing (up to the timeout) until at least N cues arrived, and ok then also needs them.
// --api URL: the page itself asks the playback API first (fetch with credentials, the bearer
// --api-token), as a site's player does, so the browser stores the cookies from its Set-Cookie;
// with --refresh it asks again ahead of each `expires_at` (docs/delivery.md, "Refreshing
// cookies"), and the report counts the calls in apiCalls. --max-buffer keeps hls.js's forward
// buffer that short, so segments are fetched as playback goes rather than all at once.
// `buffered` is what each MSE SourceBuffer holds when the report is taken: where the browser put
// each track on the timeline (a track starting late, or frames dropped before 0, show there).
// Exit 0 iff ok (currentTime > seconds and no fatal hls.js/media error); 1 when playback failed;
// 2 when the harness itself could not run (bad arguments, Chromium or hls.js missing), so a test
// expecting a playback failure cannot pass on a broken harness.
//
// The player page and hls.js never touch the network: page.route answers them at
// <page-origin>/__hlspipe_player__/, by default the media's own origin (no CORS needed). Give another
// --switch-levels N: once playing, asks hls.js for another rendition (hls.nextLevel, the next
// one round the ladder) N times, each after the last switch landed; the report lists the
// levels (their heights) and each LEVEL_SWITCHED, and playback must go on through them.
// --page-origin to test cross-origin delivery (CORS, and --credentials/--cookie for signed cookies).
// --playback-rate R plays at R times the speed once playing; --until-ended keeps playing (up to
// the timeout) until the video has ended, and ok then also needs that. The report has the
// video's `duration` and `ended`, and `stalls`: the `waiting` events after playback began.
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
  const opts = { url: null, seconds: 3, timeout: 40, screenshot: null, pageOrigin: null, credentials: false, cookies: [], visits: [], subtitleTrack: null, cues: 0, api: null, apiToken: null, refresh: false, maxBuffer: null, switchLevels: 0, playbackRate: 1, untilEnded: false };
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
    else if (a === '--subtitle-track') opts.subtitleTrack = Number(value());
    else if (a === '--cues') opts.cues = Number(value());
    else if (a === '--api') opts.api = value();
    else if (a === '--api-token') opts.apiToken = value();
    else if (a === '--refresh') opts.refresh = true;
    else if (a === '--max-buffer') opts.maxBuffer = Number(value());
    else if (a === '--switch-levels') opts.switchLevels = Number(value());
    else if (a === '--playback-rate') opts.playbackRate = Number(value());
    else if (a === '--until-ended') opts.untilEnded = true;
    else if (a.startsWith('--')) harnessFailure(`unknown option ${a}`);
    else if (opts.url === null) opts.url = a;
    else harnessFailure(`unexpected argument ${a}`);
  }
  if (!opts.url) harnessFailure('usage: play.mjs <URL of master.m3u8> [--seconds N] [--screenshot out.png]');
  if (!(opts.seconds >= 0) || !(opts.timeout > 0)) harnessFailure('--seconds and --timeout must be numbers');
  if (opts.subtitleTrack !== null && !(opts.subtitleTrack >= 0)) harnessFailure('--subtitle-track must be a track index');
  if (!(opts.cues >= 0)) harnessFailure('--cues must be a count');
  if (!(opts.switchLevels >= 0)) harnessFailure('--switch-levels must be a count');
  if (!(opts.playbackRate > 0)) harnessFailure('--playback-rate must be a positive number');
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
  const state = { fatal: null, fragsLoaded: 0, subtitleTracks: [], sourceBuffers: [], apiCalls: 0, levels: [], levelSwitches: [], stalls: 0, playing: false };
  window.__player = state;
  // Remember every SourceBuffer hls.js makes, to report what each one holds.
  const addSourceBuffer = MediaSource.prototype.addSourceBuffer;
  MediaSource.prototype.addSourceBuffer = function (type) {
    const sb = addSourceBuffer.call(this, type);
    state.sourceBuffers.push({ type, sb });
    return sb;
  };
  const video = document.getElementById('v');
  const rate = Number(params.get('rate') ?? 1);
  video.addEventListener('playing', () => {
    state.playing = true;
    video.playbackRate = rate;
  });
  video.addEventListener('waiting', () => { if (state.playing) state.stalls += 1; });
  video.addEventListener('error', () => {
    state.fatal ??= 'media/' + (video.error ? 'code ' + video.error.code + ' ' + video.error.message : 'error');
  });
  if (!window.Hls || !Hls.isSupported()) {
    state.fatal = 'env/hls.js not supported (no MediaSource?)';
  } else {
    const credentials = params.get('credentials') === '1';
    const config = { xhrSetup: (xhr) => { xhr.withCredentials = credentials; } };
    if (params.has('maxBuffer')) {
      config.maxBufferLength = Number(params.get('maxBuffer'));
      config.maxMaxBufferLength = Number(params.get('maxBuffer'));
    }
    const hls = new Hls(config);
    hls.on(Hls.Events.FRAG_LOADED, () => { state.fragsLoaded += 1; });
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (data.fatal) state.fatal ??= data.type + '/' + data.details;
    });
    // hls.js fills hls.subtitleTracks for the current level's SUBTITLES group after the
    // manifest is parsed, and says so with SUBTITLE_TRACKS_UPDATED.
    let subtitleChosen = false;
    hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, () => {
      state.subtitleTracks = hls.subtitleTracks.map((t) => ({
        name: t.name, lang: t.lang ?? null, default: !!t.default, forced: !!t.forced, autoselect: !!t.autoselect,
      }));
      if (params.has('subtitleTrack') && !subtitleChosen) {
        subtitleChosen = true;
        // After this event hls.js selects its own initial track (none without a DEFAULT):
        // choose once that is done.
        setTimeout(() => { hls.subtitleTrack = Number(params.get('subtitleTrack')); }, 0);
      }
    });
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      state.levels = hls.levels.map((l) => l.height);
      video.play().catch((e) => { state.fatal ??= 'play/' + e.name; });
    });
    // --switch-levels: the next rendition round the ladder, each once the last has landed
    // (the first LEVEL_SWITCHED is hls.js's own start level) and played on a little.
    const switches = Number(params.get('switchLevels') ?? 0);
    let asked = 0;
    const askNext = () => {
      if (asked >= switches || hls.levels.length < 2) return;
      asked += 1;
      hls.nextLevel = (Math.max(hls.currentLevel, 0) + 1) % hls.levels.length;
    };
    hls.on(Hls.Events.LEVEL_SWITCHED, (_event, data) => {
      if (switches === 0) return;
      state.levelSwitches.push({ level: data.level, height: hls.levels[data.level].height, at: video.currentTime });
      setTimeout(askNext, 400);
    });
    // The playback API, as a site's player calls it: the cookies arrive as Set-Cookie on this
    // answer and the browser sends them with every playlist and segment request. Asked again
    // ahead of expires_at (80% of the way there, and at least a second early), so a title
    // longer than the cookies' lifetime keeps playing.
    async function playback(api, token, refresh) {
      const headers = token ? { Authorization: 'Bearer ' + token } : {};
      const answer = await fetch(api, { credentials: 'include', headers });
      if (!answer.ok) throw new Error('playback API answered ' + answer.status);
      const body = await answer.json();
      state.apiCalls += 1;
      if (refresh) {
        const left = body.expires_at * 1000 - Date.now();
        const wait = Math.max(250, Math.min(left * 0.8, left - 1000));
        setTimeout(() => playback(api, token, refresh).catch((e) => { state.fatal ??= 'api/' + e.message; }), wait);
      }
      return body;
    }
    const start = () => { hls.loadSource(params.get('src')); hls.attachMedia(video); };
    if (params.has('api')) {
      playback(params.get('api'), params.get('apiToken'), params.get('refresh') === '1')
        .then(start, (e) => { state.fatal ??= 'api/' + e.message; });
    } else {
      start();
    }
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
    if (opts.subtitleTrack !== null) pageUrl.searchParams.set('subtitleTrack', String(opts.subtitleTrack));
    if (opts.api) pageUrl.searchParams.set('api', opts.api);
    if (opts.apiToken) pageUrl.searchParams.set('apiToken', opts.apiToken);
    if (opts.refresh) pageUrl.searchParams.set('refresh', '1');
    if (opts.maxBuffer !== null) pageUrl.searchParams.set('maxBuffer', String(opts.maxBuffer));
    if (opts.switchLevels > 0) pageUrl.searchParams.set('switchLevels', String(opts.switchLevels));
    if (opts.playbackRate !== 1) pageUrl.searchParams.set('rate', String(opts.playbackRate));
    await page.goto(pageUrl.href, { timeout: opts.timeout * 1000 });

    const deadline = Date.now() + opts.timeout * 1000;
    let report;
    for (;;) {
      const s = await page.evaluate(() => {
        const video = document.getElementById('v');
        const cues = [];
        for (const track of Array.from(video.textTracks)) {
          for (const cue of Array.from(track.cues ?? [])) {
            cues.push({ track: track.language || track.label, start: cue.startTime, end: cue.endTime, text: cue.text });
          }
        }
        return {
          currentTime: video.currentTime,
          duration: video.duration,
          ended: video.ended,
          stalls: window.__player.stalls,
          fatal: window.__player.fatal,
          fragsLoaded: window.__player.fragsLoaded,
          apiCalls: window.__player.apiCalls,
          levels: window.__player.levels,
          levelSwitches: window.__player.levelSwitches,
          subtitleTracks: window.__player.subtitleTracks,
          cues,
          buffered: window.__player.sourceBuffers.map(({ type, sb }) => {
            const ranges = [];
            try {
              for (let i = 0; i < sb.buffered.length; i++) ranges.push([sb.buffered.start(i), sb.buffered.end(i)]);
            } catch (_) {
              // A SourceBuffer removed from its MediaSource has no buffered ranges.
            }
            return { type, ranges };
          }),
        };
      });
      const timedOut = Date.now() > deadline;
      // Switching needs LEVEL_SWITCHED for the first level as well as for each one asked for.
      const switched = opts.switchLevels === 0 || s.levelSwitches.length > opts.switchLevels;
      const played = s.currentTime > opts.seconds && s.cues.length >= opts.cues && switched
        && (!opts.untilEnded || s.ended);
      if (played || s.fatal !== null || timedOut) {
        const ok = played && s.fatal === null;
        report = {
          ok, currentTime: s.currentTime, fatal: s.fatal, fragsLoaded: s.fragsLoaded, apiCalls: s.apiCalls, httpErrors, timedOut: !ok && timedOut,
          subtitleTracks: s.subtitleTracks, cues: s.cues, buffered: s.buffered,
          levels: s.levels, levelSwitches: s.levelSwitches,
          // JSON has no Infinity or NaN: a duration that is not finite is reported as null.
          duration: Number.isFinite(s.duration) ? s.duration : null, ended: s.ended, stalls: s.stalls,
        };
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
