// ladder web test: runs a small real sweep with `ladder local --serve`, opens its page in headless
// Chromium (playwright-core) and checks what a researcher would see: every job listed, its two
// cooldown branches folded under their trunks with their own D, the state filter, curves growing
// live, the fitted α_N with its interval, the CBS and left-out tables on a given report, a drawn
// screenshot, no "undefined" or "NaN" anywhere, nothing fetched from other hosts, SSE latency
// p95 ≤ 2 s, 404s for unknown sweeps, and a clean SIGINT exit.
// Env: LADDER_BIN (folder of ladder and ladder-train; default target/debug), LADDER_NODE_DIR
// (where playwright-core is installed), CHROMIUM (default /usr/bin/chromium), OUT (screenshot
// folder; default ./browser-results), LADDER_TEST_STEPS (default 300).
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, statSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pngColours } from './png.mjs';

const BIN = resolve(process.env.LADDER_BIN || 'target/debug');
const OUT = resolve(process.env.OUT || 'browser-results');
const STEPS = Number(process.env.LADDER_TEST_STEPS || 300);
const SWEEP = 'browser-test';
const require = createRequire(join(resolve(process.env.LADDER_NODE_DIR || '.'), 'noop.js'));
const { chromium } = require('playwright-core');

const t0 = Date.now();
const log = (msg) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const stderrTail = [];
let ladder = null, browser = null, page = null, stopping = false;

async function fail(msg) {
  console.error(`\nbrowser test FAILED: ${msg}`);
  if (stderrTail.length) console.error(`--- ladder local stderr (last lines) ---\n${stderrTail.join('\n')}`);
  if (page) await page.screenshot({ path: join(OUT, 'failure.png'), fullPage: true }).then(() => console.error(`screenshot: ${join(OUT, 'failure.png')}`), () => {});
  if (browser) await browser.close().catch(() => {});
  if (ladder && ladder.exitCode === null) ladder.kill('SIGKILL');
  process.exit(1);
}

// Polls `fn` until it returns a truthy value, or fails with `what` after `ms`.
async function until(what, ms, fn, every = 250) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) await fail(`timed out after ${ms / 1000} s waiting for ${what}`);
    await sleep(every);
  }
}

// A deterministic corpus of random words, ~100 kB.
function corpus() {
  let s = 7;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const words = Array.from({ length: 400 }, () => Array.from({ length: 2 + Math.floor(rnd() * 7) }, () => 'etaoinshrdlucmfwypvbgkjqxz'[Math.floor(rnd() ** 1.6 * 26)]).join(''));
  const out = [];
  let n = 0;
  while (n < 100_000) {
    const line = Array.from({ length: 6 + Math.floor(rnd() * 10) }, () => words[Math.floor(rnd() ** 2 * words.length)]).join(' ') + '.\n';
    out.push(line);
    n += line.length;
  }
  return out.join('');
}

const SPEC = `name = "${SWEEP}"
dataset = "toy"
seeds = [0]

[model]
n_ctx = 32
d_head = 8
shapes = [[1, 16], [1, 32], [2, 32], [2, 48]]

[train]
batch_tokens = 512
steps = ${STEPS}
lr = 3e-3
schedule = "constant"
warmup_steps = 20
micro_batch = 4
eval_every = 10
checkpoint_every = 50

[[branch]]
name = "cool"
from = "main"
shapes = [[1, 16], [1, 32]]
cooldown = { to_tokens = [1.2e5], fraction = 0.2 }

[resources]
device = "cpu"
threads = 1
`;
const JOBS = 6, TRUNKS = 4;

