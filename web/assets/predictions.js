// ladder web: a sweep's sealed targets: each law's locked prediction with its 95% prediction
// interval beside the naive baselines, and once a target has succeeded its measured loss, each
// prediction's error, whether its interval covered it, and its error against persistence's.
(function (L) {
  'use strict';
  const { h, dateTime, badge } = L.dom;
  const { fmt } = L.ticks;
  const pct = (e) => (e == null ? '–' : `${e >= 0 ? '+' : ''}${(e * 100).toFixed(2)}%`);
  const f4 = (v) => (v == null ? '–' : v.toFixed(4));
  const LAWS = { n: 'L(N)', d: 'L(D)', nd: 'L(N,D)', ns: 'L(N,S)', cmin: 'L(C_min)', chinchilla: 'Chinchilla' };
  const CAUSES = { fits_ended: 'every job the fits use had ended', asked: '`ladder predict --lock`' };

  function lockLine(p) {
    const l = p.lock;
    if (!l) {
      return h('p', { class: 'lock open' }, 'Not locked yet: the predictions lock by themselves once every job the fits use has ended ',
        `(or with ladder predict ${p.sweep} --lock). Until then no target's loss is shown.`);
    }
    const sha = (s) => h('code', { title: s }, `${s.slice(0, 12)}…`);
    return h('p', { class: 'lock' }, `Locked ${dateTime(l.locked_ms)} (${CAUSES[l.cause] || l.cause}), fitted on ${l.fitted_runs} runs · options `,
      sha(l.options_sha256), ' · points ', sha(l.points_sha256), ' · ',
      p.revealed_ms ? `final: a target was read ${dateTime(p.revealed_ms)}` : 'no target read yet');
  }

  // What the backtest of the fitted runs said of each law at the lock: from 0.5 decades of N
  // where its predictions reached that far, else at every distance. Intervals the server judged
  // too narrow (too_narrow) are red; the rest are uncoloured (held, or too few to judge).
  function backtest(l) {
    const all = (l && l.backtest) || [];
    const rows = all.filter((b) => b.from === 0).map((a) => all.find((b) => b.law === a.law && b.from > 0) || a);
    if (!rows.length) return [];
    const held = (b) => (b.coverage == null ? '–' : h('span', { class: b.too_narrow ? 'fail' : '' },
      `${(100 * b.coverage).toFixed(0)}%`));
    const cells = rows.map((b) => [h('strong', {}, LAWS[b.law] || b.law), b.from > 0 ? `≥ ${b.from}` : 'all',
      String(b.rows), held(b), `${b.high} / ${b.low}`, pct(b.mean_error)]);
    const head = ['Law', 'Decades of N', 'Predictions', '95% intervals held', 'Above / below', 'Mean error'];
    return [h('section', { class: 'sub-panel backtest' }, h('h3', {}, 'Backtest at the lock: refits on the smallest sizes, predicting each larger one'),
      h('table', { class: 'grid predictions' }, h('thead', {}, h('tr', {}, head.map((c) => h('th', {}, c)))),
        h('tbody', {}, cells.map((r) => h('tr', {}, r.map((c) => h('td', {}, c)))))))];
  }

  // The test of Chinchilla's additivity on the fitted runs at the lock (the sentence the live
  // fits show too).
  function additivity(l) {
    const a = l && l.additivity;
    const p = a && L.fits.additivity(a, null);
    return p ? [h('p', { class: 'additivity' }, 'Chinchilla\'s additivity at the lock ', ...p)] : [];
  }

  function targetRows(t) {
    const rows = t.laws.map((l) => [h('strong', {}, LAWS[l.law] || l.law), f4(l.predicted.value),
      l.predicted.lo == null ? '–' : `[${f4(l.predicted.lo)}, ${f4(l.predicted.hi)}]`, pct(l.error),
      l.covered == null ? '–' : h('span', { class: l.covered ? 'ok' : 'fail' }, l.covered ? 'yes' : 'no'),
      l.vs_persistence == null ? '–' : l.vs_persistence.toFixed(2)]);
    const b = t.baselines || {};
    if (b.persistence != null) rows.push(['persistence', f4(b.persistence), '–', pct(t.persistence_error), '–', '–']);
    if (b.two_point != null) rows.push(['two-point line', f4(b.two_point), '–', pct(t.two_point_error), '–', '–']);
    return rows;
  }

  function target(t) {
    const g = t.target;
    const head = h('h3', {}, h('a', { href: `/jobs/${g.job}` }, `#${g.job}`), ` ${g.label} · N ${fmt(g.n)} · D ${fmt(g.d)} · C ${fmt(g.c, 'exp')} · `,
      t.measured == null ? badge(t.state) : `measured ${t.measured.toFixed(4)}`);
    if (!t.laws.length) return h('section', { class: 'sub-panel target', dataset: { job: g.job } }, head);
    const head2 = ['Law', 'Predicted', '95% prediction interval', 'Error', 'Covered', '|error| / persistence\'s'];
    return h('section', { class: 'sub-panel target', dataset: { job: g.job } }, head,
      h('table', { class: 'grid predictions' }, h('thead', {}, h('tr', {}, head2.map((c) => h('th', {}, c)))),
        h('tbody', {}, targetRows(t).map((r) => h('tr', {}, r.map((c) => h('td', {}, c)))))));
  }

  // Draws `p` (the sweep's predictions) into `el`.
  function render(el, p) {
    if (!p) return;
    el.replaceChildren(lockLine(p), ...backtest(p.lock), ...additivity(p.lock), ...p.targets.map(target));
  }

  L.predictions = { render };
})(globalThis.Ladder = globalThis.Ladder || {});
