// ladder web: one sweep's page: header, live curves (loss vs tokens and vs FLOPs, B_simple, CBS),
// the fitted laws and the jobs table, kept current from the sweep's SSE stream.
(function (L) {
  'use strict';
  const { h, setText, badge, dateTime } = L.dom;
  const { fmt } = L.ticks;
  const FLUSH_MS = 60; // points arriving within this are drawn together (longer if drawing is slow)
  const KEEP = 2000; // points a curve holds here; past them its older half thins by two

  // Keeps a curve within KEEP points: every other point of its older half goes (evaluations
  // stay), so a page left open on a long run holds a bounded curve, densest where it is newest.
  function thin(curve) {
    if (curve.length <= KEEP) return;
    const half = curve.length >> 1, kept = [];
    for (let i = 0; i < half; i++) if (i % 2 === 0 || curve[i].val_loss != null) kept.push(curve[i]);
    curve.splice(0, half, ...kept);
  }

  // Appends `pts` to `curve` in step order; a point at or before the last step (a retry resumed
  // from an older checkpoint) first drops the points it replaces.
  function append(curve, pts) {
    for (const p of pts) {
      while (curve.length && curve[curve.length - 1].step >= p.step) curve.pop();
      curve.push(p);
    }
    thin(curve);
  }

  // Replaces a curve by a fetched one, keeping streamed points newer than what it holds.
  function mergeInto(curves, id, fetched) {
    const had = curves.get(id) || [], curve = [];
    append(curve, fetched);
    const last = curve.length ? curve[curve.length - 1].step : -1;
    append(curve, had.filter((p) => p.step > last));
    curves.set(id, curve);
  }

  // The page's panels: its header, the curves (a loss picker and the colour bar of N), the fitted
  // laws and the jobs.
  function layout(root, name, onPick) {
    const el = {
      title: h('h1', {}, name), state: h('span'), live: h('span', { class: 'live off' }, 'connecting'),
      summary: h('div', { class: 'summary' }), cbar: h('div', { class: 'cbar' }), grid: h('div', { class: 'chart-grid' }),
      fits: h('div', { id: 'fits' }), table: h('div'), targets: h('div', { id: 'targets' }),
    };
    el.pick = h('select', { onchange: () => onPick(el.pick.value) },
      h('option', { value: 'train_loss' }, 'train loss'), h('option', { value: 'val_loss' }, 'validation loss'));
    const panel = (title, ...kids) => h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', {}, title), ...kids.slice(0, -1)), kids[kids.length - 1]);
    root.append(
      h('header', { class: 'page-head' }, h('div', {}, el.title, el.state), el.live),
      el.summary,
      panel('Curves', h('label', { class: 'pick' }, 'Loss: ', el.pick), el.cbar, el.grid),
      panel('Fitted laws', el.fits),
      el.targetsPanel = panel('Sealed targets', el.targets),
      panel('Jobs', el.table));
    el.targetsPanel.hidden = true;
    return el;
  }

  // Each job's colour: its N on a log scale over the sweep's.
  function colourOf(jobs) {
    const ns = [...jobs.values()].map((j) => j.n).filter((n) => n > 0);
    const lo = Math.min(...ns), hi = Math.max(...ns);
    const t = L.colours.logScale(lo, hi);
    return { of: (n) => L.colours.css(t(n)), lo, hi };
  }

  function label(j) {
    return `#${j.id} · N ${fmt(j.n)} · ${j.n_layer}×${j.d_model} · B ${fmt(j.batch_tokens)}`;
  }

  // One line per job of `yKey` against `xKey`, smallest N first.
  function series(jobs, curves, xKey, yKey, col) {
    const out = [];
    for (const j of [...jobs.values()].sort((a, b) => a.n - b.n || a.id - b.id)) {
      const c = curves.get(j.id) || [];
      out.push({ key: j.id, label: label(j), colour: col.of(j.n), width: 1.5, dash: j.state === 'failed' ? [4, 3] : undefined,
        xs: c.map((p) => p[xKey]), ys: c.map((p) => p[yKey]) });
    }
    return out;
  }

  // The CBS by branching against tokens: one line of dots per trunk.
  function cbsSeries(jobs, cbs, col) {
    const by = new Map();
    for (const c of cbs) {
      if (!by.has(c.trunk)) by.set(c.trunk, []);
      by.get(c.trunk).push(c);
    }
    return [...by.entries()].map(([id, list]) => {
      list.sort((a, b) => a.tokens - b.tokens);
      const j = jobs.get(id);
      return { key: id, label: j ? label(j) : `#${id}`, colour: col.of(list[0].n), dots: true, width: 1.5,
        xs: list.map((c) => c.tokens), ys: list.map((c) => c.cbs) };
    });
  }

  function page(root, name) {
    const jobs = new Map(), curves = new Map();
    let fits = null, metric = 'train_loss', pending = null, waiting = [], cost = 0;
    window.__ladderLatencies = window.__ladderLatencies || [];
    const el = layout(root, name, (m) => { metric = m; draw(); });
    const { state, live, summary, cbar, grid } = el, fitsEl = el.fits;

    const tok = { label: 'tokens', style: 'si', unit: 'tokens' };
    const lossY = { label: 'loss', style: 'plain' };
    const cLoss = L.charts.chart(grid, { title: 'Loss vs tokens', x: tok, y: lossY });
    const cFlops = L.charts.chart(grid, { title: 'Loss vs compute', x: { label: 'FLOPs', style: 'exp', unit: 'FLOPs' }, y: lossY });
    const cBs = L.charts.chart(grid, { title: 'B_simple (gradient noise scale) vs tokens', x: tok, y: { label: 'B_simple', style: 'si' }, empty: 'No B_simple measured yet' });
    let cCbs = null;
    const table = L.tables.jobsTable(el.table);
    // The sealed targets' predictions, read again as jobs end (a sweep without targets has none).
    async function loadTargets() {
      if (![...jobs.values()].some((j) => j.sealed)) return;
      el.targetsPanel.hidden = false;
      L.predictions.render(el.targets, await L.api.predictions(name));
    }
    const targetsSoon = () => loadTargets().catch((e) => console.warn('ladder: predictions', e));
    const merge = (id, pts) => mergeInto(curves, id, pts);

    function drawCbs(col) {
      const cbs = fits && fits.report && fits.report.cbs;
      if (!cbs || !cbs.length) return;
      if (!cCbs) cCbs = L.charts.chart(grid, { title: 'Critical batch size (branching) vs tokens', x: tok, y: { label: 'CBS (tokens)', style: 'si' } });
      cCbs.update(cbsSeries(jobs, cbs, col));
    }

    // Redraws every chart from the curves, then records the latency of the points it shows.
    function draw() {
      pending = null;
      const began = performance.now();
      const col = colourOf(jobs);
      L.colours.colourBar(cbar, col.lo, col.hi, 'N');
      cLoss.update(series(jobs, curves, 'tokens', metric, col));
      cFlops.update(series(jobs, curves, 'flops', metric, col));
      cBs.update(series(jobs, curves, 'tokens', 'b_simple', col));
      drawCbs(col);
      for (const [id, c] of curves) table.points(id, c.length);
      cost = performance.now() - began;
      const stored = waiting;
      waiting = [];
      // After uPlot's own microtask has drawn.
      queueMicrotask(() => {
        const now = Date.now();
        for (const ms of stored) window.__ladderLatencies.push(now - ms);
      });
    }
    const soon = () => { if (!pending) pending = setTimeout(draw, Math.max(FLUSH_MS, Math.min(1000, 3 * cost))); };

    let sweepInfo = null;
    function header(s) {
      sweepInfo = s;
      state.replaceChildren(badge(s.state));
      summary.replaceChildren(
        h('span', {}, L.tables.counts(s)),
        h('span', { class: 'muted' }, `dataset ${s.dataset} · created ${dateTime(s.created_ms)}`));
      document.title = `${s.name} · ladder`;
    }

    function upsertJob(j) {
      const merged = Object.assign(jobs.get(j.id) || {}, j);
      const isNew = !jobs.has(j.id);
      jobs.set(j.id, merged);
      const col = colourOf(jobs);
      if (isNew) for (const o of jobs.values()) table.upsert(o, col.of(o.n));
      else table.upsert(merged, col.of(merged.n));
      table.points(j.id, (curves.get(j.id) || []).length);
      if (sweepInfo) header(recount(sweepInfo));
      if (isNew) soon();
      if (['succeeded', 'failed', 'cancelled'].includes(j.state)) targetsSoon();
    }

    // The sweep's counts and state from the jobs as this page last heard of them.
    function recount(s) {
      const n = { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0, pending: 0 };
      for (const j of jobs.values()) if (j.state in n) n[j.state] += 1;
      const done = n.queued + n.running + n.pending === 0;
      const state = s.state === 'running' && done ? (n.cancelled ? 'cancelled' : 'done') : s.state;
      return Object.assign({}, s, { state, jobs_total: jobs.size, jobs_queued: n.queued, jobs_running: n.running,
        jobs_succeeded: n.succeeded, jobs_failed: n.failed, jobs_cancelled: n.cancelled, jobs_pending: n.pending });
    }

    async function load() {
      const [s, c, f] = await Promise.all([L.api.sweep(name), L.api.curves(name), L.api.fits(name).catch(() => null)]);
      header(s.sweep);
      for (const j of s.jobs) jobs.set(j.id, Object.assign(jobs.get(j.id) || {}, j));
      const col = colourOf(jobs);
      for (const j of jobs.values()) table.upsert(j, col.of(j.n));
      for (const [key, pts] of Object.entries(c.curves || {})) merge(Number(key), pts);
      fits = f;
      L.fits.render(fitsEl, fits);
      draw();
      targetsSoon();
    }

    L.api.stream(L.api.sweepEvents(name), {
      sweep: header,
      // The page fell behind the coordinator: what it missed is reloaded.
      resync: () => load().catch((e) => console.warn('ladder: reload failed', e)),
      job: upsertJob,
      points: (e) => {
        if (!curves.has(e.job_id)) curves.set(e.job_id, []);
        append(curves.get(e.job_id), e.points || []);
        if (e.stored_ms) waiting.push(e.stored_ms);
        soon();
      },
      fits: (f) => {
        fits = f;
        L.fits.render(fitsEl, fits);
        soon();
      },
    }, {
      onState: (on) => { live.className = on ? 'live on' : 'live off'; setText(live, on ? 'live' : 'reconnecting'); },
      onReopen: () => load().catch((e) => console.warn('ladder: reload failed', e)),
    });
    return load();
  }

  L.sweep = { page, append, mergeInto, thin, KEEP };
})(globalThis.Ladder = globalThis.Ladder || {});
