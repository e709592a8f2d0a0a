"""The stylesheet and script, held as text in the package: they ship in every wheel with no package-data
setting, and the server sends them from memory (the Content-Security-Policy allows only these two)."""

from __future__ import annotations

from tracewire.ui.markup import INDENT_STEPS

CSS = """
:root { --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --bg: #fff; --soft: #f6f7f9; --err: #c0262d;
  --ok: #157f3d; --accent: #2556c4; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg); font-size: 14px; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
header.top { display: flex; gap: 16px; align-items: baseline; padding: 10px 20px; border-bottom: 1px solid var(--line); }
header.top .brand { font-weight: 700; color: var(--fg); }
header.top .where { color: var(--muted); font-size: 12px; }
main { padding: 12px 20px 40px; }
h1 { font-size: 20px; margin: 8px 0 10px; }
h2 { font-size: 16px; margin: 0 0 8px; }
h3 { font-size: 13px; margin: 14px 0 6px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
code, pre, .id { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12px; }
.id { color: var(--muted); }
form.filters { display: flex; flex-wrap: wrap; gap: 10px; align-items: end; margin-bottom: 12px; }
form.filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); gap: 2px; }
form.filters input, form.filters select { font: inherit; padding: 4px 6px; border: 1px solid var(--line); border-radius: 4px; }
button { font: inherit; padding: 4px 10px; border: 1px solid var(--line); border-radius: 4px; background: var(--soft); cursor: pointer; }
table.traces { border-collapse: collapse; width: 100%; }
table.traces th, table.traces td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
table.traces th { font-size: 12px; color: var(--muted); font-weight: 600; }
td.num { text-align: right; white-space: nowrap; }
.status.error, .failed .status { color: var(--err); font-weight: 600; }
.status.ok { color: var(--ok); }
.status.open { color: #b54708; }
.pager { margin-top: 12px; display: flex; gap: 14px; }
.empty { color: var(--muted); }
.trace-id { display: flex; gap: 8px; align-items: center; color: var(--muted); }
.facts-line { display: flex; flex-wrap: wrap; gap: 6px 16px; margin: 8px 0; }
.facts-line .k { color: var(--muted); font-size: 12px; }
.toolbar { display: flex; gap: 6px; margin: 8px 0; }
.split { display: grid; grid-template-columns: minmax(360px, 1fr) minmax(360px, 1fr); gap: 16px; align-items: start; }
.tree-box { border: 1px solid var(--line); border-radius: 6px; padding: 6px; overflow: auto; max-height: 80vh; }
[hidden] { display: none !important; }
ul.tree { list-style: none; margin: 0; padding: 0; }
/* rows off screen are not laid out until scrolled to: thousands of rows open quickly */
ul.tree li.node { display: flex; align-items: center; content-visibility: auto; contain-intrinsic-size: auto 24px; }
.twisty, .spacer { display: inline-block; width: 16px; flex: none; color: var(--muted); }
.twisty { cursor: pointer; }
.twisty::before { content: "\\25B8"; }
.open > .twisty::before, .open > .tl-label > .twisty::before { content: "\\25BE"; }
li.error-path > .twisty { color: var(--err); }
.deep { font-size: 10px; color: var(--muted); margin-right: 4px; }
#tree-search { margin-left: auto; min-width: 260px; font: inherit; padding: 4px 6px; border: 1px solid var(--line); border-radius: 4px; }
#search-count { color: var(--muted); font-size: 12px; align-self: center; min-width: 70px; }
li.match > a.row, a.tl-row.match { background: #fff4c2; }
li.match.current > a.row, a.tl-row.match.current { outline: 2px solid #e6a23c; }
a.row.slow .dur, a.row.slow .status { color: #b54708; font-weight: 600; }
a.row.unfinished .name { font-style: italic; }
a.row.unfinished .status { color: #b54708; border: 1px dashed #b54708; border-radius: 3px; padding: 0 4px; }
a.row.point .name { font-weight: 400; }
.failed-at { flex-basis: 100%; color: var(--err); font-size: 13px; }
.failed-at .k { color: var(--err); font-weight: 600; }
.failed-at a.step { color: var(--err); }
.points-line { flex-basis: 100%; display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 13px; }
.points-line .v { color: var(--muted); font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
a.row { display: flex; gap: 8px; align-items: baseline; padding: 2px 4px; border-radius: 4px; color: var(--fg); flex: 1; min-width: 0; }
a.row:hover { background: var(--soft); text-decoration: none; }
a.row.chosen { background: #e8effc; }
a.row.failed .name { color: var(--err); }
a.row .name { font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
a.row .dur, a.row .model, a.row .tok, a.row .cost { color: var(--muted); font-size: 12px; white-space: nowrap; }
.kind { font-size: 11px; padding: 0 5px; border-radius: 3px; background: var(--soft); border: 1px solid var(--line); color: var(--muted); }
.kind-llm { background: #eef4ff; color: #2556c4; }
.kind-tool { background: #fff6e5; color: #93500b; }
.kind-retriever { background: #ecfdf3; color: #157f3d; }
.kind-agent { background: #f4f0ff; color: #5b3cc4; }
.pane { border: 1px solid var(--line); border-radius: 6px; padding: 12px; overflow: auto; max-height: 80vh; }
.pane:focus, .pane:focus-visible { outline: none; }
.idents { display: flex; flex-wrap: wrap; gap: 10px; margin-bottom: 8px; font-size: 12px; color: var(--muted); }
.copy { font-size: 11px; padding: 0 6px; margin-left: 4px; }
table.facts { border-collapse: collapse; font-size: 13px; }
table.facts th { text-align: left; color: var(--muted); font-weight: 500; padding: 2px 12px 2px 0; }
pre { white-space: pre-wrap; word-break: break-word; margin: 4px 0; background: var(--soft); padding: 6px 8px; border-radius: 4px; }
.conversation { display: flex; flex-direction: column; gap: 8px; }
.msg { border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px; }
.msg .role { font-weight: 700; font-size: 12px; }
.msg .role .id, .msg .role .who { font-weight: 400; }
.role-system { background: #f9fafb; }
.role-user { background: #f5f8ff; }
.role-assistant { background: #f6fef9; }
.role-tool { background: #fffaeb; }
.tool-call { margin-top: 4px; }
.tool-call .label { color: var(--muted); font-size: 12px; }
.error h3 { color: var(--err); }
.error-type { color: var(--err); }
pre.stack { font-size: 11px; }
.doc { border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px; margin-bottom: 6px; }
.doc-head .score { color: var(--ok); font-size: 12px; }
.main-nav { display: flex; gap: 12px; }
.tiles { display: flex; flex-wrap: wrap; gap: 10px; margin: 10px 0; }
.tile { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; min-width: 120px; }
.tile .k { color: var(--muted); font-size: 12px; }
.tile .v { font-size: 18px; font-weight: 700; }
.range { color: var(--muted); font-size: 12px; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 14px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
svg.chart { width: 100%; height: auto; display: block; }
svg.chart .bar { fill: #8aa8e6; }
svg.chart.llm .bar { fill: #5b3cc4; }
svg.chart .axis { stroke: var(--line); }
svg.chart .tick { fill: var(--muted); font-size: 11px; }
.empty.error { color: var(--err); }
.session-turns { display: flex; flex-direction: column; gap: 14px; max-width: 900px; }
.turn { display: flex; flex-direction: column; gap: 6px; border-left: 3px solid var(--line); padding-left: 10px; }
.did-line { display: flex; flex-wrap: wrap; gap: 4px 12px; align-items: baseline; font-size: 12px; color: var(--muted); }
.did-line .trace-link { font-weight: 600; }
.did.failed { color: var(--err); font-weight: 600; }
.point { font-size: 12px; }
.totals .v { font-weight: 600; }
.views { display: flex; gap: 0; margin-right: 10px; }
.view-tab { padding: 4px 10px; border: 1px solid var(--line); background: var(--bg); color: var(--fg); }
.view-tab:first-child { border-radius: 4px 0 0 4px; }
.view-tab:last-child { border-radius: 0 4px 4px 0; border-left: none; }
.view-tab.chosen { background: #e8effc; font-weight: 600; }
.timeline { display: flex; flex-direction: column; min-width: 520px; }
.tl-scale { display: flex; justify-content: space-between; color: var(--muted); font-size: 11px;
  margin-left: 40%; padding-right: 70px; border-bottom: 1px solid var(--line); }
a.tl-row { content-visibility: auto; contain-intrinsic-size: auto 18px; display: grid; grid-template-columns: 40% 1fr 70px; align-items: center; gap: 6px; padding: 1px 4px;
  border-radius: 4px; color: var(--fg); }
a.tl-row:hover { background: var(--soft); text-decoration: none; }
a.tl-row.chosen { background: #e8effc; }
.tl-label { display: flex; gap: 6px; align-items: baseline; min-width: 0; overflow: hidden; white-space: nowrap; }
.tl-label .name { overflow: hidden; text-overflow: ellipsis; }
.tl-track { width: 100%; height: 14px; display: block; }
.tl-bar { fill: #8aa8e6; }
.tl-row.slow .tl-bar { fill: #e6a23c; }
.tl-row.slow .name { font-weight: 700; }
.tl-row.tl-error .tl-bar { fill: var(--err); }
.tl-row.tl-error .name { color: var(--err); }
.tl-row.tl-open .tl-bar { fill: #fff; stroke: #b54708; stroke-width: 1.5; stroke-dasharray: 4 3; }
.tl-row.tl-open .dur { color: #b54708; }
.tl-point { fill: #5b3cc4; }
a.tl-row .dur { color: var(--muted); font-size: 12px; white-space: nowrap; text-align: right; }
""" + "".join(f".ind-{d} {{ padding-left: {d * 12}px; }}\n" for d in range(1, INDENT_STEPS + 1))  # by class: no inline styles

