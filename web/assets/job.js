// ladder web: one job's page: its status, its curve (train and validation loss vs tokens) and its
// log, attempts apart, kept current from the job's SSE stream (the log is re-read while it runs).
(function (L) {
  'use strict';
  const { h, setText, badge, duration, loss, clock } = L.dom;
  const { fmt } = L.ticks;
  const LOG_POLL_MS = 3000;

  function facts(j) {
    const rows = [
      ['State', [badge(j.state), j.waiting ? h('span', { class: 'sub warn' }, ` ${j.waiting}`) : null]],
      ['Attempt', `${j.attempt} of at most ${j.max_restarts + 1}${j.restarts ? ` (${j.restarts} restarted)` : ''}`],
      ['Worker', j.worker || '–'],
      ['Shape', `${j.n_layer} layers × d_model ${j.d_model}, ${j.n_heads} heads, d_ff ${j.d_ff}, n_ctx ${j.n_ctx}, vocab ${fmt(j.vocab)}`],
      ['N (non-embedding)', `${fmt(j.n)} (${(j.n || 0).toLocaleString()})`],
      ['Batch B', `${fmt(j.batch_tokens)} tokens`],
      ['Data D', L.groups.dataTokens(j) == null ? 'all' : `${fmt(L.groups.dataTokens(j))} tokens${j.dataset_tokens == null ? ` (the ${j.branch.kind === 'cooldown' ? 'cooldown' : 'batch window'}'s end)` : ''}`],
      ['Seed · peak LR', `${j.seed} · ${j.lr}`],
      ['Step', `${(j.step || 0).toLocaleString()} / ${(j.total_steps || 0).toLocaleString()} (${fmt(j.tokens || 0)} tokens)`],
      ['Loss (train · val)', j.sealed ? 'sealed target: see the sweep\'s predictions' : `${loss(j.train_loss)} · ${loss(j.val_loss)}`],
      ['Speed · ETA', j.state === 'running' ? `${fmt(j.tokens_per_s)} tokens/s · ${duration(j.eta_s)}` : '–'],
      ['Checkpoint', j.checkpoint_step ? `step ${j.checkpoint_step}` : 'none'],
    ];
    if (j.resumed_from_step) rows.push(['Resumed from', `step ${j.resumed_from_step}`]);
    if (j.branch) rows.push(['Branch', [`${j.branch.kind}${j.branch.k != null ? ` ×${j.branch.k}` : ''} of `, h('a', { href: `/jobs/${j.branch.parent}` }, `#${j.branch.parent}`), ` at step ${j.branch.step}`, j.branch.kind === 'cooldown' ? `, to ${fmt(j.branch.to_tokens)} tokens` : '']]);
    if (j.failure_message) rows.push(['Failure', h('span', { class: 'fail' }, `${j.failure}: ${j.failure_message}`)]);
    return h('dl', { class: 'facts' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  }

  // The log, newest line first (how a failed job ended), one block per attempt, the newest
  // attempt on top. `lines` come newest first.
  function logView(lines) {
    if (!lines.length) return [h('p', { class: 'muted' }, 'No log lines yet.')];
    const by = new Map();
    for (const l of lines) {
      if (!by.has(l.attempt)) by.set(l.attempt, []);
      by.get(l.attempt).push(l);
    }
    return [...by.entries()].map(([a, ls]) => h('div', { class: 'attempt' },
      h('div', { class: 'attempt-head' }, `Attempt ${a} · newest first · last at ${clock(ls[0].at_ms)}`),
      h('pre', { class: 'log' }, ls.map((l) => h('span', { class: `src-${l.source}` }, `${clock(l.at_ms)} ${l.source === 'worker' ? '[worker] ' : ''}${l.text}\n`)))));
  }

  function page(root, id) {
    let job = null, points = [], pending = null, waiting = [], lastLog = 0;
    window.__ladderLatencies = window.__ladderLatencies || [];
    const title = h('h1', {}, `Job #${id}`), crumb = h('div', { class: 'crumb' });
    const live = h('span', { class: 'live off' }, 'connecting');
    const factsEl = h('div'), logEl = h('div', { class: 'logbox' });
    const grid = h('div', { class: 'chart-grid' });
    root.append(h('header', { class: 'page-head' }, h('div', {}, crumb, title), live),
      h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', {}, 'Status')), factsEl),
      h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', {}, 'Curve')), grid),
      h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', {}, 'Log')), logEl));
    const tok = { label: 'tokens', style: 'si', unit: 'tokens' };
    const cLoss = L.charts.chart(grid, { title: 'Loss vs tokens', legend: true, x: tok, y: { label: 'loss', style: 'plain' } });
    const cBs = L.charts.chart(grid, { title: 'B_simple vs tokens', x: tok, y: { label: 'B_simple', style: 'si' }, empty: 'No B_simple measured' });

    function draw() {
      pending = null;
      const xs = points.map((p) => p.tokens);
      cLoss.update([
        { key: 'train', label: 'train loss', colour: '#3b82f6', width: 1.25, xs, ys: points.map((p) => p.train_loss) },
        { key: 'val', label: 'validation loss', colour: '#ea580c', width: 2, dots: true, dotSize: 5, xs, ys: points.map((p) => p.val_loss) },
      ]);
      cBs.update([{ key: 'bs', label: 'B_simple', colour: '#059669', xs, ys: points.map((p) => p.b_simple) }]);
      const stored = waiting;
      waiting = [];
      queueMicrotask(() => {
        const now = Date.now();
        for (const ms of stored) window.__ladderLatencies.push(now - ms);
      });
    }
    const soon = () => { if (!pending) pending = setTimeout(draw, 60); };

    function show(j) {
      job = Object.assign(job || {}, j);
      factsEl.replaceChildren(facts(job));
      title.replaceChildren(`Job #${job.id} `, badge(job.state));
      document.title = `job ${job.id} · ladder`;
    }

    async function readLog() {
      lastLog = Date.now();
      const { lines } = await L.api.log(id);
      logEl.replaceChildren(...logView(lines || []));
    }

    async function load() {
      const r = await L.api.job(id);
      show(r.job);
      if (r.withheld && !root.querySelector('.withheld')) title.after(h('p', { class: 'sub warn withheld' }, r.withheld));
      const fetched = [];
      L.sweep.append(fetched, r.points || []);
      const last = fetched.length ? fetched[fetched.length - 1].step : -1;
      L.sweep.append(fetched, points.filter((p) => p.step > last));
      points = fetched;
      draw();
      readLog().catch(() => {});
      if (r.sweep) crumb.replaceChildren(h('a', { href: `/sweeps/${encodeURIComponent(r.sweep)}` }, r.sweep), ' / ');
    }

    setInterval(() => {
      if (job && (job.state === 'running' || job.state === 'queued') && Date.now() - lastLog >= LOG_POLL_MS) readLog().catch(() => {});
    }, 1000);

    L.api.stream(L.api.jobEvents(id), {
      job: (j) => {
        const changed = !job || job.state !== j.state || job.attempt !== j.attempt;
        show(j);
        if (changed) readLog().catch(() => {});
      },
      points: (e) => {
        L.sweep.append(points, e.points || []);
        if (e.stored_ms) waiting.push(e.stored_ms);
        soon();
      },
      resync: () => load().catch(() => {}),
    }, {
      onState: (on) => { live.className = on ? 'live on' : 'live off'; setText(live, on ? 'live' : 'reconnecting'); },
      onReopen: () => load().catch(() => {}),
    });
    return load();
  }

  L.job = { page };
})(globalThis.Ladder = globalThis.Ladder || {});
