// ladder web: unit checks of the tick, label, colour and grouping functions (web/assets/ticks.js,
// colours.js, groups.js), run with plain node: `node web/test/units.mjs`. Exits 1 on the first failure.
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import assert from 'node:assert/strict';

const here = new URL('../assets/', import.meta.url);
const ctx = vm.createContext({});
for (const f of ['dom.js', 'ticks.js', 'colours.js', 'groups.js', 'charts.js']) vm.runInContext(readFileSync(new URL(f, here), 'utf8'), ctx, { filename: f });
const { ticks, colours, groups, charts } = ctx.Ladder;
const { fmt, logTicks, linTicks } = ticks;

let n = 0;
function check(name, fn) {
  try {
    fn();
    n++;
  } catch (e) {
    console.error(`units: FAIL ${name}\n${e.message}`);
    process.exit(1);
  }
}

const mant = (v) => Number((v / 10 ** Math.floor(Math.log10(v) + 1e-9)).toPrecision(6));
// A tick is round: m × 10^k with m of at most 2 significant digits.
const round = (v) => Number(v.toPrecision(2)) === v;

check('labels', () => {
  const cases = [[1000, 'si', '1k'], [2000, 'si', '2k'], [5000, 'si', '5k'], [1e6, 'si', '1M'], [2.5e6, 'si', '2.5M'],
    [3e9, 'si', '3B'], [1e12, 'si', '1T'], [1e18, 'si', '1e18'], [1e18, 'exp', '1e18'], [2e21, 'exp', '2e21'],
    [500, 'exp', '500'], [1, 'si', '1'], [0.5, 'si', '0.5'], [2.25, 'plain', '2.25'], [3.4567, 'plain', '3.46'],
    [999999, 'si', '1M'], [1e-4, 'si', '1e-4'], [0, 'si', '0'], [null, 'si', '–'], [NaN, 'si', '–']];
  for (const [v, style, want] of cases) assert.equal(fmt(v, style), want, `fmt(${v}, ${style})`);
});

check('log ticks over decades are 1, 2, 5 × 10^k', () => {
  const t = logTicks(3e3, 4e5, 10);
  assert.deepEqual([...t], [5e3, 1e4, 2e4, 5e4, 1e5, 2e5]);
  assert.deepEqual([...t.map((v) => fmt(v))], ['5k', '10k', '20k', '50k', '100k', '200k']);
});

check('log ticks thin to whole decades when crowded', () => {
  const t = logTicks(1e12, 1e21, 6);
  assert.ok(t.length <= 6 && t.length >= 3, `count ${t.length}`);
  for (const v of t) assert.equal(mant(v), 1, `${v} is a power of ten`);
  assert.ok(t.map((v) => fmt(v, 'exp')).every((s) => /^1e\d+$/.test(s)));
});

// Ticks are round: each m × 10^k with m a whole number below 10, or (narrow ranges) multiples of
// one step of 1, 2 or 5 × 10^k.
function onGrid(t) {
  if (t.every((v) => Number(v.toPrecision(1)) === v)) return true;
  if (t.length === 1) return Number(t[0].toPrecision(2)) === t[0];
  const step = Number((t[1] - t[0]).toPrecision(6));
  const sm = mant(step);
  return [1, 2, 5].includes(sm) && t.every((v) => Math.abs(v / step - Math.round(v / step)) < 1e-6);
}

// A label read back: '2.5M' → 2.5e6.
const SUFFIX = { k: 1e3, M: 1e6, B: 1e9, T: 1e12 };
const parse = (s) => (SUFFIX[s.slice(-1)] ? parseFloat(s) * SUFFIX[s.slice(-1)] : Number(s));

check('log ticks on a narrow range stay round', () => {
  for (const [lo, hi] of [[1.83, 3.62], [2.1, 2.4], [252.4, 260.1], [0.031, 0.047], [4.5, 5.5], [1e5, 1.3e5]]) {
    const t = logTicks(lo, hi, 8);
    assert.ok(t.length >= 2, `[${lo}, ${hi}] gave ${t}`);
    for (const v of t) assert.ok(v >= lo && v <= hi, `${v} outside [${lo}, ${hi}]`);
    assert.ok(onGrid(t), `[${lo}, ${hi}]: ${t} are not round`);
  }
  assert.deepEqual([...logTicks(1.83, 3.62, 8)], [2, 2.5, 3, 3.5]);
});

check('labels name their ticks exactly (no 252.4)', () => {
  let seed = 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let i = 0; i < 2000; i++) {
    const lo = 10 ** (random() * 20 - 3), hi = lo * 10 ** (0.03 + random() * 8);
    const t = logTicks(lo, hi, 2 + Math.floor(random() * 10));
    assert.ok(t.length >= 1 && onGrid(t), `[${lo}, ${hi}]: ${t}`);
    for (const v of t) {
      const s = fmt(v, 'si', 4);
      assert.ok(Math.abs(parse(s) / v - 1) < 1e-9, `label ${s} of ${v}`);
      const digits = s.split('e')[0].replace(/[^0-9]/g, '').replace(/^0+/, '').replace(/0+$/, '');
      assert.ok(digits.length <= 4, `label ${s} has too many digits`);
    }
  }
});

