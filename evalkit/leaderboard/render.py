"""Writers: Markdown, CSV (wide and long) and a self-contained HTML page.

The HTML page has no external assets (inline CSS and JS, no fonts, no CDN): it opens offline
from disk. One table per language group keeps each within a 1,400 px page (the model column is
sticky when a table must scroll). Headers are readable metric names (the id in the tooltip);
each cell shows its value, 95 % CI and Δ vs the row's baseline, with a dot (●, never an arrow:
arrows are the sort order) where the difference is significant after Holm's correction, and
links into the `evalkit view` page of that variant × task. Clicking a header sorts; each row's
"details" button opens the model's metadata (size, adapter rank, merge recipe, per-task
settings such as the chat template). No path of the machine that made the run is printed.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Callable
from typing import Any

from evalkit.leaderboard.board import Board, Cell, Column
from evalkit.leaderboard.labels import fmt

#: where `evalkit view` writes its pages, relative to a run root; boards link there
VIEW_DIR = "view"


def view_page_name(task: str) -> str:
    """File name of a task's `evalkit view` page (the records' own file name, ``.html``)."""
    from evalkit.records import task_file_name

    return f"{task_file_name(task)}.html"


#: significance after the board's correction: a dot, never an arrow (arrows mean sorting)
SIG = "●"
MARK = {"better": f"{SIG} better", "worse": f"{SIG} worse", "same": ""}
LEGEND = ("Each cell: value, 95% CI, and Δ vs the row's baseline; {sig} (green/red): "
          "significantly better/worse than the baseline after {correction} (paired test, "
          "α = {alpha}); ⚠: not comparable with the rest of the column (never tested or "
          "ranked). ↓: lower is better (else higher). Values link to the samples behind them.")


def md(text: object) -> str:
    """Text for a Markdown table cell: HTML escaped (model names are user input and Markdown
    renders raw HTML), pipes escaped, one line."""
    return html.escape(" ".join(str(text).split()), quote=False).replace("|", "\\|")


def csv_safe(value: object) -> object:
    """A CSV cell that spreadsheets will not run as a formula (OWASP: a leading = + - @ tab or
    CR makes Excel/LibreOffice evaluate the cell); numbers pass unchanged."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(value)
            return value
        except ValueError:
            return "'" + value
    return value


class _SafeWriter:
    """csv.writer whose cells go through `csv_safe`."""

    def __init__(self, buf: io.StringIO) -> None:
        self._w = csv.writer(buf, lineterminator="\n")

    def writerow(self, row: list[Any]) -> None:
        self._w.writerow([csv_safe(v) for v in row])


def _ci(ci: tuple[float, float] | None) -> str:
    return f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else ""


def fmt_delta(c: Cell, ref: float | None = None) -> str:
    """``+1.23`` with the value's precision."""
    if c.delta is None:
        return ""
    if c.delta == 0:
        return "0"
    v = ref if ref is not None else c.value
    digits = 2 if v is not None and abs(v) >= 2 else 3
    return f"{c.delta:+.{digits}f}"


def cell_text(c: Cell, ci: bool = True) -> str:
    """Value, CI, Δ vs baseline and the significance mark as one short string."""
    if c.value is None and not c.flags:
        return "—"
    s = fmt(c.value) + (_ci(c.ci) if ci else "")
    if c.delta is not None and c.value is not None:
        s += f" Δ {fmt_delta(c)}"
    if c.verdict in ("better", "worse"):
        s += " " + MARK[c.verdict]
    if not c.comparable and c.value is not None:
        s += " ⚠"
    return s


def cell_tooltip(board: Board, c: Cell, col: Column, row: Any = None) -> str:
    """Everything known about a cell, one fact per line."""
    lines = [f"{col.task} · {col.metric} ({'higher' if col.higher_is_better else 'lower'} "
             "is better)"]
    if c.value is not None:
        lines.append(f"value {fmt(c.value)}{_ci(c.ci)} (95% CI), n = {c.n}")
    if c.delta is not None:
        lines.append(f"Δ vs baseline {c.delta:+.3f}{_ci(c.delta_ci)}"
                     + (f", p = {c.p_value:.4f} ({c.test_method})" if c.p_value is not None
                        else ""))
    if c.p_holm is not None:
        lines.append(f"p after {board.config.correction} correction = {c.p_holm:.4f}"
                     + (f" → significantly {c.verdict}" if c.verdict in ("better", "worse")
                        else ""))
    if c.test_note:
        lines.append(c.test_note)
    lines += c.flags
    if row is not None and col.task in getattr(row, "summaries", {}):
        s = row.summaries[col.task]
        applied = s.chat_template.get("chat_applied", s.chat_template.get("applied"))
        lines.append(f"chat template {'applied' if applied else 'not applied'}; "
                     f"run {s.created_at}")
    if c.signature:
        lines.append(f"signature {c.signature}")
    return "\n".join(lines)