# -- scores: the trace's and session's header line, badges on tree rows, the span pane's list -----------
CSS += """
.scores-line { flex-basis: 100%; display: flex; flex-wrap: wrap; gap: 4px 10px; align-items: baseline; font-size: 13px; }
.scores-line .k { color: var(--muted); font-size: 12px; }
.score { display: inline-flex; gap: 5px; align-items: baseline; padding: 0 6px; border: 1px solid var(--line);
  border-radius: 10px; background: var(--soft); white-space: nowrap; }
.score[title] { cursor: help; }
.score-name { font-weight: 600; }
.score-v { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
.score-label { color: #5b3cc4; }
.score-src { color: var(--muted); font-size: 11px; }
.score-at { color: var(--muted); font-size: 12px; }
a.score-at:hover { text-decoration: none; }
.score-badges { display: inline-flex; gap: 4px; font-size: 11px; }
.score-badges .score { padding: 0 5px; }
.score-badges .score-src { display: none; }
.score-badges .more { color: var(--muted); }
ul.score-list { list-style: none; margin: 0; padding: 0; }
ul.score-list li { margin: 0 0 6px; }
pre.score-comment { margin: 3px 0 0 8px; white-space: pre-wrap; font-family: inherit; font-size: 13px; }
"""
# -- end of scores --------------------------------------------------------------------------------------