// The branches start folded under their trunks, each trunk's toggle counts them, a branch's D is
// its cooldown's end (120k), and opening a trunk shows its branch.
async function branchesFold() {
  const view = () => page.$$eval('tr[data-job-id]', (rs) => rs.map((r) => ({ id: r.dataset.jobId, trunk: r.dataset.trunk,
    hidden: r.hidden, d: r.children[3] && r.children[3].textContent, fold: (r.querySelector('button.fold') || {}).textContent })));
  const v = await view();
  const branches = v.filter((r) => r.trunk), trunks = v.filter((r) => !r.trunk);
  if (branches.length !== JOBS - TRUNKS || trunks.length !== TRUNKS) await fail(`${branches.length} branch rows and ${trunks.length} trunks: ${JSON.stringify(v)}`);
  if (branches.some((r) => !r.hidden)) await fail(`branch rows are not folded: ${JSON.stringify(v)}`);
  if (branches.some((r) => r.d !== '120k')) await fail(`a cooldown's D reads ${JSON.stringify(branches.map((r) => r.d))}, expected 120k`);
  const t = trunks.find((r) => r.id === branches[0].trunk);
  if (!t || t.fold !== '▸ 1 branch') await fail(`trunk #${branches[0].trunk}'s toggle reads ${t && t.fold}`);
  await page.click(`button.fold[data-trunk="${t.id}"]`);
  const after = await view();
  const opened = after.find((r) => r.id === branches[0].id);
  if (opened.hidden || after.find((r) => r.id === t.id).fold !== '▾ 1 branch') await fail(`opening #${t.id} left ${JSON.stringify(after)}`);
  await page.click(`button.fold[data-trunk="${t.id}"]`);
  log(`branches: ${branches.length} folded under ${new Set(branches.map((r) => r.trunk)).size} trunks, D ${branches[0].d}, toggle opens and closes`);
}

// The state filter shows every job in that state, folded branches included.
async function stateFilter() {
  const visible = () => page.$$eval('tr[data-job-id]', (rs) => rs.filter((r) => !r.hidden).length);
  if (await visible() !== TRUNKS) await fail(`${await visible()} rows show unfiltered, expected the ${TRUNKS} trunks`);
  await page.selectOption('select[name=state]', 'succeeded');
  if (await visible() !== JOBS) await fail(`filtered by succeeded, ${await visible()} rows show, expected ${JOBS}`);
  await page.selectOption('select[name=state]', 'failed');
  if (await visible() !== 0) await fail(`filtered by failed, ${await visible()} rows show`);
  await page.selectOption('select[name=state]', '');
}

// Each law's plot stays in its cell: a chart drawn before its siblings joined the grid kept the
// whole row's width and covered them.
async function plotsInTheirCells() {
  const overflow = await page.evaluate(() => [...document.querySelectorAll('#fits figure.chart')]
    .map((f) => [f.querySelector('canvas'), f.getBoundingClientRect().width])
    .filter(([c, w]) => c && c.getBoundingClientRect().width > w + 1).length);
  const drawn = await page.evaluate(() => document.querySelectorAll('#fits figure.chart canvas').length);
  if (drawn < 2 || overflow) await fail(`${overflow} of the fits' ${drawn} plots are wider than their cells`);
  log(`fits: ${drawn} plots, each within its cell`);
}

// The fits panel on a given report: the CBS table names each trunk, runs left out group by reason.
async function givenReport() {
  const text = await page.evaluate(() => {
    const el = document.createElement('div');
    const excluded = [1, 2, 3, 5, 9].map((job) => ({ job, reason: job === 9 ? 'cancelled' : 'still queued' }));
    const cbs = [{ trunk: 7, n: 3.3e4, step: 200, tokens: 2e5, loss: 2.5, cbs: 4096, lo: 2048, hi: 8192, lower_bound: false,
      overhead: [[1024, 0], [2048, 0.1], [8192, 0.5]], b_simple: 2048, ratio: 2 }];
    Ladder.fits.render(el, { report: { runs: 3, cbs, excluded, skipped: [] }, computed_ms: 0 });
    return el.textContent;
  });
  for (const want of ['#7', '4.1k (', 'still queued: 4 jobs: 1-3, 5', 'cancelled: job #9']) {
    if (!text.includes(want)) await fail(`the fits panel on a given report lacks "${want}": ${text}`);
  }
  if (/undefined|NaN/.test(text)) await fail(`the fits panel reads: ${text}`);
  await givenAdditivity();
  await givenPredictions();
}