def _legend(board: Board) -> str:
    cfg = board.config
    base = ("each adapter/merge vs its own base model" if cfg.baseline == "auto"
            else f"every row vs {cfg.baseline!r}")
    test = {"bs": "paired bootstrap", "ar": "approximate randomisation"}[cfg.test]
    return (f"Baseline: {base}. Test: {test} ({cfg.n_test_samples} samples, seed "
            f"{cfg.test_seed}; sacrebleu's own test for BLEU/chrF). "
            + LEGEND.format(alpha=cfg.alpha, sig=SIG, correction=(
                "Holm's correction over each row's tests" if cfg.correction == "holm"
                else "no multiple-comparison correction"))
            + " Rank score: EuroEval-style (1 = best; reconstructed), 95% bootstrap CI.")


def _ordered_rows(board: Board) -> list[Any]:
    def key(r: Any) -> tuple[float, str]:
        rs = board.rank.get(r.key)
        return (rs.value if rs else float("inf"), r.label)

    return sorted(board.rows, key=key)


def to_markdown(board: Board) -> str:
    """Rank table, one table per language group, mismatches, signatures, notes."""
    cfg = board.config
    out = [f"# {md(cfg.title or cfg.name)}", ""]
    if cfg.description:
        out += [md(cfg.description), ""]
    out += [_legend(board), ""]
    rows = _ordered_rows(board)
    out += ["## Rank score", "", "| # | Model | Rank score [95% CI] | Tasks | Baseline |",
            "| ---: | --- | --- | ---: | --- |"]
    for i, r in enumerate(rows, 1):
        rs = board.rank.get(r.key)
        base = board.baselines.get(r.key)
        bl = board.row(base).label if base else "—"
        out.append(f"| {i} | {md(r.label)} | {fmt(rs.value) + _ci(rs.ci) if rs else '—'} | "
                   f"{rs.n_tasks if rs else 0} | {md(bl)} |")
    for group, cols in board.groups():
        out += ["", f"## {group or 'Tasks'}", "",
                "| Model | " + " | ".join(f"{md(c.label)}{'' if c.higher_is_better else ' ↓'}"
                                         for c in cols) + " |",
                "| --- |" + " ---: |" * len(cols)]
        for r in rows:
            out.append(f"| {md(r.label)} | "
                       + " | ".join(md(cell_text(board.cell(r, c))) for c in cols) + " |")
    if board.mismatches:
        out += ["", "## Not comparable (flagged, not tested, not ranked)", ""]
        out += [f"- {md(m.row)} · {md(m.task)} · {md(m.metric)}: {md(m.reason)}"
                for m in board.mismatches]
    sigs = _signatures(board)
    if sigs:
        out += ["", "## sacrebleu signatures", ""]
        out += [f"- {md(label)}: `{sig.replace('`', '')}`" for label, sig in sigs]
    if board.notes:
        out += ["", "## Notes", ""] + [f"- {md(n)}" for n in board.notes]
    return "\n".join(out) + "\n"


def _signatures(board: Board) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for col in board.columns:
        sigs = sorted({c.signature for r in board.rows
                       if (c := board.cells.get((r.key, col.id))) and c.signature})
        out += [(col.label, s) for s in sigs]
    return out