JS = """
(function () {
  'use strict';
  // The tree and the timeline are flat rows in display order, each with its depth (data-depth): a row
  // is hidden when a node above it is closed, so one pass over the rows lays out any change, at any depth.
  var KEY = 'tracewire.tree';  // "Expand all" / "Collapse all", remembered for every trace opened next
  var box = document.getElementById('flat-rows');
  var rows = box ? box.querySelectorAll('[data-depth]') : [];
  var n = rows.length, depths = new Int32Array(n), kids = new Uint8Array(n), texts = null;
  var query = '', matches = [], current = -1;
  for (var i = 0; i < n; i++) {
    depths[i] = +rows[i].getAttribute('data-depth');
    kids[i] = rows[i].getAttribute('data-kids') !== '0' ? 1 : 0;
    rows[i].twIndex = i;
  }
  function show(r, on) { if (r.hidden === on) r.hidden = !on; }
  function mark(r, cls, on) { if (r.classList.contains(cls) !== on) r.classList.toggle(cls, on); }
  function layout() {
    if (query) { searchLayout(); return; }
    var closedAt = -1;  // depth of the closed node whose subtree is being passed, -1 when none
    for (var i = 0; i < n; i++) {
      if (closedAt >= 0 && depths[i] <= closedAt) closedAt = -1;
      show(rows[i], closedAt < 0);
      if (closedAt < 0 && kids[i] && !rows[i].classList.contains('open')) closedAt = depths[i];
    }
  }
  function ancestors(i, into) {
    for (var want = depths[i], j = i - 1; j >= 0 && want > 0; j--) {
      if (depths[j] < want) { into[j] = 1; want = depths[j]; }
    }
  }
  function all(open) {
    // collapsing keeps the way to the chosen span and to failed ones open: what the page is about stays in view
    var keep = new Uint8Array(n);
    box.querySelectorAll('.chosen, .failed, .tl-error').forEach(function (el) {
      var r = el.closest('[data-depth]');
      if (r) ancestors(r.twIndex, keep);
    });
    for (var i = 0; i < n; i++) if (kids[i]) mark(rows[i], 'open', open || keep[i] === 1);
    layout();
  }
  function remember(open) {
    try { localStorage.setItem(KEY, open ? 'expanded' : 'collapsed'); } catch (e) { /* storage off */ }
    all(open);
  }
  var search = document.getElementById('tree-search');
  var count = document.getElementById('search-count');
  function searchLayout() {
    // a match shows with the nodes above it; everything else waits until the search is cleared
    if (!texts) { texts = []; for (var k = 0; k < n; k++) texts.push(rows[k].getAttribute('data-q') || ''); }
    var keep = new Uint8Array(n), stack = [];
    matches = [];
    for (var i = 0; i < n; i++) {
      while (stack.length && depths[stack[stack.length - 1]] >= depths[i]) stack.pop();
      var hit = texts[i].indexOf(query) >= 0;
      mark(rows[i], 'match', hit);
      if (hit) {
        matches.push(i);
        keep[i] = 1;
        for (var s = stack.length - 1; s >= 0 && !keep[stack[s]]; s--) keep[stack[s]] = 1;
      }
      stack.push(i);
    }
    for (var j = 0; j < n; j++) show(rows[j], keep[j] === 1);
    count.textContent = matches.length + (matches.length === 1 ? ' match' : ' matches');
  }
  function runSearch() {
    query = search.value.trim().toLowerCase();
    if (current >= 0 && rows[current]) rows[current].classList.remove('current');
    current = -1;
    if (!query) {
      for (var i = 0; i < n; i++) mark(rows[i], 'match', false);
      count.textContent = '';
      matches = [];
    }
    layout();
  }
  function link(r) { return r.tagName === 'A' ? r : r.querySelector('a.row'); }
  function focusRow(i) {
    var a = link(rows[i]);
    a.focus();
    if (a.scrollIntoView) a.scrollIntoView({block: 'nearest'});
  }
  function step(by) {
    // Enter walks the matches with the focus kept in the box; the arrow down key moves it to the match
    if (!matches.length) return;
    var at = matches.indexOf(current);
    if (current >= 0) rows[current].classList.remove('current');
    current = matches[at < 0 && by < 0 ? matches.length - 1 : (at + by + matches.length) % matches.length];
    rows[current].classList.add('current');
    count.textContent = (matches.indexOf(current) + 1) + ' of ' + matches.length;
    var a = link(rows[current]);
    if (a.scrollIntoView) a.scrollIntoView({block: 'nearest'});
  }
  function firstShown() {
    for (var i = 0; i < n; i++) if (!rows[i].hidden) return i;
    return -1;
  }
  if (search) {
    var timer = 0;
    var settle = function () { clearTimeout(timer); if (search.value.trim().toLowerCase() !== query) runSearch(); };
    search.addEventListener('input', function () { clearTimeout(timer); timer = setTimeout(runSearch, 120); });
    search.addEventListener('keydown', function (ev) {
      if (ev.key === 'Enter') { ev.preventDefault(); settle(); step(ev.shiftKey ? -1 : 1); }
      if (ev.key === 'ArrowDown') {
        ev.preventDefault();
        settle();
        var i = current >= 0 ? current : (matches.length ? matches[0] : firstShown());
        if (i >= 0) focusRow(i);
      }
      if (ev.key === 'Escape') { search.value = ''; runSearch(); search.blur(); }
    });
  }
  document.addEventListener('keydown', function (ev) {
    var t = ev.target;
    if (ev.key !== '/' || !search || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable)) return;
    ev.preventDefault();
    search.focus();
  });
  if (box) {
    box.addEventListener('click', function (ev) {
      var tw = ev.target.closest && ev.target.closest('.twisty');
      if (!tw) return;
      ev.preventDefault();  // in the timeline the arrow sits inside the row's link: it toggles, it does not open
      var r = tw.closest('[data-depth]');
      r.classList.toggle('open');
      layout();
    });
    // on a row: right and left open and close its subtree, up and down move between the rows shown
    box.addEventListener('keydown', function (ev) {
      var r = ev.target.closest && ev.target.closest('[data-depth]');
      if (!r) return;
      var i = r.twIndex, j;
      if (ev.key === 'ArrowRight' || ev.key === 'ArrowLeft') {
        if (!kids[i]) return;
        ev.preventDefault();
        mark(r, 'open', ev.key === 'ArrowRight');
        layout();
      } else if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
        ev.preventDefault();
        var by = ev.key === 'ArrowDown' ? 1 : -1;
        for (j = i + by; j >= 0 && j < n && rows[j].hidden; j += by) { /* skip hidden rows */ }
        if (j >= 0 && j < n) focusRow(j);
      }
    });
  }
  document.querySelectorAll('button[data-all]').forEach(function (b) {
    b.addEventListener('click', function () { remember(b.getAttribute('data-all') === 'open'); });
  });
  var saved = null;
  try { saved = localStorage.getItem(KEY); } catch (e) { /* storage off */ }
  if (box && saved === 'expanded') all(true);
  if (box && saved === 'collapsed') all(false);
  if (search && search.value) runSearch();  // a value the browser kept on going back
  document.addEventListener('click', function (ev) {
    var b = ev.target.closest && ev.target.closest('button.copy');
    if (!b || !navigator.clipboard) return;
    navigator.clipboard.writeText(b.getAttribute('data-copy') || '').then(function () {
      b.textContent = 'copied';
      setTimeout(function () { b.textContent = 'copy'; }, 1200);
    });
  });
  var chosen = document.querySelector('a.row.chosen, a.tl-row.chosen');
  if (chosen && chosen.scrollIntoView) chosen.scrollIntoView({block: 'nearest'});
  // the time-to-interactive marker: set once everything above is wired and the first frame is laid out
  requestAnimationFrame(function () {
    setTimeout(function () {
      document.documentElement.setAttribute('data-ready', String(Math.round(performance.now())));
    }, 0);
  });
})();
"""