// The fits panel says whether Chinchilla's additive form fits the runs: the demo's ends without
// the 1-layer sizes, as `ladder fit` prints them, but only the two end sizes of its six (the
// fit's fall is the report's, as the server computes it from Chinchilla's B and β).
async function givenAdditivity() {
  const { text, red } = await page.evaluate(() => {
    const el = document.createElement('div');
    const e = (value) => ({ value, lo: value * 0.9, hi: value * 1.1 });
    const chinchilla = { intervals: [e(1.049), e(3.461), e(68.47), e(0.2631), e(0.3581)], excluded_highest_loss: 0,
      fit: { r2: 0.995, runs: 48, n_range: { lo: 25472, hi: 1546720 }, d_range: { lo: 106496, hi: 1200128 } } };
    const additivity = { d_lo: 106496, d_hi: 1200128, mean_gain: 0.6, rejected: true, fit_gain: 0.6290,
      sizes: [{ n: 25472, gain: 0.5622, runs: 1 }, { n: 1546720, gain: 0.6361, runs: 1 }], slope: { value: 0.0471, lo: 0.0332, hi: 0.0610 } };
    Ladder.fits.render(el, { report: { runs: 48, chinchilla, additivity, excluded: [], skipped: [] }, computed_ms: 0 });
    return { text: el.textContent, red: [...el.querySelectorAll('.additivity .fail')].map((x) => x.textContent) };
  });
  if (red.join() !== 'rejected') await fail(`the fits panel's additivity marks in red ${JSON.stringify(red)}, not "rejected"`);
  for (const want of ["Chinchilla's additivity rejected", '+0.047 [+0.033, +0.061] nats per decade of N', "the fit's fall is 0.629 at every N", 'expect Chinchilla to over-predict']) {
    if (!text.includes(want)) await fail(`the fits panel lacks "${want}": ${text}`);
  }
  if (/undefined|NaN/.test(text)) await fail(`the fits panel reads: ${text}`);
}

// The sealed targets' panel on given predictions: the lock, each law's interval and score.
async function givenPredictions() {
  const shown = await page.evaluate(() => {
    const el = document.createElement('div');
    const target = { job: 17, label: '2x48 D=3.840e3 seed 0', n: 56640, d: 3840, tokens: 3840, c: 1.3e9, s: 60 };
    const laws = [{ law: 'chinchilla', predicted: { value: 3.0247, lo: 2.9178, hi: 3.0675 }, error: -0.0004, covered: true, vs_persistence: 0.01 }];
    const p = { sweep_id: 1, sweep: 's', revealed_ms: 1, targets: [{ target, state: 'succeeded', measured: 3.0259,
      baselines: { persistence: 3.2398, two_point: 2.9862 }, persistence_error: 0.0707, two_point_error: -0.0131, laws }],
      lock: { locked_ms: 1, cause: 'fits_ended', options_sha256: 'ab'.repeat(32), points_sha256: 'cd'.repeat(32), fitted_runs: 16,
        backtest: [{ law: 'chinchilla', from: 0, rows: 88, high: 70, low: 18, mean_error: 0.012, coverage: 0.7, too_narrow: true },
          { law: 'chinchilla', from: 0.5, rows: 32, high: 28, low: 4, mean_error: 0.0171, coverage: 0.59, too_narrow: true },
          { law: 'nd', from: 0, rows: 88, high: 40, low: 48, mean_error: -0.001, coverage: 0.95, too_narrow: false },
          { law: 'n', from: 0, rows: 4, high: 0, low: 4, mean_error: -0.03, coverage: 0.25, too_narrow: false }],
        // The demo's ends without 1-layer sizes, as `ladder fit` prints them, but only the two
        // end sizes of its six (so "(2 sizes)").
        additivity: { d_lo: 106496, d_hi: 1200128, mean_gain: 0.6, rejected: true,
          sizes: [{ n: 25472, gain: 0.5622, runs: 1 }, { n: 1546720, gain: 0.6361, runs: 1 }],
          slope: { value: 0.0471, lo: 0.0332, hi: 0.0610 } } } };
    Ladder.predictions.render(el, p);
    return { text: el.textContent, red: [...el.querySelectorAll('.backtest .fail')].map((e) => e.textContent),
      additivity: [...el.querySelectorAll('.additivity .fail')].map((e) => e.textContent) };
  });
  const { text, red, additivity } = shown;
  if (red.join() !== '59%') await fail(`the backtest marks in red ${JSON.stringify(red)}, not Chinchilla's 59% alone (L(N)'s 25% of 4 is too few to judge)`);
  if (additivity.join() !== 'rejected') await fail(`the additivity line marks in red ${JSON.stringify(additivity)}, not "rejected"`);
  for (const want of ['fitted on 16 runs', 'Backtest at the lock', '≥ 0.5', '59%', '28 / 4', '+1.71%', '95%', '40 / 48', '#17', 'measured 3.0259', 'Chinchilla', '[2.9178, 3.0675]', '-0.04%', 'yes', 'persistence', '+7.07%',
    "Chinchilla's additivity at the lock rejected", 'falls 0.562 at N', '0.636 at N', '(2 sizes): +0.047 [+0.033, +0.061] nats per decade of N', 'expect Chinchilla to over-predict']) {
    if (!text.includes(want)) await fail(`the sealed targets' panel lacks "${want}": ${text}`);
  }
  if (/undefined|NaN/.test(text)) await fail(`the sealed targets' panel reads: ${text}`);
}

