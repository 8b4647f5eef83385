// ladder web: the sweeps table and a sweep's jobs table (rows keyed by job id, updated in place;
// each row carries data-job-id, data-state and data-points for the browser test). A branch's row
// sits under its trunk, folded until the trunk is opened; a state filter shows every job in it.
(function (L) {
  'use strict';
  const { h, setText, duration, dateTime, loss, badge } = L.dom;
  const { fmt } = L.ticks;
  const G = L.groups;
  const STATES = ['running', 'queued', 'pending', 'succeeded', 'failed', 'cancelled'];

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
      G.dataTokens(j) == null ? 'all' : fmt(G.dataTokens(j)),
      j.batch_tokens < 1e5 ? String(j.batch_tokens) : fmt(j.batch_tokens),
      j.seed,
      state,
      j.restarts ? `${j.attempt} (${j.restarts}↻)` : j.attempt,
      [h('div', { class: 'bar' }, h('div', { style: `width:${(frac * 100).toFixed(1)}%` })), h('span', {}, `${fmt(j.step || 0)}/${fmt(total)}`)],
      j.sealed ? h('span', { class: 'muted', title: 'a sealed target: its losses show once the predictions are locked' }, 'sealed') : loss(j.train_loss),
      j.sealed ? h('span', { class: 'muted' }, 'sealed') : loss(j.val_loss),
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
    const rows = new Map(), parentOf = new Map(), branches = new Map(), open = new Set();
    let filter = '';
    const pick = h('select', { name: 'state', onchange: () => { filter = pick.value; rows.forEach(place); } },
      h('option', { value: '' }, 'all'), STATES.map((s) => h('option', { value: s }, s)));
    const folded = h('span', { class: 'sub' });
    parent.appendChild(h('div', { class: 'table-bar' }, h('label', { class: 'pick' }, 'State: ', pick), folded));
    parent.appendChild(h('div', { class: 'scroll' }, table));

    function place(r) {
      const hide = !G.shown(r, filter, open);
      if (r.tr.hidden !== hide) r.tr.hidden = hide;
      if (r.detail) r.detail.hidden = hide;
    }

    // The trunk's toggle: "▸ 8 branches", or "▾" when open.
    function toggle(id) {
      const n = branches.get(id) || 0;
      if (!n) return null;
      return h('button', { class: 'fold', type: 'button', dataset: { trunk: id }, onclick: () => {
        if (open.has(id)) open.delete(id); else open.add(id);
        rows.forEach((o) => { if (o.trunk === id) place(o); });
        const r = rows.get(id);
        if (r) r.tr.querySelector('button.fold')?.replaceWith(toggle(id));
        foldedText();
      } }, `${open.has(id) ? '▾' : '▸'} ${n} branch${n === 1 ? '' : 'es'}`);
    }

    function foldedText() {
      let n = 0;
      branches.forEach((k, id) => { if (!open.has(id)) n += k; });
      setText(folded, n ? `${n} branch runs folded under their trunks` : '');
    }

    function upsert(j, colour) {
      let r = rows.get(j.id);
      if (!r) {
        r = { tr: h('tr', { class: 'job', dataset: { jobId: j.id, points: 0 } }), key: '', detail: null, index: j.index ?? j.id, trunk: null, state: j.state };
        rows.set(j.id, r);
        if (j.branch) {
          parentOf.set(j.id, j.branch.parent);
          r.trunk = G.trunkOf(j.id, parentOf);
        }
        // Rows in the order (trunk's index, trunk before its branches, index).
        const order = (o) => [o.trunk == null ? o.index : (rows.get(o.trunk)?.index ?? o.index), o.trunk == null ? 0 : 1, o.index];
        const before = (a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
        const mine = order(r);
        let after = null, at = null;
        for (const o of rows.values()) {
          if (o === r) continue;
          const k = order(o);
          if (before(k, mine) <= 0 && (!at || before(k, at) >= 0)) [after, at] = [o, k];
        }
        const next = after ? (after.detail || after.tr).nextSibling : body.firstChild;
        body.insertBefore(r.tr, next);
        if (j.branch) {
          r.tr.classList.add('branch');
          r.tr.dataset.trunk = r.trunk;
          branches.set(r.trunk, (branches.get(r.trunk) || 0) + 1);
          const t = rows.get(r.trunk);
          if (t && t.tr.firstChild) {
            t.tr.querySelector('button.fold')?.remove();
            t.tr.firstChild.appendChild(toggle(r.trunk));
          }
          foldedText();
        }
      }
      r.tr.dataset.state = r.state = j.state;
      const key = JSON.stringify([j, colour]);
      if (key !== r.key) {
        r.key = key;
        const content = cells(j, colour);
        content[0].push(r.trunk == null ? toggle(j.id) : null);
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
      place(r);
    }

    function points(id, n) {
      const r = rows.get(id);
      if (r && r.tr.dataset.points !== String(n)) r.tr.dataset.points = String(n);
    }

    return { upsert, points, el: table };
  }

  L.tables = { sweepsTable, jobsTable, counts };
})(globalThis.Ladder = globalThis.Ladder || {});
