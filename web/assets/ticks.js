// ladder web: round axis ticks (1, 2, 5 × 10^k on log axes) and compact number labels
// (1k, 2.5M, 1e18). Pure functions; also loaded by web/test/units.mjs.
(function (L) {
  'use strict';

  // Removes float noise: 0.30000000000000004 → 0.3, 2.9999999999e-7 → 3e-7.
  const clean = (v) => parseFloat(v.toPrecision(12));

  // Up to `sig` significant digits, trailing zeros dropped.
  function mant(v, sig = 3) {
    return String(parseFloat(v.toPrecision(sig)));
  }

  // `1e18`, `2.5e-5`.
  function expo(v, sig = 3) {
    const k = Math.floor(Math.log10(Math.abs(v)) + 1e-9);
    const m = parseFloat((v / 10 ** k).toPrecision(sig));
    return m === 10 ? `1e${k + 1}` : `${m}e${k}`;
  }

  // A number as a compact label. style 'si': 1k 2.5M 3B 1T, beyond 1e15 exponent; 'exp': plain
  // below 1e4, else exponent (FLOPs); 'plain': significant digits (losses).
  function fmt(v, style = 'si', sig = 3) {
    if (v == null || !Number.isFinite(v)) return '–';
    if (v === 0) return '0';
    const a = Math.abs(v);
    if (a < 1e-3) return expo(v, sig);
    if (style === 'plain') return a >= 1e6 ? expo(v, sig) : mant(v, Math.max(sig, Math.ceil(Math.log10(a + 1))));
    if (style === 'exp') return a < 1e4 ? mant(v, sig) : expo(v, sig);
    const r = parseFloat(v.toPrecision(sig)), ar = Math.abs(r);
    if (ar >= 1e15) return expo(v, sig);
    for (const [p, s] of [[1e12, 'T'], [1e9, 'B'], [1e6, 'M'], [1e3, 'k']]) {
      if (ar >= p) return `${parseFloat((r / p).toPrecision(sig))}${s}`;
    }
    return String(r);
  }

  // Round linear ticks (multiples of one step of 1, 2 or 5 × 10^k) in [lo, hi]: the finest step
  // giving at most `max`; never none (then the roundest single value of the last try).
  function linTicks(lo, hi, max = 6) {
    if (!(hi > lo)) return Number.isFinite(lo) ? [lo] : [];
    const gen = (step) => {
      const out = [];
      for (let i = Math.ceil(lo / step - 1e-9); i * step <= hi * (1 + 1e-12) + 1e-300; i++) out.push(clean(i * step));
      return out;
    };
    let p = 10 ** Math.floor(Math.log10((hi - lo) / Math.max(1, max))), prev = [];
    for (let tries = 0; tries < 40; tries++, p *= 10) {
      for (const m of [1, 2, 5]) {
        const t = gen(clean(m * p));
        if (!t.length) return prev.length ? [roundest(prev)] : [];
        if (t.length <= max) return t;
        prev = t;
      }
    }
    return [];
  }

  // The value with the fewest significant digits.
  function roundest(vs) {
    const digits = (v) => v.toPrecision(12).split('e')[0].replace(/[-.]/g, '').replace(/0+$/, '').length;
    return vs.reduce((a, b) => (digits(b) < digits(a) ? b : a));
  }

  // Values m × 10^k (m in `ms`) within [lo, hi], every `stride`-th decade.
  function decadeTicks(lo, hi, ms, stride = 1) {
    const out = [];
    const k0 = Math.floor(Math.log10(lo)), k1 = Math.ceil(Math.log10(hi));
    for (let k = k0; k <= k1; k++) {
      if (stride > 1 && ((k % stride) + stride) % stride !== 0) continue;
      for (const m of ms) {
        const v = clean(m * 10 ** k);
        if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(v);
      }
    }
    return out;
  }

  // Round ticks for a log axis over [lo, hi] (lo > 0), at most `max`, adjacent ones at least
  // `minGap` (a fraction of the axis) apart: 1, 2, 5 × 10^k when they fit, else the decades (or
  // every n-th); on narrow ranges 1…9 × 10^k or round linear steps.
  function logTicks(lo, hi, max = 8, minGap = 0) {
    if (!(lo > 0) || !(hi >= lo)) return [];
    const span = Math.log10(hi / lo) || 1;
    const ok = (t) => t.length <= max && t.every((v, i) => i === 0 || Math.log10(v / t[i - 1]) / span >= minGap - 1e-9);
    const t125 = decadeTicks(lo, hi, [1, 2, 5]);
    if (t125.length >= 3) {
      if (ok(t125)) return t125;
      for (let stride = 1; stride <= 40; stride++) {
        const t = decadeTicks(lo, hi, [1], stride);
        if (ok(t)) return t;
      }
      return [];
    }
    const lin = (m) => linTicks(lo, hi, m).filter((v) => v > 0);
    const cands = [t125, decadeTicks(lo, hi, [1, 2, 3, 4, 5, 6, 7, 8, 9]), lin(5), lin(4), lin(3), lin(2), lin(1)];
    for (const need of [3, 2, 1]) {
      const c = cands.find((t) => t.length >= need && ok(t));
      if (c) return c;
    }
    return t125;
  }

  // [lo, hi] of the finite positive values, widened by `pad` of the log span on each side.
  function logRange(lo, hi, pad = 0.04) {
    if (!(lo > 0 && hi > 0)) return [1, 10];
    if (hi / lo < 1.02) { lo /= 1.1; hi *= 1.1; }
    const s = Math.log10(hi / lo) * pad;
    return [lo / 10 ** s, hi * 10 ** s];
  }

  L.ticks = { fmt, expo, linTicks, logTicks, decadeTicks, logRange, clean };
})(globalThis.Ladder = globalThis.Ladder || {});