// Starts `ladder local --serve` on the spec in `tmp`; resolves with the page's URL (from its
// stderr) and a promise of its exit.
async function startLadder(tmp) {
  const args = ['local', join(tmp, 'sweep.toml'), '--dataset', `toy=${join(tmp, 'corpus.txt')}`, '--tokenizer', 'byte',
    '--data-dir', join(tmp, 'data'), '--trainer', join(BIN, 'ladder-train'), '--slots', 'cpu,cpu',
    '--http-listen', '127.0.0.1:0', '--serve'];
  log(`${join(BIN, 'ladder')} ${args.join(' ')}`);
  ladder = spawn(join(BIN, 'ladder'), args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LADDER_COORDINATOR: '' } });
  let pageUrl = null, buf = '';
  ladder.stderr.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      stderrTail.push(line);
      if (stderrTail.length > 40) stderrTail.shift();
      const m = line.match(/^ladder local: page at (http:\/\/\S+)/);
      if (m) pageUrl = m[1];
      if (/^ladder local:/.test(line)) log(line);
    }
  });
  const exited = new Promise((r) => ladder.on('exit', (code, signal) => r({ code, signal })));
  ladder.on('exit', (code, signal) => { if (!stopping) fail(`ladder local exited early (code ${code}, signal ${signal})`); });
  await until("the 'ladder local: page at URL' line", 120_000, () => pageUrl);

  return { pageUrl, exited };
}

// A full-page screenshot that is not blank, with curves drawn on the loss chart.
async function screenshot() {
  await sleep(500);
  const shot = join(OUT, 'sweep.png');
  await page.screenshot({ path: shot, fullPage: true });
  const size = statSync(shot).size, png = pngColours(readFileSync(shot));
  if (size <= 20_000) await fail(`screenshot ${shot} is ${size} bytes (≤ 20 kB): blank?`);
  if (png.colours <= 256) await fail(`screenshot ${shot} has ${png.colours} colours: blank?`);
  const inked = await page.evaluate(() => {
    const c = document.querySelector('figure.chart canvas');
    if (!c) return 0;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 40) n++;
    return n;
  });
  if (inked < 300) await fail(`the loss chart has ${inked} coloured pixels: no curves drawn`);
  return { shot, size, png };
}

