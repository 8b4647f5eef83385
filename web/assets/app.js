// ladder web: the router. The server returns the same page for /, /sweeps/{name} and
// /jobs/{id}; this picks the view from location.pathname and reports load errors in place.
(function (L) {
  'use strict';
  const { h } = L.dom;

  // The sweeps, newest first, a page (500) at a time: "Older sweeps" loads the next page.
  async function sweepsPage(root) {
    root.append(h('header', { class: 'page-head' }, h('h1', {}, 'Sweeps')));
    const box = h('section', { class: 'panel' });
    root.appendChild(box);
    let pages = 1;
    const refresh = async () => {
      let all = [], before = 0, next = null;
      for (let i = 0; i < pages; i++) {
        const r = await L.api.sweeps(before);
        all = all.concat(r.sweeps);
        next = r.next_before;
        if (next == null) break;
        before = next;
      }
      const more = next == null ? null
        : h('button', { class: 'more', onclick: () => { pages += 1; refresh().catch(() => {}); } }, 'Older sweeps');
      box.replaceChildren(L.tables.sweepsTable(all), ...(more ? [more] : []));
    };
    await refresh();
    setInterval(() => refresh().catch(() => {}), 5000);
  }

  function failed(root, e) {
    const msg = e && e.status === 401
      ? 'Not authorised: this coordinator needs its token (open the link that `ladder` printed, which sets the cookie).'
      : e && e.status === 404 ? `Not found: ${e.message}` : `Could not load this page: ${e && e.message ? e.message : e}`;
    root.replaceChildren(h('div', { class: 'panel error' }, h('h1', {}, e && e.status ? String(e.status) : 'Error'), h('p', {}, msg)));
  }

  function route() {
    const root = document.getElementById('app');
    const path = location.pathname.replace(/\/+$/, '') || '/';
    let m, run;
    if (path === '/') run = () => sweepsPage(root);
    else if ((m = path.match(/^\/sweeps\/([^/]+)$/))) run = () => L.sweep.page(root, decodeURIComponent(m[1]));
    else if ((m = path.match(/^\/jobs\/(\d+)$/))) run = () => L.job.page(root, Number(m[1]));
    else run = () => Promise.reject(Object.assign(new Error(path), { status: 404 }));
    Promise.resolve().then(run).catch((e) => failed(root, e));
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', route);
  else route();
})(globalThis.Ladder = globalThis.Ladder || {});