check('log ticks keep their labels apart', () => {
  // 300 … 1300 over 230 px with labels 24 px apart: not 400 … 900, 1k (crowded at the top).
  const t = logTicks(300, 1300, 9, 24 / 230);
  for (let i = 1; i < t.length; i++) assert.ok(Math.log10(t[i] / t[i - 1]) / Math.log10(1300 / 300) >= 24 / 230 - 1e-9, `${t}`);
  assert.ok(t.length >= 3, `${t}`);
  // 3 decades over 300 px, 46 px apart: 1, 2, 5 crowd (0.3 decade = 30 px), so decades.
  assert.deepEqual([...logTicks(1e3, 1e6, 10, 46 / 300)], [1e3, 1e4, 1e5, 1e6]);
  assert.deepEqual([...logTicks(1e3, 1e6, 10, 46 / 800)], [1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6]);
});

check('linear ticks', () => {
  assert.deepEqual([...linTicks(0, 1, 6)], [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual([...linTicks(1.83, 3.62, 5)], [2, 2.5, 3, 3.5]);
  assert.deepEqual([...linTicks(0.1, 0.3, 3)], [0.1, 0.2, 0.3]);
});

check('viridis ends and monotone lightness', () => {
  assert.deepEqual(Array.from(colours.rgb(0)), [68, 1, 84]);
  const lum = (c) => 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  let prev = -1;
  for (let i = 0; i <= 20; i++) {
    const l = lum(colours.rgb(i / 20));
    assert.ok(l > prev, `lightness rises at ${i / 20}`);
    prev = l;
  }
  assert.ok(lum(colours.rgb(1)) < 200, 'the top end stays readable on white');
  assert.match(colours.css(0.5), /^rgb\(\d+,\d+,\d+\)$/);
});

check('log colour scale', () => {
  const t = colours.logScale(1e4, 1e6);
  assert.equal(t(1e4), 0);
  assert.equal(t(1e6), 1);
  assert.ok(Math.abs(t(1e5) - 0.5) < 1e-12);
  assert.equal(t(1e9), 1);
  assert.equal(colours.logScale(5, 5)(5), 0.5);
});

check('job ids print as ranges', () => {
  assert.equal(groups.idRanges([5, 1, 2, 3, 12, 13]), '1-3, 5, 12-13');
  assert.equal(groups.idRanges([7, 7]), '7');
  assert.equal(groups.idRanges([]), '');
});

check('runs left out group by reason in the order reasons first appear', () => {
  const g = groups.byReason([{ job: 3, reason: 'cancelled' }, { job: 1, reason: 'still queued' }, { job: 2, reason: 'cancelled' }]);
  assert.deepEqual(JSON.parse(JSON.stringify(g)), [{ reason: 'cancelled', jobs: [3, 2] }, { reason: 'still queued', jobs: [1] }]);
});

check("a branch's D is its own end, not 'all'", () => {
  assert.equal(groups.dataTokens({ dataset_tokens: 5e5 }), 5e5);
  assert.equal(groups.dataTokens({ dataset_tokens: null }), null);
  const cooldown = { dataset_tokens: null, branch: { parent: 3, step: 80, tokens: 1e6, kind: 'cooldown', to_tokens: 1.2e6 } };
  assert.equal(groups.dataTokens(cooldown), 1.2e6);
  const batch = { branch: { parent: 3, step: 80, tokens: 1e6, kind: 'batch', k: 4, window_tokens: 2e5 } };
  assert.equal(groups.dataTokens(batch), 1.2e6);
});

check('a branch of a branch hangs under the root trunk; folded rows show only when opened or filtered', () => {
  const parentOf = new Map([[10, 3], [11, 10], [12, 12]]);
  assert.equal(groups.trunkOf(11, parentOf), 3);
  assert.equal(groups.trunkOf(3, parentOf), 3);
  assert.equal(groups.trunkOf(12, parentOf), 12, 'a cycle stops');
  const open = new Set([3]);
  assert.equal(groups.shown({ trunk: null, state: 'running' }, '', new Set()), true);
  assert.equal(groups.shown({ trunk: 5, state: 'running' }, '', open), false);
  assert.equal(groups.shown({ trunk: 3, state: 'running' }, '', open), true);
  assert.equal(groups.shown({ trunk: 5, state: 'failed' }, 'failed', new Set()), true, 'a filter shows folded branches');
  assert.equal(groups.shown({ trunk: null, state: 'succeeded' }, 'failed', open), false);
});

check('curves whose x differ share x exactly while the table is small, and a log grid past it', () => {
  const small = charts.align([{ xs: [1, 10], ys: [5, 4] }, { xs: [2, 10], ys: [6, 3] }]);
  assert.deepEqual(JSON.parse(JSON.stringify(small)), [[1, 2, 10], [5, null, 4], [null, 6, 3]]);
  // 1,000 curves of 200 points each at x of their own: 200,000 distinct x.
  const many = Array.from({ length: 1000 }, (_, k) => {
    const xs = Array.from({ length: 200 }, (_, i) => (i + 1) * 1000 + k);
    return { xs, ys: xs.map((x) => 10 / Math.log(x)) };
  });
  const t = charts.align(many);
  assert.equal(t.length, 1001);
  assert.ok(t[0].length <= 1200, `${t[0].length} columns`);
  for (let i = 1; i < t[0].length; i++) assert.ok(t[0][i] > t[0][i - 1]);
  // Each curve keeps its ends, each within half a column of log x of where it was.
  const step = Math.log(t[0][t[0].length - 1] / t[0][0]) / 1199;
  const col = t[1], first = col.findIndex((y) => y != null);
  assert.ok(Math.abs(Math.log(t[0][first] / 1000)) <= step / 2 + 1e-12);
  assert.equal(col.filter((y) => y != null).pop(), 10 / Math.log(200_000));
});

console.log(`units: ${n} checks passed`);
