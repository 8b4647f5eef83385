// ladder web: the JSON API and its Server-Sent Events streams (same origin; the auth cookie
// travels with both).
(function (L) {
  'use strict';

  class HttpError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function get(path) {
    const r = await fetch(path, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (!r.ok) {
      let msg = `${r.status} ${r.statusText}`;
      try {
        const body = await r.json();
        if (body && body.error) msg = body.error;
      } catch (_) { /* not JSON */ }
      throw new HttpError(r.status, msg);
    }
    return r.json();
  }

  const enc = encodeURIComponent;
  const api = {
    sweeps: (before) => get(before ? `/api/sweeps?before=${before}` : '/api/sweeps'),
    sweep: (name) => get(`/api/sweeps/${enc(name)}`),
    curves: (name) => get(`/api/sweeps/${enc(name)}/curves`),
    fits: (name) => get(`/api/sweeps/${enc(name)}/fits`),
    predictions: (name) => get(`/api/sweeps/${enc(name)}/predictions`),
    job: (id) => get(`/api/jobs/${enc(id)}`),
    log: (id) => get(`/api/jobs/${enc(id)}/log`),
  };

  // Subscribes to an SSE stream: `handlers` maps event names to functions of the parsed data.
  // `onState(live)` reports the connection; `onReopen()` runs after a reconnect, to refetch
  // what was missed while it was down. Returns a function that closes the stream.
  function stream(path, handlers, { onState, onReopen } = {}) {
    const es = new EventSource(path, { withCredentials: true });
    let opened = false, down = false;
    es.onopen = () => {
      if (opened && down && onReopen) onReopen();
      opened = true;
      down = false;
      if (onState) onState(true);
    };
    es.onerror = () => {
      down = true;
      if (onState) onState(false);
    };
    for (const [name, fn] of Object.entries(handlers)) {
      es.addEventListener(name, (ev) => {
        let data;
        try {
          data = JSON.parse(ev.data);
        } catch (e) {
          console.warn(`ladder: bad ${name} event`, e);
          return;
        }
        // Points arrive in batches: an array runs the handler on each.
        if (Array.isArray(data)) data.forEach(fn);
        else fn(data);
      });
    }
    return () => es.close();
  }

  L.api = Object.assign(api, { get, stream, HttpError, sweepEvents: (n) => `/api/sweeps/${enc(n)}/events`, jobEvents: (id) => `/api/jobs/${enc(id)}/events` });
})(globalThis.Ladder = globalThis.Ladder || {});
