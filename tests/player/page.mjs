// Opens a real page (the `hlspipe dev` player page) in Debian's headless Chromium and waits
// until its first <video> has played past N seconds, the way a person would watch it.
//
//   node tests/player/page.mjs <URL> [--seconds 3] [--timeout 60] [--screenshot out.png]
//
// Prints one JSON line {"ok":bool,"currentTime":n,"status":"…","httpErrors":[...]} and exits
// 0 when the video played, 1 when it did not, 2 when the harness itself could not run.

import { chromium } from 'playwright-core';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CHROMIUM = process.env.HLSPIPE_CHROMIUM || '/usr/bin/chromium';

function harnessFailure(message) {
  console.log(JSON.stringify({ ok: false, currentTime: 0, status: `harness/${message}`, httpErrors: [] }));
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { url: null, seconds: 3, timeout: 60, screenshot: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => (i + 1 < argv.length ? argv[++i] : harnessFailure(`${a} needs a value`));
    if (a === '--seconds') opts.seconds = Number(value());
    else if (a === '--timeout') opts.timeout = Number(value());
    else if (a === '--screenshot') opts.screenshot = value();
    else if (a.startsWith('--')) harnessFailure(`unknown option ${a}`);
    else if (opts.url === null) opts.url = a;
    else harnessFailure(`unexpected argument ${a}`);
  }
  if (!opts.url) harnessFailure('usage: page.mjs <URL> [--seconds N] [--screenshot out.png]');
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!existsSync(CHROMIUM)) harnessFailure(`${CHROMIUM} missing: run scripts/install-test-deps.sh`);
  const profile = mkdtempSync(join(tmpdir(), 'hlspipe-chromium-'));
  let context;
  try {
    try {
      context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        viewport: { width: 1280, height: 720 },
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
          '--disable-background-networking', '--disable-component-update', '--disable-sync',
          '--autoplay-policy=no-user-gesture-required'],
      });
    } catch (e) {
      harnessFailure(`chromium did not start: ${String(e.message).split('\n')[0]}`);
    }
    const page = context.pages()[0] ?? (await context.newPage());
    const httpErrors = [];
    page.on('response', (r) => { if (r.status() >= 400) httpErrors.push({ url: r.url(), status: r.status() }); });
    page.on('requestfailed', (r) => httpErrors.push({ url: r.url(), status: 0, failure: r.failure()?.errorText ?? 'failed' }));
    await page.goto(opts.url, { timeout: opts.timeout * 1000 });
    const deadline = Date.now() + opts.timeout * 1000;
    let report;
    for (;;) {
      const s = await page.evaluate(() => ({
        currentTime: document.querySelector('video')?.currentTime ?? 0,
        status: document.getElementById('status')?.textContent ?? '',
      }));
      const timedOut = Date.now() > deadline;
      if (s.currentTime > opts.seconds || timedOut) {
        report = { ok: s.currentTime > opts.seconds, currentTime: s.currentTime, status: s.status, httpErrors };
        break;
      }
      await page.waitForTimeout(250);
    }
    if (opts.screenshot) await page.screenshot({ path: opts.screenshot });
    console.log(JSON.stringify(report));
    process.exitCode = report.ok ? 0 : 1;
  } finally {
    if (context) await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((e) => harnessFailure(String(e && e.message ? e.message : e).split('\n')[0]));