def to_csv(board: Board) -> str:
    """Wide CSV: one line per model; per column value, CI, delta, p, verdict (EuroEval-like)."""
    buf = io.StringIO()
    w = _SafeWriter(buf)
    head = ["model", "variant", "baseline", "rank_score", "rank_ci_low", "rank_ci_high",
            "rank_tasks"]
    for c in board.columns:
        head += [f"{c.group}/{c.id}", f"{c.id} ci_low", f"{c.id} ci_high", f"{c.id} delta",
                 f"{c.id} p", f"{c.id} p_holm", f"{c.id} verdict"]
    w.writerow(head)
    for r in _ordered_rows(board):
        rs = board.rank.get(r.key)
        base = board.baselines.get(r.key)
        line: list[Any] = [r.label, r.key, board.row(base).label if base else "",
                           _num(rs.value if rs else None),
                           _num(rs.ci[0] if rs and rs.ci else None),
                           _num(rs.ci[1] if rs and rs.ci else None), rs.n_tasks if rs else 0]
        for col in board.columns:
            cell = board.cell(r, col)
            verdict = cell.verdict or ("not comparable" if not cell.comparable
                                       and cell.value is not None else "")
            line += [_num(cell.value), _num(cell.ci[0] if cell.ci else None),
                     _num(cell.ci[1] if cell.ci else None), _num(cell.delta),
                     _num(cell.p_value), _num(cell.p_holm), verdict]
        w.writerow(line)
    return buf.getvalue()


def to_long_csv(board: Board) -> str:
    """Long CSV: one line per (model, task, metric) with everything, flags and signature."""
    buf = io.StringIO()
    w = _SafeWriter(buf)
    w.writerow(["model", "variant", "group", "task", "metric", "higher_is_better", "value",
                "ci_low", "ci_high", "n", "baseline", "delta", "delta_ci_low", "delta_ci_high",
                "p_value", "p_holm", "test", "verdict", "comparable", "flags", "signature"])
    for r in _ordered_rows(board):
        base = board.baselines.get(r.key)
        for col in board.columns:
            c = board.cells.get((r.key, col.id))
            if c is None:
                continue
            w.writerow([r.label, r.key, col.group, col.task, col.metric, col.higher_is_better,
                        _num(c.value), _num(c.ci[0] if c.ci else None),
                        _num(c.ci[1] if c.ci else None), c.n or "",
                        board.row(base).label if base else "", _num(c.delta),
                        _num(c.delta_ci[0] if c.delta_ci else None),
                        _num(c.delta_ci[1] if c.delta_ci else None), _num(c.p_value),
                        _num(c.p_holm), c.test_method or c.test_note or "", c.verdict or "",
                        c.comparable,
                        "; ".join(c.flags), c.signature or ""])
    return buf.getvalue()


def _num(v: float | None) -> str:
    return "" if v is None else repr(round(float(v), 6))


_CSS = """
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222}
.page{max-width:1400px;margin:0 auto;padding:1em 1.5em}
h1{font-size:1.5em;margin:.3em 0}h2{font-size:1.15em;margin:1.2em 0 .3em}
.legend{font-size:90%;color:#333}
.scroll{overflow-x:auto;max-width:100%;border-left:1px solid #ccc}
table.board{border-collapse:separate;border-spacing:0;font-size:13px;margin:0}
table.board th,table.board td{border-right:1px solid #ccc;border-bottom:1px solid #ccc;
padding:3px 6px;vertical-align:top}
table.board thead tr:first-child th{border-top:1px solid #ccc}
thead th{background:#f3f3f3;font-weight:600;text-align:center;line-height:1.2;
white-space:normal;overflow-wrap:anywhere;hyphens:auto}
thead th.metric{min-width:4.6em;max-width:7.5em;font-size:12px}
th.sortable{cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2";font-size:80%}
th[aria-sort=descending]::after{content:" \\25BC";font-size:80%}
th .dir{color:#777;font-weight:400}
.model{position:sticky;left:0;z-index:1;background:#fff;text-align:left;min-width:9em;
max-width:15em;white-space:normal;box-shadow:2px 0 0 #ccc}
thead th.model{z-index:3;background:#f3f3f3}
td.rank,td.val{text-align:right;white-space:nowrap}
td.val a{color:inherit;text-decoration:none;border-bottom:1px dotted #999}
td.val a:hover{color:#0b57d0}
.ci{display:block;color:#777;font-size:11px}
.d{display:block;font-size:11px;color:#666}
.d.better{color:#0a7a2f;font-weight:700}.d.worse{color:#b3261e;font-weight:700}
.sig{font-size:10px;margin-left:2px;vertical-align:1px}
td.mismatch{background:#fff3cd}
.badge{font-size:75%;background:#e8eaf6;border-radius:3px;padding:0 4px;margin-left:4px}
button.more{font-size:11px;margin-left:4px;padding:0 4px;border:1px solid #bbb;
border-radius:3px;background:#fafafa;cursor:pointer}
tr.details td{background:#fafbfd;font-size:12px;white-space:normal}
tr.details dl{display:grid;grid-template-columns:max-content 1fr;gap:1px 12px;margin:0;
max-width:1100px}
tr.details dt{font-weight:600}tr.details dd{margin:0;overflow-wrap:anywhere}
dl.metrics dt{font-weight:600}dl.metrics dd{margin:0 0 4px 1.2em}
img.plot{max-width:100%;height:auto;display:block;margin:.5em 0}
"""