async function main() {
  mkdirSync(OUT, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'ladder-browser-'));
  writeFileSync(join(tmp, 'corpus.txt'), corpus());
  writeFileSync(join(tmp, 'sweep.toml'), SPEC);

  // 1. ladder local, serving the page.
  const { pageUrl, exited } = await startLadder(tmp);
  const base = new URL(pageUrl).origin;
  if (!new URL(pageUrl).pathname.startsWith(`/sweeps/${SWEEP}`)) await fail(`page URL ${pageUrl} is not /sweeps/${SWEEP}`);

  // 2. The page in Chromium, every request recorded.
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const requests = [], errors = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') log(`console error: ${m.text()}`); });
  await page.goto(pageUrl);

  // 3. Every job listed.
  const rows = () => page.$$eval('tr[data-job-id]', (rs) => rs.map((r) => ({ id: r.dataset.jobId, state: r.dataset.state, points: Number(r.dataset.points) })));
  await until(`${JOBS} job rows`, 60_000, async () => (await rows()).length >= JOBS);
  const listed = await rows();
  if (listed.length !== JOBS) await fail(`the jobs table lists ${listed.length} jobs, expected ${JOBS}`);
  log(`jobs table: ${listed.length} rows (${listed.map((r) => `#${r.id}`).join(' ')})`);
  await branchesFold();

  // 4. A running job's point count grows between two reads.
  let prev = null, grew = null;
  await until('a running job whose point count grows', 300_000, async () => {
    const now = await rows();
    if (prev) {
      for (const r of now) {
        const p = prev.find((x) => x.id === r.id);
        if (p && p.state === 'running' && p.points > 0 && r.points > p.points) grew = `#${r.id}: ${p.points} → ${r.points} points`;
      }
    }
    if (!grew && now.every((r) => ['succeeded', 'failed', 'cancelled', 'pending'].includes(r.state))) await fail('the sweep ended before a running job was seen to grow');
    prev = now;
    return grew;
  }, 400);
  log(`live: ${grew}`);

  // 5. The sweep ends; the fitted α_N with its interval appears.
  await until('every job to succeed', 900_000, async () => {
    const now = await rows();
    const bad = now.find((r) => r.state === 'failed' || r.state === 'cancelled');
    if (bad) await fail(`job #${bad.id} ${bad.state}`);
    return now.every((r) => r.state === 'succeeded');
  }, 1000);
  log('all jobs succeeded');
  const alpha = /α_N = (-?[\d.e+-]+) \[(-?[\d.e+-]+), (-?[\d.e+-]+)\]/;
  // The fit of the ended sweep: every run in it, none left out as still running.
  const fitText = await until('#fits to show α_N [lo, hi] fitted on every run', 300_000, async () => {
    const t = await page.textContent('#fits').catch(() => '');
    return alpha.test(t || '') && !/still running/.test(t) && t;
  }, 1000);
  const head = await page.textContent('.summary');
  if (!new RegExp(`${JOBS}/${JOBS} succeeded`).test(head) || /running|queued/.test(head)) await fail(`the header reads "${head}" after the sweep ended`);
  log(`fits: ${fitText.match(alpha)[0]}`);
  await plotsInTheirCells();
  // Each fitted law names the point it misses most.
  const worstRow = /Worst fitted point[\s\S]*[+-]\d+\.\d\d% at N /;
  if (!worstRow.test(fitText)) await fail('the laws table names no worst fitted point');

  await stateFilter();
  await givenReport();
  const body = await page.textContent('main');
  const bad = body.match(/.{0,40}(undefined|NaN).{0,40}/);
  if (bad) await fail(`the page reads "${bad[0]}"`);

  // 6. A screenshot that is not blank, with the loss chart drawn.
  const { shot, size, png } = await screenshot();

  // 7. SSE latency: points committed → drawn.
  const lat = (await page.evaluate(() => window.__ladderLatencies || [])).slice().sort((a, b) => a - b);
  if (!lat.length) await fail('window.__ladderLatencies is empty: no points event was drawn');
  const pct = (q) => lat[Math.min(lat.length - 1, Math.ceil(q * lat.length) - 1)];
  const [p50, p95] = [pct(0.5), pct(0.95)];
  log(`latency over ${lat.length} points events: p50 ${p50} ms, p95 ${p95} ms`);
  if (p95 > 2000) await fail(`latency p95 ${p95} ms > 2000 ms`);

  // 8. A job page renders its curve.
  await page.goto(`${base}/jobs/${listed[0].id}`);
  await until('the job page curve', 30_000, () => page.$('figure.chart canvas'));

  // 9. Unknown sweeps are 404s, as JSON and as a page.
  for (const path of ['/api/sweeps/nope', '/sweeps/nope']) {
    const r = await fetch(base + path);
    if (r.status !== 404) await fail(`GET ${path} answered ${r.status}, expected 404`);
  }

  // 10. Nothing from other hosts; no script errors.
  const foreign = requests.filter((u) => !/^(data|blob|about):/.test(u) && new URL(u).hostname !== '127.0.0.1');
  if (foreign.length) await fail(`requests to other hosts: ${[...new Set(foreign)].join(', ')}`);
  if (errors.length) await fail(`script errors on the page: ${errors.join('; ')}`);
  await browser.close();
  browser = page = null;

  // 11. SIGINT stops ladder cleanly.
  stopping = true;
  ladder.kill('SIGINT');
  const { code, signal } = await Promise.race([exited, sleep(30_000).then(() => ({ code: 'timeout' }))]);
  if (code !== 130 && code !== 0) await fail(`ladder local exited with ${code ?? signal} after SIGINT, expected 130 or 0`);
  rmSync(tmp, { recursive: true, force: true });

  console.log(`\nbrowser test passed in ${((Date.now() - t0) / 1000).toFixed(0)} s
  rows: ${listed.length}; ${grew}
  fits: ${fitText.match(alpha)[0]}
  latency: p50 ${p50} ms, p95 ${p95} ms over ${lat.length} events
  requests: ${requests.length}, all to 127.0.0.1
  screenshot: ${shot} (${(size / 1024).toFixed(0)} kB, ${png.width}×${png.height}, ${png.colours} colours)
  ladder exit: ${code}`);
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e)));
