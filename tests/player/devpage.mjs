// The `hlspipe dev` page used as a person uses it, in Debian's headless Chromium: upload
// files through its file input, watch them process, play, switch audio language, quality
// and subtitles, look at a failure, and at the page on a phone. Every request to a host
// other than 127.0.0.1 is refused and reported.
//
//   node tests/player/devpage.mjs <BASE_URL> <SHOTS_DIR> <FILE>...
//
// The files are uploaded together; the script then expects, by title (the file name
// without extension): `two_audio_langs` (two audio languages), `h264_aac_subs` (subtitles),
// `sample` (a ladder of several rungs, made at first start), and one named `corrupt`.
// Prints one JSON line of what it saw; exit 0 when the page did all of it, 1 when it did
// not, 2 when the harness could not run.

import { chromium } from 'playwright-core';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CHROMIUM = process.env.HLSPIPE_CHROMIUM || '/usr/bin/chromium';
const report = { ok: false, steps: [], offHost: [], pageErrors: [] };

function finish(code) {
  console.log(JSON.stringify(report));
  process.exit(code);
}

async function until(page, what, fn, arg, seconds = 120) {
  try {
    await page.waitForFunction(fn, arg, { timeout: seconds * 1000, polling: 250 });
  } catch (e) {
    report.failed = what;
    report.status = await page.evaluate(() => document.getElementById('status')?.textContent).catch(() => '');
    throw e;
  }
  report.steps.push(what);
}

async function playFor(page, title, seconds) {
  await page.click(`#titles li.title[data-title="${title}"] button.play`);
  await until(page, `${title} plays`, ([t, s]) => window.hlspipe.playing === t && document.getElementById('video').currentTime > s, [title, seconds]);
}