_JS = """
(function(){
  function val(row,i){var c=row.cells[i];if(!c)return null;var s=c.getAttribute('data-sort');
    if(c.getAttribute('data-type')==='text')return s;
    var v=parseFloat(s);return isNaN(v)?null:v;}
  document.querySelectorAll('table.board').forEach(function(table){
    var heads=table.querySelectorAll('th.sortable');
    heads.forEach(function(th){th.addEventListener('click',function(){
      var i=parseInt(th.getAttribute('data-col'),10);
      var asc=th.getAttribute('aria-sort')!=='ascending';
      heads.forEach(function(h){h.removeAttribute('aria-sort');});
      th.setAttribute('aria-sort',asc?'ascending':'descending');
      var bodies=Array.prototype.slice.call(table.tBodies);
      bodies.sort(function(a,b){var x=val(a.rows[0],i),y=val(b.rows[0],i);
        if(x===y)return 0;if(x===null)return 1;if(y===null)return -1;
        var r=(typeof x==='string')?x.localeCompare(y):x-y;return asc?r:-r;});
      bodies.forEach(function(b){table.appendChild(b);});
    });});
  });
  document.querySelectorAll('button.more').forEach(function(b){
    b.addEventListener('click',function(ev){ev.stopPropagation();
      var tb=b.closest('tbody'),d=tb.querySelector('tr.details');
      d.hidden=!d.hidden;b.setAttribute('aria-expanded',String(!d.hidden));});
  });
})();
"""


