"""The viewer page: inline CSS and script, data as one embedded JSON document.

No external assets and no network (a Content-Security-Policy forbids every fetch): the page
opens from disk. The script renders one page of samples at a time (50), so a 10,000-sample task
opens as fast as a 50-sample one after the JSON is parsed; filters, search and sorting run over
the parsed arrays. Text from records only ever enters the page through ``textContent`` /
text nodes, never as markup.
"""

from __future__ import annotations

import html
import json
from typing import Any

CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;padding:1em 1.5em;max-width:1400px;
color:#1d1d1f}
a{color:#0b57d0}
h1{font-size:1.4em;margin:.2em 0}h1 small{font-weight:400;color:#666;font-size:.7em}
table.summary,table.index{border-collapse:collapse;margin:.5em 0 1em;font-size:13px}
.summary th,.summary td,.index th,.index td{border:1px solid #ddd;padding:3px 7px;
text-align:right;vertical-align:top}
.summary th:first-child,.summary td:first-child,.summary th:last-child,.summary td:last-child,
.index th{text-align:left}
.index td .n{display:block;color:#777;font-size:85%}
.controls{position:sticky;top:0;z-index:2;background:#f6f7f9;border:1px solid #dde;
border-radius:6px;padding:.5em .7em;display:flex;flex-wrap:wrap;gap:.4em 1.1em;
align-items:center}
.controls label{white-space:nowrap}
.controls input[type=search]{width:16em}.controls input[type=number]{width:6em}
.pager{display:flex;gap:.6em;align-items:center;margin:.6em 0}
#count{font-weight:600}
article.sample{border:1px solid #ddd;border-radius:6px;margin:.7em 0;padding:.5em .8em;
background:#fff}
article.sample.changed{border-left:4px solid #b26a00}
article.sample h3{margin:.1em 0 .3em;font-size:1em;display:flex;gap:.8em;align-items:baseline}
.delta{font-weight:600;padding:0 .4em;border-radius:3px;background:#eee}
.delta.up{background:#dff3e4;color:#0a6b2c}.delta.down{background:#fbe3e1;color:#a0221a}
pre{white-space:pre-wrap;word-break:break-word;margin:.2em 0;max-height:18em;overflow:auto;
font:13px/1.4 ui-monospace,monospace;background:#fafafa;border:1px solid #eee;padding:.35em}
.lbl{font-size:80%;color:#666;text-transform:uppercase;letter-spacing:.04em}
.cols{display:grid;gap:.7em;margin-top:.4em}
.col{min-width:0;border-top:3px solid #c9d3e6;padding-top:.25em}
.col.a{border-top-color:#5b7bd5}
.vhead{font-weight:600;display:flex;gap:.5em;flex-wrap:wrap;align-items:baseline}
.badge{font-size:78%;font-weight:600;border-radius:3px;padding:0 .35em}
.badge.pass{background:#dff3e4;color:#0a6b2c}.badge.fail{background:#fbe3e1;color:#a0221a}
.badge.lm{background:#fff0c2;color:#6b4f00}
.ins{background:#c8f0d1;text-decoration:none}.del{background:#ffd6d2;text-decoration:line-through}
.chips{display:flex;flex-wrap:wrap;gap:.3em;margin:.25em 0}
.chip{font-size:80%;background:#eef1f6;border-radius:3px;padding:0 .35em}
.chip.sel{outline:1px solid #5b7bd5}.chip.chg{background:#ffe9b3}
ul.why{margin:.2em 0;padding-left:1.1em;font-size:88%}
ul.why li.pass{color:#0a6b2c}ul.why li.fail{color:#a0221a}ul.why li.warn{color:#8a5a00}
ul.why li.info{color:#555}
.missing{color:#888;font-style:italic}
"""

JS = r"""
(function(){
'use strict';
var t0 = performance.now();
var D = JSON.parse(document.getElementById('data').textContent);
var V = D.variants, M = D.metrics, S = D.samples, PAGE = 50;
var st = {a: 0, b: V.length > 1 ? 1 : -1, extra: {}, m: M.length ? 0 : -1, sort: 'id',
          f: 'all', lm: false, min: '', max: '', of: 'a', q: '', page: 0};
var hay = null, shown = [];
function $(id){ return document.getElementById(id); }
function el(tag, cls, text){
  var e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function vIndex(key){ for (var i = 0; i < V.length; i++) if (V[i].key === key) return i; return -1; }
function mIndex(id){ for (var i = 0; i < M.length; i++) if (M[i].id === id) return i; return -1; }
function fmt(x){
  if (x === null || x === undefined || isNaN(x)) return '—';
  var a = Math.abs(x);
  return a >= 2 ? x.toFixed(2) : x.toFixed(3);
}
function readHash(){
  location.hash.slice(1).split('&').forEach(function(kv){
    var i = kv.indexOf('='); if (i < 0) return;
    var k = decodeURIComponent(kv.slice(0, i)), v = decodeURIComponent(kv.slice(i + 1));
    if (k === 'v' && vIndex(v) >= 0) { st.a = vIndex(v); if (st.b === st.a) st.b = st.a === 0 ? (V.length > 1 ? 1 : -1) : 0; }
    else if (k === 'b') st.b = vIndex(v);
    else if (k === 'm' && mIndex(v) >= 0) st.m = mIndex(v);
    else if (k === 'q') st.q = v;
    else if (k === 'f') st.f = v;
    else if (k === 's') st.sort = v;
  });
}
function writeHash(){
  var h = 'v=' + encodeURIComponent(V[st.a].key);
  if (st.b >= 0) h += '&b=' + encodeURIComponent(V[st.b].key);
  if (st.m >= 0) h += '&m=' + encodeURIComponent(M[st.m].id);
  if (st.q) h += '&q=' + encodeURIComponent(st.q);
  if (st.f !== 'all') h += '&f=' + st.f;
  if (st.sort !== 'id') h += '&s=' + st.sort;
  history.replaceState(null, '', '#' + h);
}
function val(s, vi){
  if (st.m < 0 || vi < 0) return null;
  var c = s.v[vi]; if (!c) return null;
  var x = c.s[st.m]; return (x === null || x === undefined) ? null : x;
}
function delta(s){
  var a = val(s, st.a), b = val(s, st.b);
  return (a === null || b === null) ? null : b - a;
}
function buildHay(){
  hay = S.map(function(s){
    var parts = [s.id, s.p, s.ref || ''];
    s.v.forEach(function(c){
      if (!c) return;
      parts.push(c.o.join('\n'));
      c.why.forEach(function(w){ parts.push(w[1]); });
      if (c.p) parts.push(c.p);
    });
    return parts.join('\n').toLowerCase();
  });
}
function failed(c){ return !!c && c.ok === false; }
function apply(resetPage){
  if (resetPage) st.page = 0;
  var q = st.q.trim().toLowerCase(), terms = q ? q.split(/\s+/) : [];
  if (terms.length && !hay) buildHay();
  var lo = parseFloat(st.min), hi = parseFloat(st.max), ranged = !isNaN(lo) || !isNaN(hi);
  var out = [];
  for (var i = 0; i < S.length; i++) {
    var s = S[i], ca = s.v[st.a], cb = st.b >= 0 ? s.v[st.b] : null;
    if (!ca && !cb) continue;
    if (st.f === 'a' && !failed(ca)) continue;
    if (st.f === 'b' && !failed(cb)) continue;
    if (st.f === 'any' && !(failed(ca) || failed(cb))) continue;
    if (st.f === 'changed' && !(ca && cb && ca.ok !== cb.ok)) continue;
    if (st.lm && !((ca && ca.lm) || (cb && cb.lm))) continue;
    if (ranged) {
      var x = st.of === 'd' ? delta(s) : val(s, st.of === 'b' ? st.b : st.a);
      if (x === null || (!isNaN(lo) && x < lo) || (!isNaN(hi) && x > hi)) continue;
    }
    if (terms.length) {
      var h = hay[i], all = true;
      for (var t = 0; t < terms.length; t++) if (h.indexOf(terms[t]) < 0) { all = false; break; }
      if (!all) continue;
    }
    out.push(i);
  }
  var key = null;
  if (st.sort === 'd-desc' || st.sort === 'd-asc' || st.sort === 'abs') key = function(i){ var d = delta(S[i]); return d === null ? null : (st.sort === 'abs' ? Math.abs(d) : d); };
  else if (st.sort === 'a-asc' || st.sort === 'a-desc') key = function(i){ return val(S[i], st.a); };
  if (key) {
    var asc = st.sort === 'd-asc' || st.sort === 'a-asc';
    var ks = {}; out.forEach(function(i){ ks[i] = key(i); });
    out.sort(function(x, y){
      var a = ks[x], b = ks[y];
      if (a === b) return x - y;
      if (a === null) return 1; if (b === null) return -1;
      return asc ? a - b : b - a;
    });
  }
  shown = out;
  var pages = Math.max(1, Math.ceil(out.length / PAGE));
  if (st.page >= pages) st.page = pages - 1;
  writeHash();
  render();
}
function tokens(t){ return t.match(/\s+|[^\s]+/g) || []; }
function diff(a, b){
  var x = tokens(a), y = tokens(b), n = x.length, m = y.length;
  var ka = new Array(n).fill(true), kb = new Array(m).fill(true);
  var p = 0; while (p < n && p < m && x[p] === y[p]) { ka[p] = kb[p] = false; p++; }
  var q = 0; while (q < n - p && q < m - p && x[n - 1 - q] === y[m - 1 - q]) { ka[n - 1 - q] = kb[m - 1 - q] = false; q++; }
  var N = n - p - q, Mm = m - p - q;
  if (N > 0 && Mm > 0 && N * Mm <= 250000) {
    var L = []; for (var i = 0; i <= N; i++) L.push(new Int32Array(Mm + 1));
    for (var i2 = N - 1; i2 >= 0; i2--) for (var j = Mm - 1; j >= 0; j--)
      L[i2][j] = x[p + i2] === y[p + j] ? L[i2 + 1][j + 1] + 1 : Math.max(L[i2 + 1][j], L[i2][j + 1]);
    var i3 = 0, j3 = 0;
    while (i3 < N && j3 < Mm) {
      if (x[p + i3] === y[p + j3]) { ka[p + i3] = kb[p + j3] = false; i3++; j3++; }
      else if (L[i3 + 1][j3] >= L[i3][j3 + 1]) i3++; else j3++;
    }
  }
  return [x, ka, y, kb];
}
function textWithMarks(pre, toks, marks, cls){
  var buf = '';
  for (var i = 0; i < toks.length; i++) {
    if (marks[i] && /\S/.test(toks[i])) {
      if (buf) { pre.appendChild(document.createTextNode(buf)); buf = ''; }
      pre.appendChild(el('span', cls, toks[i]));
    } else buf += toks[i];
  }
  if (buf) pre.appendChild(document.createTextNode(buf));
}
function cols(){
  var c = [st.a];
  if (st.b >= 0 && st.b !== st.a) c.push(st.b);
  for (var i = 0; i < V.length; i++) if (st.extra[i] && c.indexOf(i) < 0) c.push(i);
  return c;
}
function card(s){
  var art = el('article', 'sample'); art.setAttribute('data-id', s.id);
  var ca = s.v[st.a], cb = st.b >= 0 ? s.v[st.b] : null;
  if (ca && cb && ca.ok !== cb.ok) art.className += ' changed';
  var h = el('h3'); h.appendChild(el('span', 'sid', s.id));
  var d = delta(s);
  if (d !== null) {
    var good = M[st.m].hib ? d > 0 : d < 0;
    h.appendChild(el('span', 'delta' + (d === 0 ? '' : good ? ' up' : ' down'),
                     '\u0394 ' + (d > 0 ? '+' : '') + fmt(d) + ' ' + M[st.m].label));
  }
  art.appendChild(h);
  art.appendChild(el('div', 'lbl', 'prompt'));
  art.appendChild(el('pre', 'prompt', s.p));
  if (s.ref !== null && s.ref !== undefined) {
    art.appendChild(el('div', 'lbl', 'reference'));
    art.appendChild(el('pre', 'ref', s.ref));
  }
  var cs = cols(), grid = el('div', 'cols');
  grid.style.gridTemplateColumns = 'repeat(' + cs.length + ', minmax(0, 1fr))';
  var refTexts = ca ? ca.o : [];
  var other = cs.length > 1 ? s.v[cs[1]] : null;
  cs.forEach(function(vi, k){
    var c = s.v[vi], col = el('div', 'col' + (k === 0 ? ' a' : ''));
    col.setAttribute('data-v', V[vi].key);
    var head = el('div', 'vhead'); head.appendChild(el('span', 'vname', V[vi].label));
    if (c) {
      if (c.ok === true) head.appendChild(el('span', 'badge pass', '\u2713 pass'));
      if (c.ok === false) head.appendChild(el('span', 'badge fail', '\u2717 fail'));
      if (c.lm) head.appendChild(el('span', 'badge lm', 'language mismatch'));
    }
    col.appendChild(head);
    if (!c) { col.appendChild(el('p', 'missing', 'not run on this sample')); grid.appendChild(col); return; }
    if (c.p) { col.appendChild(el('div', 'lbl', 'prompt (differs)')); col.appendChild(el('pre', 'prompt', c.p)); }
    c.o.forEach(function(t, j){
      var pre = el('pre', 'resp');
      var base = k === 0 ? (other && other.o[j] !== undefined ? other.o[j] : null) : (refTexts[j] !== undefined ? refTexts[j] : null);
      if (base !== null && base !== t) {
        var r = k === 0 ? diff(t, base) : diff(base, t);
        if (k === 0) textWithMarks(pre, r[0], r[1], 'del'); else textWithMarks(pre, r[2], r[3], 'ins');
      } else pre.textContent = t;
      col.appendChild(pre);
    });
    var chips = el('div', 'chips');
    M.forEach(function(m, mi){
      var x = c.s[mi]; if (x === null || x === undefined) return;
      var cls = 'chip' + (mi === st.m ? ' sel' : '');
      if (k > 0 && ca && ca.s[mi] !== x) cls += ' chg';
      var chip = el('span', cls, m.label + ' ' + fmt(x)); chip.title = m.id;
      chips.appendChild(chip);
    });
    col.appendChild(chips);
    if (c.why.length) {
      var ul = el('ul', 'why');
      c.why.forEach(function(w){ ul.appendChild(el('li', w[0], w[1])); });
      col.appendChild(ul);
    }
    grid.appendChild(col);
  });
  art.appendChild(grid);
  return art;
}
function render(){
  var list = $('list'); list.textContent = '';
  var start = st.page * PAGE, end = Math.min(shown.length, start + PAGE);
  var frag = document.createDocumentFragment();
  for (var i = start; i < end; i++) frag.appendChild(card(S[shown[i]]));
  list.appendChild(frag);
  $('count').textContent = shown.length + ' of ' + S.length + ' samples';
  $('pageinfo').textContent = shown.length ? (start + 1) + '\u2013' + end : '0';
  $('prev').disabled = st.page === 0; $('next').disabled = end >= shown.length;
}
function option(sel, value, text){ var o = el('option', null, text); o.value = value; sel.appendChild(o); }
function setup(){
  var va = $('va'), vb = $('vb'), mm = $('metric'), ex = $('extra');
  V.forEach(function(v, i){ option(va, i, v.label); option(vb, i, v.label); });
  option(vb, -1, '(none)');
  M.forEach(function(m, i){ option(mm, i, m.label); });
  if (!M.length) option(mm, -1, '(no per-sample metric)');
  V.forEach(function(v, i){
    var lab = el('label'), cb = el('input'); cb.type = 'checkbox'; cb.value = i;
    cb.addEventListener('change', function(){ st.extra[i] = cb.checked; apply(false); });
    lab.appendChild(cb); lab.appendChild(document.createTextNode(' ' + v.label)); ex.appendChild(lab);
  });
  va.value = st.a; vb.value = st.b; mm.value = st.m; $('sort').value = st.sort; $('failed').value = st.f; $('q').value = st.q;
  va.addEventListener('change', function(){ st.a = +va.value; apply(true); });
  vb.addEventListener('change', function(){ st.b = +vb.value; apply(true); });
  mm.addEventListener('change', function(){ st.m = +mm.value; apply(true); });
  $('sort').addEventListener('change', function(){ st.sort = this.value; apply(true); });
  $('failed').addEventListener('change', function(){ st.f = this.value; apply(true); });
  $('langmm').addEventListener('change', function(){ st.lm = this.checked; apply(true); });
  $('of').addEventListener('change', function(){ st.of = this.value; apply(true); });
  $('min').addEventListener('input', function(){ st.min = this.value; apply(true); });
  $('max').addEventListener('input', function(){ st.max = this.value; apply(true); });
  var timer = null;
  $('q').addEventListener('input', function(){
    var box = this; clearTimeout(timer);
    timer = setTimeout(function(){ st.q = box.value; apply(true); }, 120);
  });
  $('prev').addEventListener('click', function(){ st.page--; render(); window.scrollTo(0, 0); });
  $('next').addEventListener('click', function(){ st.page++; render(); window.scrollTo(0, 0); });
  window.addEventListener('hashchange', function(){ readHash(); va.value = st.a; vb.value = st.b; apply(true); });
  var tb = $('summary');
  V.forEach(function(v){
    var tr = el('tr'); tr.appendChild(el('td', null, v.label));
    tr.appendChild(el('td', null, v.chat === true ? 'yes' : v.chat === false ? 'no' : '?'));
    tr.appendChild(el('td', null, v.n + (v.limit !== null && v.limit !== undefined ? ' (--limit ' + v.limit + ')' : '')));
    var txt = v.summary.slice(0, 6).map(function(m){ return m.label + ' ' + fmt(m.value); }).join(' \u00b7 ');
    tr.appendChild(el('td', null, txt));
    tb.appendChild(tr);
  });
}
readHash();
setup();
apply(false);
window.__viewReadyMs = performance.now();
window.__viewRenderMs = performance.now() - t0;
})();
"""


def json_for_script(doc: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: nothing in it can end the
    element or start markup (``<``, ``>``, ``&`` escaped), and no raw line separators."""
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def render_task_page(doc: dict[str, Any]) -> str:
    """The complete HTML page of one task."""
    e = html.escape
    title = f"{doc['task']} — samples"
    return "".join([
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>",
        f"<p><a href=\"index.html\">← all tasks</a></p><h1>{e(doc['task'])} "
        f"<small>version {e(str(doc['version']))} · language {e(doc['language'])} · "
        f"{len(doc['samples'])} samples</small></h1>",
        "<table class=\"summary\"><thead><tr><th>Variant</th><th>Chat template</th><th>n</th>"
        "<th>Summary</th></tr></thead><tbody id=\"summary\"></tbody></table>",
        "<div class=\"controls\">",
        "<label>A <select id=\"va\"></select></label>",
        "<label>vs B <select id=\"vb\"></select></label>",
        "<span>also show: <span id=\"extra\"></span></span>",
        "<label>metric <select id=\"metric\"></select></label>",
        "<label>sort <select id=\"sort\"><option value=\"id\">record order</option>"
        "<option value=\"d-desc\">Δ (B − A) high → low</option>"
        "<option value=\"d-asc\">Δ (B − A) low → high</option>"
        "<option value=\"abs\">|Δ| largest first</option>"
        "<option value=\"a-asc\">A's value low → high</option>"
        "<option value=\"a-desc\">A's value high → low</option></select></label>",
        "<label>show <select id=\"failed\"><option value=\"all\">all</option>"
        "<option value=\"a\">A failed</option><option value=\"b\">B failed</option>"
        "<option value=\"any\">A or B failed</option>"
        "<option value=\"changed\">pass/fail differs</option></select></label>",
        "<label><input type=\"checkbox\" id=\"langmm\"> language mismatch</label>",
        "<label>range of <select id=\"of\"><option value=\"a\">A</option>"
        "<option value=\"b\">B</option><option value=\"d\">Δ</option></select> "
        "<input type=\"number\" id=\"min\" step=\"any\" placeholder=\"min\"> – "
        "<input type=\"number\" id=\"max\" step=\"any\" placeholder=\"max\"></label>",
        "<label>search <input type=\"search\" id=\"q\" placeholder=\"prompt, output, reason…\">"
        "</label></div>",
        "<div class=\"pager\"><button id=\"prev\">← prev</button><span id=\"pageinfo\"></span>"
        "<button id=\"next\">next →</button><span id=\"count\"></span></div>",
        "<main id=\"list\"></main>",
        f"<script type=\"application/json\" id=\"data\">{json_for_script(doc)}</script>",
        f"<script>{JS}</script></body></html>\n"])