# ---- trace list: search, sort links, notes, live rows ---------------------------------------------------
# The first page of the list (newest first, table[data-live]) asks every few seconds for the traces that
# started after its top row and puts them on top: no reload, no socket, nothing inline for the CSP.
CSS += """
form.filters label.search input { width: 22em; }
table.traces th a.sort { color: inherit; }
table.traces th a.sort.chosen { color: var(--fg); }
p.note { color: var(--muted); font-size: 13px; margin: 4px 0 8px; }
"""
JS += """
(function () {
  'use strict';
  var table = document.querySelector('table.traces[data-live]');
  if (!table || !window.fetch) return;
  var body = table.tBodies[0];
  var base = table.getAttribute('data-live');
  var after = table.getAttribute('data-after') || '';
  var EVERY_MS = 2000;
  function poll() {
    var url = base + (base.indexOf('?') < 0 ? '?' : '&') + 'after=' + encodeURIComponent(after);
    fetch(url, {credentials: 'same-origin', cache: 'no-store'})
      .then(function (r) { return r.ok ? r.text() : ''; })
      .then(function (html) {
        if (!html) return;
        body.insertAdjacentHTML('afterbegin', html);
        var top = body.rows[0];
        after = (top.getAttribute('data-start') || '') + ':' + (top.getAttribute('data-trace') || '');
        var empty = document.querySelector('p.empty');
        if (empty) empty.parentNode.removeChild(empty);
      })
      .catch(function () { /* the viewer stopped: try again later */ })
      .then(function () { setTimeout(poll, EVERY_MS); });
  }
  setTimeout(poll, EVERY_MS);
})();
"""

# ---- experiments: the runs, one run, two compared -------------------------------------------------------
CSS += """
table.experiments, table.experiment-items, table.experiment-compare { border-collapse: collapse; width: 100%; }
table.experiments th, table.experiments td, table.experiment-items th, table.experiment-items td,
table.experiment-compare th, table.experiment-compare td {
  text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
table.experiments th, table.experiment-items th, table.experiment-compare th { font-size: 12px; color: var(--muted); font-weight: 600; }
td.exp-score, td.exp-change { white-space: nowrap; }
td.pick { text-align: center; }
tr.change.regression td.exp-change, .exp-count.regression, .exp-delta.down { color: var(--err); font-weight: 600; }
tr.change.improvement td.exp-change, .exp-delta.up { color: var(--ok); font-weight: 600; }
p.exp-head { margin: 4px 0; }
dl.exp-summary { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 10px 0 16px; }
dl.exp-summary dt { color: var(--muted); }
dl.exp-summary dd { margin: 0; }
table.exp-aggregates th { text-align: left; padding-right: 12px; }
table.exp-aggregates td { padding-right: 18px; white-space: nowrap; }
form.compare-form button { margin-top: 10px; }
"""