def to_html(board: Board, plots: list[str] | None = None,
            view_href: Callable[[str, str], str | None] | None = None) -> str:
    """The self-contained page: one table per language group, each fitting a 1,400 px page.

    `view_href(task, variant)` gives the link of a cell into the `evalkit view` page of that
    task (relative to the board's folder), or None for no link.
    """
    from evalkit.leaderboard.details import row_details

    e = html.escape
    cfg = board.config
    rows = _ordered_rows(board)
    p: list[str] = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
                    f"<title>{e(cfg.title or cfg.name)}</title><style>{_CSS}</style></head>",
                    f"<body><main class=\"page\"><h1>{e(cfg.title or cfg.name)}</h1>"]
    if cfg.description:
        p.append(f"<p>{e(cfg.description)}</p>")
    p.append(f"<p class=\"legend\">{e(_legend(board))}</p>")
    details = {r.key: row_details(r) for r in rows}
    for gi, (group, cols) in enumerate(board.groups()):
        by_task: list[tuple[str, list[Column]]] = []
        for c in cols:
            if by_task and by_task[-1][0] == c.task:
                by_task[-1][1].append(c)
            else:
                by_task.append((c.task, [c]))
        n_cols = 2 + len(cols)
        p.append(f"<h2>{e(group or 'Tasks')}</h2><div class=\"scroll\">"
                 f"<table class=\"board\" id=\"board-{gi}\" data-group=\"{e(group)}\"><thead>"
                 "<tr><th class=\"sortable model\" data-col=\"0\" rowspan=\"2\">Model</th>"
                 "<th class=\"sortable rank\" data-col=\"1\" rowspan=\"2\" aria-sort=\"ascending\""
                 " title=\"EuroEval-style rank score over the board's tasks, 1 = best; 95% "
                 "bootstrap CI\">Rank score</th>")
        for task, tcols in by_task:
            p.append(f"<th class=\"task\" colspan=\"{len(tcols)}\" title=\"{e(task)}\">"
                     f"{e(tcols[0].task_label or task)}</th>")
        p.append("</tr><tr>")
        for i, c in enumerate(cols, 2):
            arrow = "" if c.higher_is_better else " <span class=\"dir\">↓</span>"
            tip = f"{c.metric} · {c.task}" + (f"\n{c.description}" if c.description else "") \
                + f"\n{'higher' if c.higher_is_better else 'lower'} is better"
            p.append(f"<th class=\"sortable metric\" data-col=\"{i}\" data-id=\"{e(c.id)}\" "
                     f"title=\"{e(tip)}\">{e(c.metric_label or c.metric)}{arrow}</th>")
        p.append("</tr></thead>")
        for r in rows:
            rs = board.rank.get(r.key)
            base = board.baselines.get(r.key)
            badge = "" if base or not any(v == r.key for v in board.baselines.values()) \
                else "<span class=\"badge\">baseline</span>"
            p.append(f"<tbody data-key=\"{e(r.key)}\"><tr class=\"main\">"
                     f"<td class=\"model\" data-type=\"text\" data-sort=\"{e(r.label)}\">"
                     f"<span class=\"name\">{e(r.label)}</span>{badge}"
                     "<button class=\"more\" type=\"button\" aria-expanded=\"false\" "
                     "title=\"model and run details\">details</button></td>")
            p.append(f"<td class=\"rank\" data-sort=\"{rs.value if rs else ''}\" title=\"over "
                     f"{rs.n_tasks if rs else 0} task(s)\">{fmt(rs.value) if rs else '—'}"
                     f"<span class=\"ci\">{e(_ci(rs.ci).strip()) if rs else ''}</span></td>")
            for c in cols:
                cell = board.cell(r, c)
                cls = ["val"]
                if not cell.comparable and cell.value is not None:
                    cls.append("mismatch")
                value = e(fmt(cell.value))
                href = view_href(c.task, r.key) if view_href and c.task in r.summaries else None
                if href and cell.value is not None:
                    value = (f"<a href=\"{e(href)}\" title=\"open the samples of "
                             f"{e(r.label)} on {e(c.task)}\">{value}</a>")
                ci = f"{fmt(cell.ci[0])}–{fmt(cell.ci[1])}" if cell.ci else ""
                extra = f"<span class=\"ci\">{e(ci)}</span>" if ci else ""
                if cell.delta is not None and cell.value is not None:
                    v = cell.verdict if cell.verdict in ("better", "worse") else ""
                    mark = (f"<span class=\"sig\" aria-label=\"significantly {v}\">{SIG}"
                            "</span>") if v else ""
                    extra += f"<span class=\"d {v}\">Δ {e(fmt_delta(cell))}{mark}</span>"
                if "mismatch" in cls:
                    extra += "<span class=\"d\">⚠ not comparable</span>"
                p.append(f"<td class=\"{' '.join(cls)}\" data-sort=\""
                         f"{'' if cell.value is None else cell.value}\" "
                         f"title=\"{e(cell_tooltip(board, cell, c, r))}\">{value}{extra}</td>")
            p.append("</tr>")
            dl = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in details[r.key])
            if base:
                dl += f"<dt>baseline</dt><dd>{e(board.row(base).label)}</dd>"
            p.append(f"<tr class=\"details\" hidden><td colspan=\"{n_cols}\"><dl>{dl}</dl>"
                     "</td></tr></tbody>")
        p.append("</table></div>")
    p.append("<h2>Metrics</h2><dl class=\"metrics\">")
    for c in board.columns:
        p.append(f"<dt>{e(c.label)} <code>{e(c.metric)}</code></dt><dd>"
                 f"{e(c.description or c.metric)} "
                 f"({'higher' if c.higher_is_better else 'lower'} is better)</dd>")
    p.append("</dl>")
    sigs = _signatures(board)
    if sigs:
        p.append("<h2>sacrebleu signatures</h2><ul class=\"signatures\">")
        p += [f"<li>{e(label)}: <code>{e(sig)}</code></li>" for label, sig in sigs]
        p.append("</ul>")
    if board.mismatches:
        p.append("<h2>Not comparable</h2><ul class=\"mismatches\">")
        p += [f"<li>{e(m.row)} · {e(m.task)} · {e(str(m.metric))}: {e(m.reason)}</li>"
              for m in board.mismatches]
        p.append("</ul>")
    if board.notes:
        p.append("<h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in board.notes)
                 + "</ul>")
    if plots:
        p.append("<h2>Plots</h2>")
        p += [f"<img class=\"plot\" src=\"{e(src)}\" alt=\"{e(src)}\">" for src in plots]
    p.append(f"</main><script>{_JS}</script></body></html>")
    return "\n".join(p) + "\n"
