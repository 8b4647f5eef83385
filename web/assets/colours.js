// ladder web: the continuous colour scale (viridis, trimmed before its pale yellow end) used to
// colour curves by N, and the colour bar that explains it.
(function (L) {
  'use strict';

  // Viridis at t = 0, 0.1, …, 1 (matplotlib's table, sampled).
  const STOPS = [
    [68, 1, 84], [72, 36, 117], [65, 68, 135], [53, 95, 141], [42, 120, 142], [33, 145, 140],
    [34, 168, 132], [68, 191, 112], [122, 209, 81], [189, 223, 38], [253, 231, 37],
  ];
  // The part of the map used: its yellow end is unreadable on white.
  const T_MAX = 0.85;

  // [r, g, b] at t in [0, 1] of the trimmed map.
  function rgb(t) {
    const u = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * T_MAX * (STOPS.length - 1);
    const i = Math.min(STOPS.length - 2, Math.floor(u)), f = u - i;
    return STOPS[i].map((c, j) => Math.round(c + (STOPS[i + 1][j] - c) * f));
  }

  const css = (t) => `rgb(${rgb(t).join(',')})`;

  // v → t in [0, 1] on a log scale over [lo, hi]; one value maps to the middle.
  function logScale(lo, hi) {
    const a = Math.log(lo), b = Math.log(hi);
    if (!(b > a)) return () => 0.5;
    return (v) => Math.min(1, Math.max(0, (Math.log(v) - a) / (b - a)));
  }

  // A horizontal colour bar for [lo, hi] with round log ticks, into `el` (emptied first).
  function colourBar(el, lo, hi, label) {
    el.textContent = '';
    el.className = 'cbar';
    if (!(lo > 0 && hi > 0)) return;
    const stops = Array.from({ length: 11 }, (_, i) => `${css(i / 10)} ${i * 10}%`).join(',');
    const title = document.createElement('span');
    title.className = 'cbar-label';
    title.textContent = label;
    const wrap = document.createElement('div');
    wrap.className = 'cbar-wrap';
    const bar = document.createElement('div');
    bar.className = 'cbar-bar';
    bar.style.background = `linear-gradient(to right, ${stops})`;
    wrap.appendChild(bar);
    const t = logScale(lo, hi);
    let ticks = lo === hi ? [lo] : L.ticks.logTicks(lo, hi, 6);
    if (ticks.length < 2 && lo !== hi) ticks = [lo, hi];
    for (const v of ticks) {
      const tick = document.createElement('span');
      tick.className = 'cbar-tick';
      tick.style.left = `${(t(v) * 100).toFixed(2)}%`;
      tick.textContent = L.ticks.fmt(v);
      wrap.appendChild(tick);
    }
    el.append(title, wrap);
  }

  L.colours = { rgb, css, logScale, colourBar, T_MAX };
})(globalThis.Ladder = globalThis.Ladder || {});
