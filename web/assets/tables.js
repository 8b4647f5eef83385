// ladder web: the sweeps table and a sweep's jobs table (rows keyed by job id, updated in place;
// each row carries data-job-id, data-state and data-points for the browser test).
(function (L) {
  'use strict';
  const { h, setText, duration, dateTime, loss, badge } = L.dom;
  const { fmt } = L.ticks;

  // "3 running · 12/20 succeeded · 1 failed".
  function counts(s) {
    const parts = [];
    if (s.jobs_running) parts.push(`${s.jobs_running} running`);
    if (s.jobs_queued) parts.push(`${s.jobs_queued} queued`);
    if (s.jobs_pending) parts.push(`${s.jobs_pending} waiting for a parent`);
    parts.push(`${s.jobs_succeeded}/${s.jobs_total} succeeded`);
    if (s.jobs_failed) parts.push(`${s.jobs_failed} failed`);
    if (s.jobs_cancelled) parts.push(`${s.jobs_cancelled} cancelled`);
    return parts.join(' · ');
  }

  function sweepsTable(sweeps) {
    if (!sweeps.length) return h('p', { class: 'muted' }, 'No sweeps yet. Submit one with `ladder submit SPEC`.');
    const rows = sweeps
      .slice()
      .sort((a, b) => b.created_ms - a.created_ms)
      .map((s) => h('tr', { dataset: { sweep: s.name } },
        h('td', {}, h('a', { href: `/sweeps/${encodeURIComponent(s.name)}` }, s.name)),
        h('td', {}, badge(s.state)),
        h('td', {}, counts(s)),
        h('td', {}, s.dataset),
        h('td', { class: 'num' }, dateTime(s.created_ms))));
    return h('table', { class: 'grid' },
      h('thead', {}, h('tr', {}, ['Sweep', 'State', 'Jobs', 'Dataset'].map((c) => h('th', {}, c)), h('th', { class: 'num' }, 'Created'))),
      h('tbody', {}, rows));
  }

  const COLS = [
    ['Job', ''], ['N', 'num'], ['Shape', ''], ['D', 'num'], ['B', 'num'], ['Seed', 'num'], ['State', ''],
    ['Att.', 'num'], ['Step', 'prog'], ['Train', 'num'], ['Val', 'num'], ['Tok/s', 'num'], ['ETA', 'num'], ['Worker', ''],
  ];

  function branchNote(b) {
    if (!b) return null;
    const what = b.kind === 'batch' ? `batch ×${b.k ?? '?'}` : b.kind;
    return h('div', { class: 'sub' }, '↳ ', what, ' of ', h('a', { href: `/jobs/${b.parent}` }, `#${b.parent}`), ` @ ${fmt(b.step)}`);
  }

  // The cells' contents of one job.
  function cells(j, colour) {
    const total = j.total_steps || 0, frac = total ? Math.min(1, (j.step || 0) / total) : 0;
    const state = [badge(j.state)];
    if (j.waiting) state.push(h('div', { class: 'sub warn' }, j.waiting));
    return [
      [h('span', { class: 'swatch', style: `background:${colour}` }), h('a', { href: `/jobs/${j.id}` }, `#${j.id}`), branchNote(j.branch)],
      fmt(j.n),
      `${j.n_layer}×${j.d_model}`,
      j.dataset_tokens == null ? 'all' : fmt(j.dataset_tokens),
      j.batch_tokens < 1e5 ? String(j.batch_tokens) : fmt(j.batch_tokens),
      j.seed,
      state,
      j.restarts ? `${j.attempt} (${j.restarts}↻)` : j.attempt,
      [h('div', { class: 'bar' }, h('div', { style: `width:${(frac * 100).toFixed(1)}%` })), h('span', {}, `${fmt(j.step || 0)}/${fmt(total)}`)],
      loss(j.train_loss),
      loss(j.val_loss),
      j.state === 'running' && j.tokens_per_s > 0 ? fmt(j.tokens_per_s) : '–',
      j.state === 'running' ? duration(j.eta_s) : '–',
      j.worker || '',
    ];
  }

  // The failure of a failed job: kind, message and the last lines of its log.
  function detail(j) {
    if (j.state !== 'failed' && !(j.failure_message && j.state === 'queued')) return null;
    const tail = (j.log_tail || []).join('\n');
    return h('tr', { class: 'detail', dataset: { detailOf: j.id } },
      h('td', { colspan: COLS.length },
        h('div', { class: 'fail' }, h('strong', {}, j.failure || 'failed'), ': ', j.failure_message || ''),
        tail ? h('pre', { class: 'log-tail' }, tail) : null));
  }

  // The jobs table in `parent`; .upsert(job, colour) and .points(id, count) keep it current.
  function jobsTable(parent) {
    const body = h('tbody');
    const table = h('table', { class: 'grid jobs' },
      h('thead', {}, h('tr', {}, COLS.map(([c, cls]) => h('th', { class: cls }, c)))), body);
    parent.appendChild(h('div', { class: 'scroll' }, table));
    const rows = new Map();

    function upsert(j, colour) {
      let r = rows.get(j.id);
      if (!r) {
        r = { tr: h('tr', { class: 'job', dataset: { jobId: j.id, points: 0 } }), key: '', detail: null, index: j.index ?? j.id };
        rows.set(j.id, r);
        let after = null;
        for (const o of rows.values()) if (o !== r && o.index <= r.index && (!after || o.index >= after.index)) after = o;
        const next = after ? (after.detail || after.tr).nextSibling : body.firstChild;
        body.insertBefore(r.tr, next);
      }
      r.tr.dataset.state = j.state;
      const key = JSON.stringify([j, colour]);
      if (key === r.key) return;
      r.key = key;
      const content = cells(j, colour);
      if (r.tr.children.length !== content.length) {
        r.tr.textContent = '';
        COLS.forEach(([, cls]) => r.tr.appendChild(h('td', { class: cls })));
      }
      content.forEach((c, i) => {
        const td = r.tr.children[i];
        if (typeof c === 'string' || typeof c === 'number') setText(td, c);
        else td.replaceChildren(...[].concat(c).filter((x) => x != null));
      });
      const d = detail(j);
      if (r.detail) r.detail.remove();
      r.detail = d;
      if (d) r.tr.after(d);
    }

    function points(id, n) {
      const r = rows.get(id);
      if (r && r.tr.dataset.points !== String(n)) r.tr.dataset.points = String(n);
    }

    return { upsert, points, el: table };
  }

  L.tables = { sweepsTable, jobsTable, counts };
})(globalThis.Ladder = globalThis.Ladder || {});
