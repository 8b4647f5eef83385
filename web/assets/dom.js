// ladder web: small DOM and formatting helpers shared by the pages.
(function (L) {
  'use strict';

  // h('td', {class: 'num', dataset: {x: 1}}, 'text', child, …): an element.
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'style') el.style.cssText = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid == null || kid === false) continue;
      el.append(kid instanceof Node ? kid : String(kid));
    }
    return el;
  }

  // Replaces the children of `el` only when the text changed (keeps selection and layout).
  function setText(el, text) {
    text = String(text);
    if (el.textContent !== text) el.textContent = text;
  }

  // 75 → "1m 15s", 7300 → "2h 02m".
  function duration(s) {
    if (s == null || !Number.isFinite(s) || s < 0) return '–';
    s = Math.round(s);
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
    if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
    return `${Math.floor(s / 86400)}d ${Math.floor(s / 3600) % 24}h`;
  }

  // Unix ms → "2024-05-01 14:03" (local time).
  function dateTime(ms) {
    if (!ms) return '–';
    const d = new Date(ms), p = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  }

  // Unix ms → "14:03:07".
  function clock(ms) {
    const d = new Date(ms), p = (n) => String(n).padStart(2, '0');
    return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }

  const loss = (v) => (v == null || !Number.isFinite(v) ? '–' : v.toFixed(4));
  const badge = (state) => h('span', { class: `badge s-${state}` }, state);

  L.dom = { h, setText, duration, dateTime, clock, loss, badge };
})(globalThis.Ladder = globalThis.Ladder || {});