async function main() {
  const [base, shots, ...files] = process.argv.slice(2);
  if (!base || !shots || !files.length) { report.status = 'usage'; finish(2); }
  if (!existsSync(CHROMIUM)) { report.status = `${CHROMIUM} missing`; finish(2); }
  const profile = mkdtempSync(join(tmpdir(), 'hlspipe-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
  });
  try {
    // Nothing leaves the machine: every other host is refused, and noted.
    await context.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (url.hostname === '127.0.0.1') return route.continue();
      report.offHost.push(url.href);
      return route.abort();
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (e) => report.pageErrors.push(String(e.message).split('\n')[0]));
    await page.goto(base);
    await until(page, 'the list', () => document.querySelector('#titles li.title') !== null, null);

    await page.setInputFiles('#file', files);
    await until(page, 'uploads finished', (n) => {
      const items = [...document.querySelectorAll('#uploads li')];
      return items.length === n && items.every((li) => li.querySelector('progress').value === 1);
    }, files.length, 60);
    await until(page, 'titles complete', () => ['two_audio_langs', 'h264_aac_subs', 'sample'].every(
      (t) => document.querySelector(`#titles li.title[data-title="${t}"]`)?.dataset.state === 'complete'), null, 240);
    await until(page, 'corrupt failed', () => {
      const li = document.querySelector('#titles li.title[data-title="corrupt"]');
      return li?.dataset.state === 'failed' && li.querySelector('.error')?.textContent.includes('uploads/corrupt.mp4');
    }, null);
    report.corruptError = await page.textContent('#titles li.title[data-title="corrupt"] .error');

    // Accessible: every control has a name; text keeps a contrast of 4.5:1 (WCAG 2.1, 1.4.3);
    // Tab starts at the file picker and reaches the first title's buttons in reading order.
    report.unnamed = await page.evaluate(() => [...document.querySelectorAll('button, select, input, a, summary')]
      .filter((e) => !e.closest('[hidden]'))
      .filter((e) => !(e.getAttribute('aria-label') || e.closest('label')?.textContent || e.textContent || '').trim())
      .map((e) => e.outerHTML.slice(0, 80)));
    report.lowContrast = await page.evaluate(() => {
      const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
      const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
        .reduce((a, v, i) => a + v * [0.2126, 0.7152, 0.0722][i], 0);
      const background = (e) => {
        for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor); if (c.length === 3 || c[3] > 0) return c.slice(0, 3); }
        return [255, 255, 255];
      };
      const low = [];
      for (const e of document.querySelectorAll('.state, .facts, .error, button:not([disabled]), label, #status, #rung, .keys, h1, h2, .name')) {
        const [a, b] = [lum(rgb(getComputedStyle(e).color)), lum(background(e))];
        const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        if (ratio < 4.5) low.push(`${e.className || e.tagName}: ${ratio.toFixed(2)}`);
      }
      return low;
    });
    await page.evaluate(() => document.activeElement?.blur());
    const order = [];
    for (let i = 0; i < 4; i++) {
      await page.keyboard.press('Tab');
      order.push(await page.evaluate(() => document.activeElement.id || document.activeElement.className || document.activeElement.tagName));
    }
    report.tabOrder = order;

    // A file the pipeline would not take is refused on the page, before it is sent.
    await page.setInputFiles('#file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello') });
    await until(page, 'a text file refused', () => [...document.querySelectorAll('#uploads li')]
      .some((li) => li.textContent.includes('notes.txt') && li.textContent.includes('refused: not a video')), null, 10);
    await page.screenshot({ path: join(shots, 'dev-page-list.png'), fullPage: true });

    // Audio: two languages; switch to the other, and playback goes on.
    await playFor(page, 'two_audio_langs', 1);
    await until(page, 'audio menu', () => document.querySelectorAll('#audio option').length >= 2, null, 30);
    // One rung: no quality to choose.
    report.oneRungMenu = await page.evaluate(() => [window.hlspipe.hls.levels.length, document.getElementById('quality').disabled]);
    const before = await page.evaluate(() => window.hlspipe.hls.audioTrack);
    const other = before === 0 ? '1' : '0';
    await page.selectOption('#audio', other);
    await until(page, 'audio switched', (o) => window.hlspipe.hls.audioTrack === Number(o), other, 30);
    const t0 = await page.evaluate(() => document.getElementById('video').currentTime);
    await until(page, 'plays on after the switch', (t) => document.getElementById('video').currentTime > t + 1.5, t0, 30);
    report.audio = await page.evaluate(() => window.hlspipe.hls.audioTracks.map((a) => a.lang));
    await page.screenshot({ path: join(shots, 'dev-page-playing.png') });

    // Subtitles: cues show.
    await playFor(page, 'h264_aac_subs', 0.5);
    await until(page, 'subtitle menu', () => document.querySelectorAll('#subs option').length >= 2, null, 30);
    await page.selectOption('#subs', '0');
    await until(page, 'subtitle cues', () => [...document.getElementById('video').textTracks]
      .some((t) => t.mode === 'showing' && t.cues && t.cues.length > 0), null, 30);

    // Quality: pick the lowest rung of the ladder by hand.
    await playFor(page, 'sample', 0.5);
    // No title is asked for after this one: only the page's timer can renew these cookies.
    const firstExpiry = await page.evaluate(() => window.hlspipe.expires);
    await until(page, 'quality menu', () => document.querySelectorAll('#quality option').length >= 3, null, 30);
    const levels = await page.evaluate(() => window.hlspipe.hls.levels.map((l) => l.height));
    const lowest = levels.indexOf(Math.min(...levels));
    await page.selectOption('#quality', String(lowest));
    await until(page, 'rung switched', (i) => window.hlspipe.hls.currentLevel === i &&
      document.getElementById('rung').textContent.includes('fixed'), lowest, 30);
    report.levels = levels;

    // The keys: m unmutes, space pauses, → seeks 5 s on.
    await page.locator('main h2, main .keys').first().click();
    const keys = {};
    await page.keyboard.press('m');
    keys.unmuted = await page.evaluate(() => !document.getElementById('video').muted);
    await page.keyboard.press(' ');
    keys.paused = await page.evaluate(() => document.getElementById('video').paused);
    const at = await page.evaluate(() => document.getElementById('video').currentTime);
    await page.keyboard.press('ArrowRight');
    keys.seeked = await page.evaluate((t) => document.getElementById('video').currentTime >= t + 4, at);
    report.keys = keys;

    // The cookies were renewed before they expired, and the edge still serves the title
    // after the first ones have.
    await until(page, 'cookies renewed', (e) => window.hlspipe.expires > e, firstExpiry, 60);
    await until(page, 'first cookies expired', (e) => Date.now() / 1000 > e + 1, firstExpiry, 60);
    report.afterExpiry = await page.evaluate(async () => (await fetch(window.hlspipe.master, { credentials: 'include' })).status);

    // The failure, and the page at phone width.
    await page.locator('#titles li.title[data-title="corrupt"]').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(shots, 'dev-page-failed.png') });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(shots, 'dev-page-phone.png'), fullPage: true });
    report.phoneOverflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
    report.ok = report.offHost.length === 0 && report.pageErrors.length === 0 && !report.phoneOverflow &&
      report.unnamed.length === 0 && report.oneRungMenu[0] === 1 && report.oneRungMenu[1] === true && report.lowContrast.length === 0 && report.tabOrder[0] === 'file' &&
      keys.unmuted && keys.paused && keys.seeked && report.afterExpiry === 200;
  } finally {
    await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
  finish(report.ok ? 0 : 1);
}

main().catch((e) => { report.error = String(e && e.message ? e.message : e).split('\n')[0]; finish(1); });
