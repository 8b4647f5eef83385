// ladder web: the fitted-laws panel (#fits): each law's constants with their 95% intervals, the
// laws not fitted and why, hold-out errors, B_crit, and plots of L(N), L(D) and the frontier.
(function (L) {
  'use strict';
  const { h, clock } = L.dom;
  const { fmt } = L.ticks;

  // 0.0761 → "0.076", 1.89 → "1.891", 8.8e13 → "8.8e13", 496 → "496".
  function num(v) {
    if (v == null || !Number.isFinite(v)) return '–';
    const a = Math.abs(v);
    return a >= 0.01 && a < 10 ? v.toFixed(3) : fmt(v, 'exp', 3);
  }

  // "α_N = 0.076 [0.071, 0.082]" (no interval for a point estimate).
  function est(name, e) {
    if (!e) return null;
    const ci = e.lo != null && e.hi != null && Number.isFinite(e.lo) && Number.isFinite(e.hi) && e.lo !== e.hi;
    return h('div', { class: 'param' }, h('span', { class: 'pname' }, `${name} = `), num(e.value),
      ci ? h('span', { class: 'ci' }, ` [${num(e.lo)}, ${num(e.hi)}]`) : null);
  }

  const POWER = {
    'L(N)': ['N', 'L = (N_c / N)^α_N'],
    'L(D)': ['D', 'L = (D_c / D)^α_D'],
    'L(C)': ['C', 'L = (C_c / C)^α_C'],
    'L(C_min)': ['Cmin', 'L = (C_c / C_min)^α_Cmin'],
  };
  const range = (r) => (r ? `${fmt(r.lo)} – ${fmt(r.hi)}` : '–');
  // The fitted point a law misses most: predicted / measured − 1.
  const worst = (w, v, v2) => (w
    ? `${w.error >= 0 ? '+' : ''}${(100 * w.error).toFixed(2)}% at ${v} ${fmt(w.x)}${w.x2 != null ? `, ${v2} ${fmt(w.x2)}` : ''}`
    : '–');

  function powerRow(p) {
    const [v, formula] = POWER[p.law] || ['x', 'L = (x_c / x)^α'];
    const f = p.e ? formula.replace('L = ', 'L = E + ') : formula;
    return [p.law, f, [est(`α_${v}`, p.alpha), est(`${v === 'Cmin' ? 'C' : v}_c`, p.x_c), est('E', p.e)], p.r2, p.points, range(p.x_range),
      worst(p.worst, v === 'Cmin' ? 'C_min' : v)];
  }

  function twoVarRow(t) {
    const v = t.law === 'L(N,S)' ? 'S' : 'D';
    const kaplan = v === 'D' ? 'L = ((N_c/N)^(α_N/α_D) + D_c/D)^α_D' : 'L = (N_c/N)^α_N + (S_c/S)^α_S';
    const formula = t.e ? kaplan.replace('L = ', 'L = E + ') : kaplan;
    return [t.law, formula, [est('α_N', t.alpha_n), est(`α_${v}`, t.alpha_2), est('N_c', t.n_c), est(`${v}_c`, t.c_2), est('E', t.e)],
      t.r2, t.points, `N ${range(t.n_range)}; ${v} ${range(t.x2_range)}`, worst(t.worst, 'N', v)];
  }

  function lawRows(r) {
    const rows = [];
    for (const k of ['l_n', 'l_d', 'l_c']) if (r[k]) rows.push(powerRow(r[k]));
    for (const k of ['l_nd', 'l_ns']) if (r[k]) rows.push(twoVarRow(r[k]));
    if (r.chinchilla) {
      const c = r.chinchilla, [e, a, b, al, be] = c.intervals;
      rows.push(['Chinchilla', 'L = E + A/N^α + B/D^β', [est('E', e), est('A', a), est('B', b), est('α', al), est('β', be)],
        c.fit.r2, c.fit.runs, `N ${range(c.fit.n_range)}; D ${range(c.fit.d_range)}`, worst(c.fit.worst, 'N', 'D')]);
    }
    if (r.frontier) {
      const f = r.frontier;
      const row = powerRow(f.l_cmin);
      row[2].push(est('N_opt ∝ C^a, a', f.n_opt_exponent));
      rows.push(row);
    }
    if (r.bcrit_law) {
      const b = r.bcrit_law;
      rows.push(['B_crit(L)', 'B_crit = B* / L^(1/α_B)', [est('B*', b.b_star), est('α_B', b.alpha_b)], b.r2, b.points, `L ${range(b.loss_range)}`, '–']);
    }
    return rows;
  }

  function table(head, rows, cls) {
    return h('table', { class: `grid ${cls || ''}` },
      h('thead', {}, h('tr', {}, head.map((c) => h('th', {}, c)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))));
  }

  function section(title, ...kids) {
    return h('section', { class: 'sub-panel' }, h('h3', {}, title), ...kids);
  }

  let charts = []; // the plots of the last render, destroyed by the next

  // x values spread evenly in log between lo and hi.
  const logspace = (lo, hi, n = 64) => Array.from({ length: n }, (_, i) => lo * (hi / lo) ** (i / (n - 1)));
  const power = (p) => (x) => (p.e ? p.e.value : 0) + (p.x_c.value / x) ** p.alpha.value;

  // Points and the fitted line of a one-variable law.
  function lawPlot(parent, title, law, pts, xLabel, xStyle) {
    const c = L.charts.chart(parent, { title, legend: true, height: 240, x: { label: xLabel, style: xStyle }, y: { label: 'loss', style: 'plain' } });
    const xs = pts.map((p) => p[0]).concat(law ? [law.x_range.lo, law.x_range.hi] : []);
    const lo = Math.min(...xs) / 1.25, hi = Math.max(...xs) * 1.25;
    const series = [{ key: 'pts', label: 'runs', colour: '#1f2937', xs: pts.map((p) => p[0]), ys: pts.map((p) => p[1]), dots: true, line: false }];
    if (law) {
      const lx = logspace(lo, hi);
      series.push({ key: 'law', label: `${law.law} fit`, colour: '#dc2626', width: 2, xs: lx, ys: lx.map(power(law)) });
    }
    c.update(series);
    charts.push(c);
  }

  function frontierPlot(parent, f, axis) {
    const c = L.charts.chart(parent, { title: `Frontier: L(C_min) (${axis})`, legend: true, height: 240, x: { label: 'compute', style: 'exp' }, y: { label: 'loss', style: 'plain' } });
    const env = f.envelope || [];
    const xs = env.map((p) => p.compute);
    const lx = logspace(Math.min(...xs) / 1.25, Math.max(...xs) * 1.25);
    c.update([
      { key: 'env', label: 'envelope', colour: '#1f2937', xs, ys: env.map((p) => p.loss), dots: true, dotSize: 4, line: false },
      { key: 'law', label: 'L(C_min) fit', colour: '#dc2626', width: 2, xs: lx, ys: lx.map(power(f.l_cmin)) },
    ]);
    charts.push(c);
  }

  // Renders the /fits object ({report, computed_ms, points, error}) into `el`.
  function render(el, fits) {
    charts.forEach((c) => c.destroy());
    charts = [];
    el.textContent = '';
    const r = fits && fits.report;
    const meta = [];
    if (fits && fits.error) meta.push(h('div', { class: 'fail' }, `Fit failed: ${fits.error}`));
    if (!r) {
      meta.push(h('p', { class: 'muted' }, fits && fits.error ? '' : 'No laws fitted yet: the fit runs as runs finish.'));
      el.append(...meta);
      return;
    }
    meta.push(h('p', { class: 'muted' }, `${r.runs} runs, ${fits.points ?? '?'} points, fitted at ${clock(fits.computed_ms)} in ${fits.took_ms ?? '?'} ms. `,
      'Intervals: 95% bootstrap.', r.base_batch ? ` Base batch ${fmt(r.base_batch)} tokens.` : ''));
    el.append(...meta);

    const rows = lawRows(r);
    if (rows.length) {
      el.appendChild(table(['Law', 'Form', 'Constants (95% interval)', 'R²', 'Points', 'Fitted on', 'Worst fitted point'],
        rows.map(([law, form, params, r2, n, on, w]) => [h('strong', {}, law), h('code', {}, form), params.filter(Boolean),
          r2 == null ? '–' : r2.toFixed(3), n, on, w]), 'laws'));
    }
    if (r.skipped && r.skipped.length) {
      el.appendChild(section('Not fitted', h('ul', { class: 'skipped' },
        r.skipped.map((s) => h('li', {}, h('strong', {}, s.law), ': ', s.reason)))));
    }

    const plots = h('div', { class: 'chart-grid small' });
    el.appendChild(plots);
    if (r.l_n || (r.l_n_points || []).length) lawPlot(plots, 'L(N): loss vs non-embedding parameters', r.l_n, r.l_n_points || [], 'N', 'si');
    if (r.l_d) lawPlot(plots, 'L(D): loss vs dataset tokens', r.l_d, r.l_d_points || [], 'D', 'si');
    if (r.frontier && (r.frontier.envelope || []).length) frontierPlot(plots, r.frontier, r.frontier_compute || 'FLOPs');
    if (!plots.children.length) plots.remove();

    if (r.holdout && r.holdout.length) {
      el.appendChild(section('Hold-out (largest sizes left out, then predicted)', table(['Law', 'At', 'Actual', 'Predicted', 'Rel. error [band]'],
        r.holdout.map((o) => [o.label, fmt(o.x), o.actual.toFixed(4), o.predicted.toFixed(4),
          `${(o.error.value * 100).toFixed(1)}% [${(o.error.lo * 100).toFixed(1)}%, ${(o.error.hi * 100).toFixed(1)}%]`]))));
    }
    if (r.bcrit_at && r.bcrit_at.length) {
      el.appendChild(section('Critical batch size by batch sweep', table(['Target loss', 'B_crit (tokens)', 'S_min', 'E_min', 'Points'],
        r.bcrit_at.map((b) => [b.target_loss.toFixed(3), est('B_crit', b.b_crit), est('S_min', b.s_min), est('E_min', b.e_min), b.points]))));
    }
    if (r.cbs && r.cbs.length) {
      el.appendChild(section('Critical batch size by branching', table(['Trunk', 'N', 'Tokens', 'Loss', 'CBS (tokens)', 'B_simple', 'CBS / B_simple'],
        r.cbs.map((c) => [h('a', { href: `/jobs/${c.job}` }, `#${c.job}`), fmt(c.n), fmt(c.tokens), c.loss.toFixed(3), fmt(c.cbs),
          c.b_simple == null ? '–' : fmt(c.b_simple), c.ratio == null ? '–' : c.ratio.toFixed(2)]))));
    }
    if (r.contradiction) {
      const c = r.contradiction;
      el.appendChild(section('Where L(C_min) meets L(D)', h('p', {}, `C* = ${fmt(c.compute, 'exp')}, N* = ${fmt(c.n)}, D* = ${fmt(c.d)}, L* = ${c.loss.toFixed(3)}`)));
    }
    if (r.excluded && r.excluded.length) {
      el.appendChild(section('Runs left out', h('ul', { class: 'skipped' },
        r.excluded.map((x) => h('li', {}, h('a', { href: `/jobs/${x.job}` }, `#${x.job}`), `: ${x.reason}`)))));
    }
  }

  L.fits = { render, num, est };
})(globalThis.Ladder = globalThis.Ladder || {});
