// ladder web: a uPlot chart of many curves on log axes (round ticks, no legend over the data, a
// hover caption under it) that takes whole series and redraws with setData.
(function (L) {
  'use strict';
  const { fmt, logTicks, logRange } = L.ticks;
  const { h } = L.dom;

  const MAX_POINTS = 1200; // per series, after thinning
  const FONT = '12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';

  // Keeps at most ~`max` points, evenly spread in log x (always the first and last).
  function thin(xs, ys, max = MAX_POINTS) {
    if (xs.length <= max) return [xs, ys];
    const lo = Math.log(xs[0]), span = Math.log(xs[xs.length - 1]) - lo || 1;
    const ox = [], oy = [];
    let last = -1;
    for (let i = 0; i < xs.length; i++) {
      const b = Math.floor(((Math.log(xs[i]) - lo) / span) * max);
      if (b !== last || i === xs.length - 1) {
        ox.push(xs[i]);
        oy.push(ys[i]);
        last = b;
      }
    }
    return [ox, oy];
  }

  // Cells of uPlot's aligned table (series × distinct x) past which x snaps to a shared grid.
  const MAX_CELLS = 2_000_000;

  // Series with their own x → uPlot's aligned table: the sorted union of x, nulls elsewhere. When
  // that table would pass MAX_CELLS (1,000 curves whose x differ made it 1,000 × 200,000), x
  // snaps to MAX_POINTS log-spaced columns shared by every series, the last point of each
  // series in a column kept: under a pixel apart on a chart a few hundred pixels wide.
  function align(series) {
    const cols = series.map((s) => {
      const xs = [], ys = [];
      for (let i = 0; i < s.xs.length; i++) {
        const x = s.xs[i], y = s.ys[i];
        if (x > 0 && y != null && Number.isFinite(y) && (!s.logY || y > 0)) {
          xs.push(x);
          ys.push(y);
        }
      }
      return thin(xs, ys);
    });
    const all = new Set();
    for (const [xs] of cols) for (const x of xs) all.add(x);
    if (all.size * cols.length > MAX_CELLS) return gridded(cols, all);
    const x0 = Float64Array.from(all).sort();
    const at = new Map();
    x0.forEach((x, i) => at.set(x, i));
    const out = [Array.from(x0)];
    for (const [xs, ys] of cols) {
      const col = new Array(x0.length).fill(null);
      for (let i = 0; i < xs.length; i++) col[at.get(xs[i])] = ys[i];
      out.push(col);
    }
    return out;
  }

  // The aligned table on MAX_POINTS log-spaced columns over the range of `all`.
  function gridded(cols, all) {
    let lo = Infinity, hi = -Infinity;
    for (const x of all) {
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
    const l0 = Math.log(lo), span = Math.log(hi) - l0 || 1, n = MAX_POINTS;
    const bin = (x) => Math.min(n - 1, Math.round(((Math.log(x) - l0) / span) * (n - 1)));
    const used = new Array(n).fill(false);
    const grid = cols.map(([xs, ys]) => {
      const col = new Array(n).fill(null);
      for (let i = 0; i < xs.length; i++) {
        const b = bin(xs[i]);
        col[b] = ys[i];
        used[b] = true;
      }
      return col;
    });
    const keep = [];
    for (let b = 0; b < n; b++) if (used[b]) keep.push(b);
    const out = [keep.map((b) => Math.exp(l0 + (span * b) / (n - 1)))];
    for (const col of grid) out.push(keep.map((b) => col[b]));
    return out;
  }

  function axis(style, label, log, vertical) {
    return {
      label,
      font: FONT,
      labelFont: FONT,
      labelSize: 18,
      gap: 4,
      size: vertical ? 54 : 36,
      stroke: '#4b5563',
      grid: { stroke: '#e5e7eb', width: 1 },
      ticks: { stroke: '#d1d5db', width: 1, size: 4 },
      filter: (u, splits) => splits,
      splits: (u, i, min, max) => {
        const px = (vertical ? u.bbox.height : u.bbox.width) / devicePixelRatio;
        const gap = vertical ? 24 : 46; // px between labels
        const most = Math.max(2, Math.floor(px / gap));
        return log ? logTicks(min, max, most, gap / px) : L.ticks.linTicks(min, max, Math.min(most, 7));
      },
      values: (u, splits) => splits.map((v) => fmt(v, style, 4)),
    };
  }

  // A padded range on a log or linear scale.
  function range(log) {
    return (u, min, max) => {
      if (min == null || max == null) return log ? [1, 10] : [0, 1];
      if (log) return logRange(min, max);
      const pad = (max - min) * 0.05 || Math.abs(max) * 0.1 || 1;
      return [min - pad, max + pad];
    };
  }

  // A chart in `parent`: opts {title, x: {label, style, log, unit}, y: {label, style, log},
  // height, empty, legend (a key beside the title, for a few series)}. chart.update([{key, label, colour, xs, ys, width, dash, dots, line}]) redraws.
  function chart(parent, opts) {
    const plot = h('div', { class: 'chart-plot' });
    const hover = h('div', { class: 'chart-hover' }, '\u00a0');
    const empty = h('div', { class: 'chart-empty' }, opts.empty || 'No points yet');
    const keyEl = h('span', { class: 'chart-key' });
    const box = h('figure', { class: 'chart' }, h('figcaption', {}, opts.title, opts.legend ? keyEl : null), plot, empty, hover);
    parent.appendChild(box);
    const xLog = opts.x.log !== false, yLog = opts.y.log !== false;
    let u = null, keys = '', meta = [], zoomed = false;
    plot.addEventListener('dblclick', () => { zoomed = false; });

    function caption(idx, si) {
      if (si == null || si < 1 || !u) return;
      const s = meta[si - 1], x = u.data[0][idx], y = u.data[si][idx];
      const where = y == null ? '' : ` · ${opts.y.label} ${fmt(y, opts.y.style, 4)} at ${fmt(x, opts.x.style, 3)} ${opts.x.unit || ''}`;
      L.dom.setText(hover, `${s.label}${where}`);
    }

    function build(series, data) {
      if (u) u.destroy();
      const width = Math.max(240, plot.clientWidth || parent.clientWidth || 600);
      u = new uPlot({
        width,
        height: opts.height || 300,
        legend: { show: false },
        cursor: { focus: { prox: 24 }, drag: { x: true, y: true, uni: 40 }, points: { size: 6 } },
        focus: { alpha: 0.25 },
        scales: {
          x: { time: false, distr: xLog ? 3 : 1, log: 10, range: range(xLog) },
          y: { distr: yLog ? 3 : 1, log: 10, range: range(yLog) },
        },
        axes: [axis(opts.x.style, opts.x.label, xLog, false), axis(opts.y.style, opts.y.label, yLog, true)],
        series: [{}].concat(series.map((s) => ({
          label: s.label,
          stroke: s.colour,
          width: s.width || 1.5,
          dash: s.dash,
          spanGaps: true,
          paths: s.line === false ? () => null : undefined,
          points: s.dots ? { show: true, size: s.dotSize || 6, fill: s.colour, stroke: s.colour } : { show: false },
        }))),
        hooks: {
          setCursor: [(self) => {
            const si = self.series.findIndex((s, i) => i > 0 && s._focus);
            if (self.cursor.idx != null && si > 0) caption(self.cursor.idx, si);
          }],
          setSeries: [(self, si) => { if (si != null) caption(self.cursor.idx ?? 0, si); }],
          setSelect: [(self) => { if (self.select.width > 0) zoomed = true; }],
        },
      }, data, plot);
    }

    function update(series) {
      const data = align(series.map((s) => ({ ...s, logY: yLog })));
      const has = data[0].length > 0;
      empty.style.display = has ? 'none' : '';
      plot.style.display = has ? '' : 'none';
      if (!has) return;
      const k = series.map((s) => `${s.key}|${s.colour}|${s.dash || ''}`).join(',');
      meta = series;
      if (!u || k !== keys) {
        keys = k;
        if (opts.legend) {
          keyEl.replaceChildren(...series.map((s) => h('span', {},
            h('i', { class: s.line === false ? 'dot' : 'line', style: `background:${s.colour}` }), s.label)));
        }
        build(series, data);
      } else {
        u.setData(data, !zoomed);
      }
    }

    // The chart follows its cell: a grid that gains a sibling chart narrows the cells after the
    // first chart was drawn at the whole row's width (it overlapped its neighbours).
    const resize = () => {
      const width = Math.max(240, plot.clientWidth);
      if (u && plot.clientWidth && width !== u.width) u.setSize({ width, height: opts.height || 300 });
    };
    const observer = typeof ResizeObserver === 'function' ? new ResizeObserver(resize) : null;
    if (observer) observer.observe(plot);
    window.addEventListener('resize', resize);
    const destroy = () => {
      if (observer) observer.disconnect();
      window.removeEventListener('resize', resize);
      if (u) u.destroy();
      u = null;
      box.remove();
    };
    const api = { update, resize, destroy, el: box, get uplot() { return u; } };
    box.ladderChart = api; // for debugging from the console
    return api;
  }

  L.charts = { chart, align, gridded, thin };
})(globalThis.Ladder = globalThis.Ladder || {});
