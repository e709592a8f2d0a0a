"""The stylesheet and script, held as text in the package: they ship in every wheel with no package-data
setting, and the server sends them from memory (the Content-Security-Policy allows only these two)."""

from __future__ import annotations

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
ul.tree, ul.tree ul { list-style: none; margin: 0; padding-left: 16px; }
ul.tree { padding-left: 0; }
ul.tree summary { list-style: none; display: flex; align-items: center; cursor: pointer; }
ul.tree summary::-webkit-details-marker { display: none; }
.twisty { display: inline-block; width: 16px; flex: none; color: var(--muted); }
.twisty::before { content: "\\25B8"; }
details[open] > summary .twisty::before { content: "\\25BE"; }
li.leaf { padding-left: 16px; }
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
a.tl-row { display: grid; grid-template-columns: 40% 1fr 70px; align-items: center; gap: 6px; padding: 1px 4px;
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
""" + "".join(f".tl-depth-{d} {{ padding-left: {d * 12}px; }}\n" for d in range(1, 13))  # nesting, by class: no inline styles

JS = """
(function () {
  'use strict';
  // "Expand all" / "Collapse all" is remembered for the next trace opened; collapsing keeps the way
  // to the chosen and the failed span open (class "path"), so what the page is about stays in view.
  var KEY = 'tracewire.tree';
  function all(open) {
    document.querySelectorAll('ul.tree details').forEach(function (d) {
      d.open = open || d.classList.contains('path');
    });
  }
  function remember(open) {
    try { localStorage.setItem(KEY, open ? 'expanded' : 'collapsed'); } catch (e) { /* storage off */ }
    all(open);
  }
  var expand = document.getElementById('expand-all');
  var collapse = document.getElementById('collapse-all');
  if (expand) expand.addEventListener('click', function () { remember(true); });
  if (collapse) collapse.addEventListener('click', function () { remember(false); });
  var saved = null;
  try { saved = localStorage.getItem(KEY); } catch (e) { /* storage off */ }
  if (saved === 'expanded') all(true);
  if (saved === 'collapsed') all(false);
  document.addEventListener('click', function (ev) {
    var b = ev.target.closest && ev.target.closest('button.copy');
    if (!b || !navigator.clipboard) return;
    navigator.clipboard.writeText(b.getAttribute('data-copy') || '').then(function () {
      b.textContent = 'copied';
      setTimeout(function () { b.textContent = 'copy'; }, 1200);
    });
  });
  // Clicking a row that heads a subtree opens the span's pane; only the arrow toggles the subtree.
  document.querySelectorAll('ul.tree summary > a.row').forEach(function (a) {
    a.addEventListener('click', function (ev) { ev.stopPropagation(); });
  });
  var chosen = document.querySelector('a.row.chosen');
  if (chosen && chosen.scrollIntoView) chosen.scrollIntoView({block: 'nearest'});
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
