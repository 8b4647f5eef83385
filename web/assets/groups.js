// ladder web: how the tables group what they show: job ids as ranges, runs left out by reason,
// the data D a job trains to (a branch's own), and the trunk a branch hangs under. No DOM;
// web/test/units.mjs checks each.
(function (L) {
  'use strict';

  // [5, 1, 2, 3, 12] → "1-3, 5, 12".
  function idRanges(ids) {
    const s = [...new Set(ids)].sort((a, b) => a - b), parts = [];
    for (let i = 0; i < s.length;) {
      let j = i;
      while (j + 1 < s.length && s[j + 1] === s[j] + 1) j++;
      parts.push(j === i ? String(s[i]) : `${s[i]}-${s[j]}`);
      i = j + 1;
    }
    return parts.join(', ');
  }

  // [{job, reason}] → [{reason, jobs: [ids]}], reasons in the order they first appear.
  function byReason(excluded) {
    const groups = new Map();
    for (const x of excluded || []) {
      if (!groups.has(x.reason)) groups.set(x.reason, []);
      groups.get(x.reason).push(x.job);
    }
    return [...groups].map(([reason, jobs]) => ({ reason, jobs }));
  }

  // The tokens a job trains to: its D, or a cooldown's end, or a batch window's end; null when
  // it trains on all the data for its steps.
  function dataTokens(j) {
    if (j.dataset_tokens != null) return j.dataset_tokens;
    const b = j.branch;
    if (b && b.kind === 'cooldown' && b.to_tokens != null) return b.to_tokens;
    if (b && b.kind === 'batch' && b.window_tokens != null) return b.tokens + b.window_tokens;
    return null;
  }

  // The root of `id`'s branch chain, given each branch's parent (a cycle stops the walk).
  function trunkOf(id, parentOf) {
    const seen = new Set([id]);
    while (parentOf.has(id) && !seen.has(parentOf.get(id))) seen.add((id = parentOf.get(id)));
    return id;
  }

  // Whether a row shows: with a state filter, every job in that state; without, every trunk and
  // the branches of the trunks that are open.
  function shown(row, filter, open) {
    if (filter) return row.state === filter;
    return row.trunk == null || open.has(row.trunk);
  }

  L.groups = { idRanges, byReason, dataTokens, trunkOf, shown };
})(globalThis.Ladder = globalThis.Ladder || {});
