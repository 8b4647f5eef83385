// The time to first paint of one ladder page in headless Chromium, for bench/real_size.sh:
// prints {"fcp_ms", "drawn_ms"}: the first contentful paint, and when the curves the page fetched
// (its /curves answer) have been drawn (two animation frames after that answer arrived).
// Usage: node web/test/paint.mjs URL. Env: LADDER_NODE_DIR (where playwright-core is installed),
// CHROMIUM (default /usr/bin/chromium), PAINT_TIMEOUT_MS (default 120000).
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

const url = process.argv[2];
const timeout = Number(process.env.PAINT_TIMEOUT_MS || 120000);
const require = createRequire(join(resolve(process.env.LADDER_NODE_DIR || '.'), 'noop.js'));
const { chromium } = require('playwright-core');

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const t0 = Date.now();
  const curves = page.waitForResponse((r) => r.url().includes('/curves'), { timeout });
  await page.goto(url, { waitUntil: 'commit', timeout });
  const answer = await curves;
  await answer.finished();
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  const drawn = Date.now() - t0;
  const fcp = await page.evaluate(() => {
    const e = performance.getEntriesByName('first-contentful-paint')[0];
    return e ? e.startTime : null;
  });
  console.log(JSON.stringify({ fcp_ms: fcp, drawn_ms: drawn }));
} catch (e) {
  console.error(`paint: ${String(e.message || e).split('\n')[0]}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
