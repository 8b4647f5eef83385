// ladder web: the fitted-laws panel (#fits): each law's constants with their 95% intervals, the
// laws not fitted and why, hold-out errors, B_crit, and plots of loss against N, D and compute.
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

  const range = (r) => (r ? `${fmt(r.lo)} – ${fmt(r.hi)}` : '–');
  // The fitted point a law misses most: predicted / measured − 1.
  const worst = (w, v, v2) => (w
    ? `${w.error >= 0 ? '+' : ''}${(100 * w.error).toFixed(2)}% at ${v} ${fmt(w.x)}${w.x2 != null ? `, ${v2} ${fmt(w.x2)}` : ''}`
    : '–');

  // How the report names and writes the law in its field `field` (the report's legend, which
  // the laws crate writes): {law, quantity, formula, formula_with_e, x, x2}.
  const legend = (r, field) => (r.laws || {})[field] || { law: field, quantity: 'L', formula: '', formula_with_e: '', x: 'x', x2: 'y' };
  // The legend entry of a law named in the JSON (a hold-out row, a skipped law).
  const byLaw = (r, law) => Object.values(r.laws || {}).find((i) => i.law === law) || { law, x: 'x', x2: null };
  const equation = (i, withE) => `${i.quantity} = ${withE ? i.formula_with_e : i.formula}`;

  function powerRow(r, field, p) {
    const i = legend(r, field);
    return [i.law, equation(i, !!p.e), [est(`α_${i.x}`, p.alpha), est(`${i.x}_c`, p.x_c), est('E', p.e)], p.r2, p.points, range(p.x_range),
      worst(p.worst, i.x)];
  }

  function twoVarRow(r, field, t) {
    const i = legend(r, field);
    return [i.law, equation(i, !!t.e), [est(`α_${i.x}`, t.alpha_n), est(`α_${i.x2}`, t.alpha_2), est(`${i.x}_c`, t.n_c), est(`${i.x2}_c`, t.c_2), est('E', t.e)],
      t.r2, t.points, `${i.x} ${range(t.n_range)}; ${i.x2} ${range(t.x2_range)}`, worst(t.worst, i.x, i.x2)];
  }

  function lawRows(r) {
    const rows = [];
    for (const k of ['l_n', 'l_d', 'l_c']) if (r[k]) rows.push(powerRow(r, k, r[k]));
    for (const k of ['l_nd', 'l_ns']) if (r[k]) rows.push(twoVarRow(r, k, r[k]));
    if (r.chinchilla) {
      const c = r.chinchilla, [e, a, b, al, be] = c.intervals, i = legend(r, 'chinchilla');
      rows.push([i.law, equation(i, true), [est('E', e), est('A', a), est('B', b), est('α', al), est('β', be)],
        c.fit.r2, c.fit.runs, `${i.x} ${range(c.fit.n_range)}; ${i.x2} ${range(c.fit.d_range)}`, worst(c.fit.worst, i.x, i.x2)]);
    }
    if (r.frontier) {
      const f = r.frontier;
      const row = powerRow(r, 'l_cmin', f.l_cmin);
      const n = legend(r, 'frontier');
      row[2].push(est(`${n.quantity} = ${n.formula}, a`, f.n_opt_exponent));
      rows.push(row);
    }
    if (r.bcrit_law) {
      const b = r.bcrit_law, i = legend(r, 'bcrit_law');
      rows.push([i.law, equation(i, false), [est('B*', b.b_star), est('α_B', b.alpha_b)], b.r2, b.points, `${i.x} ${range(b.loss_range)}`, '–']);
    }
    return rows;
  }

  // Chinchilla's additivity test (`report.additivity`, as a lock keeps it) as the children of a
  // sentence that starts after "… additivity": its verdict, each end's gain from D_lo to D_hi,
  // the slope on log N, and when rejected which way Chinchilla will err. `fall`: the fit's own
  // gain over the same D, where there is a fit. Null when there is nothing to say.
  function additivity(a, fall) {
    if (!a || !a.sizes || a.sizes.length < 2 || !a.slope) return null;
    const [first, last] = [a.sizes[0], a.sizes[a.sizes.length - 1]];
    const s = a.slope;
    const sign = (v) => `${v >= 0 ? '+' : ''}${v.toFixed(3)}`;
    const verdict = h('span', { class: a.rejected ? 'fail' : 'ok' }, a.rejected ? 'rejected' : 'holds');
    const fit = fall == null ? '' : `; the fit's fall is ${fall.toFixed(3)} at every N`;
    const who = s.value > 0 ? ['Larger', 'over'] : ['Smaller', 'under'];
    // Kaplan's coupled L(N,D) lets larger sizes gain more, never less.
    const coupled = s.value > 0 ? ' (L(N,D) couples N and D)' : '';
    const way = a.rejected ? ` ${who[0]} sizes gain more from data than an additive form allows: expect Chinchilla to ${who[1]}-predict sizes beyond the fitted ones at large D${coupled}.` : '';
    return [verdict, `: from D ${fmt(a.d_lo)} to ${fmt(a.d_hi)} the loss falls ${first.gain.toFixed(3)} at N ${fmt(first.n)} and ${last.gain.toFixed(3)} at N ${fmt(last.n)} `
      + `(${a.sizes.length} sizes): ${sign(s.value)} [${sign(s.lo)}, ${sign(s.hi)}] nats per decade of N${fit}.${way}`];
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

  // The frontier's compute axis, as the report's `frontier_compute` names it.
  const COMPUTE = { c: 'C = 6·N·tokens, as trained', c_min: 'C_min, batch-adjusted' };
  // Where a hold-out row was evaluated: N = …, and D = … for a two-variable law.
  function holdoutAt(r, o) {
    const i = byLaw(r, o.law);
    return o.x2 != null && i.x2 ? `${i.x} ${fmt(o.x)}, ${i.x2} ${fmt(o.x2)}` : `${i.x} ${fmt(o.x)}`;
  }

  // x values spread evenly in log between lo and hi.
  const logspace = (lo, hi, n = 64) => Array.from({ length: n }, (_, i) => lo * (hi / lo) ** (i / (n - 1)));
  const power = (p) => (x) => (p.e ? p.e.value : 0) + (p.x_c.value / x) ** p.alpha.value;

  // Points and the fitted line of a one-variable law.
  function lawPlot(parent, title, law, name, pts, xLabel, xStyle) {
    const c = L.charts.chart(parent, { title, legend: true, height: 240, x: { label: xLabel, style: xStyle }, y: { label: 'loss', style: 'plain' } });
    const xs = pts.map((p) => p[0]).concat(law ? [law.x_range.lo, law.x_range.hi] : []);
    const lo = Math.min(...xs) / 1.25, hi = Math.max(...xs) * 1.25;
    const series = [{ key: 'pts', label: 'runs', colour: '#1f2937', xs: pts.map((p) => p[0]), ys: pts.map((p) => p[1]), dots: true, line: false }];
    if (law) {
      const lx = logspace(lo, hi);
      series.push({ key: 'law', label: `${name} fit`, colour: '#dc2626', width: 2, xs: lx, ys: lx.map(power(law)) });
    }
    c.update(series);
    charts.push(c);
  }

  function frontierPlot(parent, f, axis, name) {
    const c = L.charts.chart(parent, { title: `Frontier: ${name} (${axis})`, legend: true, height: 240, x: { label: 'compute', style: 'exp' }, y: { label: 'loss', style: 'plain' } });
    const env = f.envelope || [];
    const xs = env.map((p) => p.compute);
    const lx = logspace(Math.min(...xs) / 1.25, Math.max(...xs) * 1.25);
    c.update([
      { key: 'env', label: 'envelope', colour: '#1f2937', xs, ys: env.map((p) => p.loss), dots: true, dotSize: 4, line: false },
      { key: 'law', label: `${name} fit`, colour: '#dc2626', width: 2, xs: lx, ys: lx.map(power(f.l_cmin)) },
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
    const a = r.additivity;
    const said = r.chinchilla && additivity(a, a ? a.fit_gain : null);
    if (said) el.appendChild(h('p', { class: 'additivity' }, 'Chinchilla\'s additivity ', ...said));
    if (r.skipped && r.skipped.length) {
      el.appendChild(section('Not fitted', h('ul', { class: 'skipped' },
        r.skipped.map((s) => h('li', {}, h('strong', {}, s.law), ': ', s.reason)))));
    }

    const plots = h('div', { class: 'chart-grid small' });
    el.appendChild(plots);
    const ln = legend(r, 'l_n').law, ld = legend(r, 'l_d').law;
    if (r.l_n || (r.l_n_points || []).length) lawPlot(plots, `${ln}: loss vs non-embedding parameters`, r.l_n, ln, r.l_n_points || [], 'N', 'si');
    if (r.l_d) lawPlot(plots, `${ld}: loss vs dataset tokens`, r.l_d, ld, r.l_d_points || [], 'D', 'si');
    if (r.frontier && (r.frontier.envelope || []).length) frontierPlot(plots, r.frontier, COMPUTE[r.frontier_compute] || 'FLOPs', legend(r, 'l_cmin').law);
    if (!plots.children.length) plots.remove();

    if (r.holdout && r.holdout.length) {
      // Beside each prediction, persistence's: the largest fitted size's loss at the same D.
      const naive = (o, p) => (p == null ? '–' : `${(((p - o.actual) / o.actual) * 100).toFixed(1)}%`);
      el.appendChild(section('Hold-out (largest sizes left out, then predicted)', table(['Law', 'At', 'Actual', 'Predicted', 'Rel. error [95% prediction interval]', 'Persistence', 'Two-point line'],
        r.holdout.map((o) => [o.law, holdoutAt(r, o), o.actual.toFixed(4), o.predicted.toFixed(4),
          `${(o.error.value * 100).toFixed(1)}% [${(o.error.lo * 100).toFixed(1)}%, ${(o.error.hi * 100).toFixed(1)}%]`,
          naive(o, (o.baselines || {}).persistence), naive(o, (o.baselines || {}).two_point)]))));
    }
    if (r.bcrit_at && r.bcrit_at.length) {
      el.appendChild(section('Critical batch size by batch sweep', table(['Target loss', 'B_crit (tokens)', 'S_min', 'E_min', 'Points'],
        r.bcrit_at.map((b) => [b.target_loss.toFixed(3), est('B_crit', b.b_crit), est('S_min', b.s_min), est('E_min', b.e_min), b.points]))));
    }
    if (r.cbs && r.cbs.length) {
      el.appendChild(section('Critical batch size by branching', table(['Trunk', 'N', 'Step', 'Tokens', 'Loss', 'CBS (tokens)', 'B_simple', 'CBS / B_simple'],
        r.cbs.map((c) => [h('a', { href: `/jobs/${c.trunk}` }, `#${c.trunk}`), fmt(c.n), fmt(c.step), fmt(c.tokens), c.loss.toFixed(3), `${c.lower_bound ? '≥ ' : ''}${fmt(c.cbs)}${c.hi != null ? ` (${fmt(c.lo)}–${fmt(c.hi)})` : ''}`,
          c.b_simple == null ? '–' : fmt(c.b_simple), c.ratio == null ? '–' : c.ratio.toFixed(2)]))));
    }
    if (r.contradiction) {
      const c = r.contradiction;
      el.appendChild(section(`Where ${legend(r, 'l_cmin').law} meets ${legend(r, 'l_d').law}`, h('p', {}, `C* = ${fmt(c.compute, 'exp')}, N* = ${fmt(c.n)}, D* = ${fmt(c.d)}, L* = ${c.loss.toFixed(3)}`)));
    }
    if (r.excluded && r.excluded.length) {
      el.appendChild(section(`Runs left out (${r.excluded.length})`, h('ul', { class: 'skipped' },
        L.groups.byReason(r.excluded).map((g) => h('li', { dataset: { reason: g.reason } }, `${g.reason}: `,
          g.jobs.length === 1 ? h('a', { href: `/jobs/${g.jobs[0]}` }, `job #${g.jobs[0]}`)
            : h('span', { class: 'ids' }, `${g.jobs.length} jobs: ${L.groups.idRanges(g.jobs)}`))))));
    }
  }

  L.fits = { render, num, est, additivity };
})(globalThis.Ladder = globalThis.Ladder || {});
