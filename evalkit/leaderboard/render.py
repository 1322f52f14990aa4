"""Writers: Markdown, CSV (wide and long) and a self-contained HTML page.

The HTML page has no external assets (inline CSS and JS, no fonts, no CDN): it opens offline
from disk. Clicking a column header sorts the table by that column (numbers numerically,
missing values last); each cell's tooltip carries its CI, n, delta vs baseline, p-value and
sacrebleu signature; each model cell has a details element with the run metadata.
"""

from __future__ import annotations

import csv
import html
import io
import json
from typing import Any

from evalkit.leaderboard.board import Board, Cell, Column, fmt

#: where `evalkit view` writes its pages, relative to a run root; boards link there
VIEW_DIR = "view"


def view_page_name(task: str) -> str:
    """File name of a task's `evalkit view` page (the records' own file name, ``.html``)."""
    from evalkit.records import task_file_name

    return f"{task_file_name(task)}.html"


MARK = {"better": "▲", "worse": "▼", "same": ""}
LEGEND = ("▲/▼: significantly better/worse than the row's baseline (paired test, α = {alpha}); "
          "⚠: not comparable with the rest of the column (never tested or ranked).")


def _ci(ci: tuple[float, float] | None) -> str:
    return f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else ""


def cell_text(c: Cell, ci: bool = True) -> str:
    """Value, CI and mark as one short string."""
    if c.value is None and not c.flags:
        return "—"
    s = fmt(c.value) + (_ci(c.ci) if ci else "")
    if c.verdict in ("better", "worse"):
        s += " " + MARK[c.verdict]
    if not c.comparable and c.value is not None:
        s += " ⚠"
    return s


def cell_tooltip(board: Board, c: Cell, col: Column) -> str:
    """Everything known about a cell, one fact per line."""
    lines = [f"{col.task} · {col.metric} ({'higher' if col.higher_is_better else 'lower'} "
             "is better)"]
    if c.value is not None:
        lines.append(f"value {fmt(c.value)}{_ci(c.ci)} (95% CI), n = {c.n}")
    if c.delta is not None:
        lines.append(f"Δ vs baseline {c.delta:+.3f}{_ci(c.delta_ci)}"
                     + (f", p = {c.p_value:.4f} ({c.test_method})" if c.p_value is not None
                        else ""))
    if c.test_note:
        lines.append(c.test_note)
    lines += c.flags
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
            + LEGEND.format(alpha=cfg.alpha)
            + " Rank score: EuroEval-style (1 = best; reconstructed), 95% bootstrap CI.")


def _ordered_rows(board: Board) -> list[Any]:
    def key(r: Any) -> tuple[float, str]:
        rs = board.rank.get(r.key)
        return (rs.value if rs else float("inf"), r.label)

    return sorted(board.rows, key=key)


def to_markdown(board: Board) -> str:
    """Rank table, one table per language group, mismatches, signatures, notes."""
    cfg = board.config
    out = [f"# {cfg.title or cfg.name}", ""]
    if cfg.description:
        out += [cfg.description, ""]
    out += [_legend(board), ""]
    rows = _ordered_rows(board)
    out += ["## Rank score", "", "| # | Model | Rank score [95% CI] | Tasks | Baseline |",
            "| ---: | --- | --- | ---: | --- |"]
    for i, r in enumerate(rows, 1):
        rs = board.rank.get(r.key)
        base = board.baselines.get(r.key)
        bl = board.row(base).label if base else "—"
        out.append(f"| {i} | {r.label} | {fmt(rs.value) + _ci(rs.ci) if rs else '—'} | "
                   f"{rs.n_tasks if rs else 0} | {bl} |")
    for group, cols in board.groups():
        out += ["", f"## {group or 'Tasks'}", "",
                "| Model | " + " | ".join(f"{c.label}{'' if c.higher_is_better else ' ↓'}"
                                         for c in cols) + " |",
                "| --- |" + " ---: |" * len(cols)]
        for r in rows:
            out.append(f"| {r.label} | "
                       + " | ".join(cell_text(board.cell(r, c)) for c in cols) + " |")
    if board.mismatches:
        out += ["", "## Not comparable (flagged, not tested, not ranked)", ""]
        out += [f"- {m.row} · {m.task} · {m.metric}: {m.reason}" for m in board.mismatches]
    sigs = _signatures(board)
    if sigs:
        out += ["", "## sacrebleu signatures", ""]
        out += [f"- {label}: `{sig}`" for label, sig in sigs]
    if board.notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in board.notes]
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
    w = csv.writer(buf, lineterminator="\n")
    head = ["model", "variant", "baseline", "rank_score", "rank_ci_low", "rank_ci_high",
            "rank_tasks"]
    for c in board.columns:
        head += [f"{c.group}/{c.id}", f"{c.id} ci_low", f"{c.id} ci_high", f"{c.id} delta",
                 f"{c.id} p", f"{c.id} verdict"]
    w.writerow(head)
    for r in _ordered_rows(board):
        rs = board.rank.get(r.key)
        base = board.baselines.get(r.key)
        line: list[Any] = [r.label, r.key, board.row(base).label if base else "",
                           _num(rs.value if rs else None),
                           _num(rs.ci[0] if rs and rs.ci else None),
                           _num(rs.ci[1] if rs and rs.ci else None), rs.n_tasks if rs else 0]
        for col in board.columns:
            c = board.cell(r, col)
            verdict = c.verdict or ("not comparable" if not c.comparable and c.value is not None
                                    else "")
            line += [_num(c.value), _num(c.ci[0] if c.ci else None),
                     _num(c.ci[1] if c.ci else None), _num(c.delta), _num(c.p_value), verdict]
        w.writerow(line)
    return buf.getvalue()


def to_long_csv(board: Board) -> str:
    """Long CSV: one line per (model, task, metric) with everything, flags and signature."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["model", "variant", "group", "task", "metric", "higher_is_better", "value",
                "ci_low", "ci_high", "n", "baseline", "delta", "delta_ci_low", "delta_ci_high",
                "p_value", "test", "verdict", "comparable", "flags", "signature"])
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
                        c.test_method or c.test_note or "", c.verdict or "", c.comparable,
                        "; ".join(c.flags), c.signature or ""])
    return buf.getvalue()


def _num(v: float | None) -> str:
    return "" if v is None else repr(round(float(v), 6))


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;vertical-align:top}
td.model,th.model{text-align:left}
thead th{background:#f3f3f3}
th.sortable{cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2"}
th[aria-sort=descending]::after{content:" \\25BC"}
.better{color:#0a7a2f;font-weight:600}.worse{color:#b3261e;font-weight:600}
.mismatch{background:#fff3cd}.ci{display:block;color:#666;font-size:80%;white-space:nowrap}
tr.groups th{text-align:center}
.badge{font-size:75%;background:#e8eaf6;border-radius:3px;padding:0 4px;margin-left:4px}
details{font-size:80%;color:#444;text-align:left}details dl{margin:0}dt{font-weight:600}
details dd{margin:0 0 2px 8px;word-break:break-all;max-width:40em}
"""

_JS = """
(function(){
  var table=document.getElementById('board');
  var heads=table.querySelectorAll('th.sortable');
  function val(row,i){var c=row.cells[i];var s=c.getAttribute('data-sort');
    if(c.getAttribute('data-type')==='text')return s;
    var v=parseFloat(s);return isNaN(v)?null:v;}
  heads.forEach(function(th){th.addEventListener('click',function(){
    var i=parseInt(th.getAttribute('data-col'),10);
    var asc=th.getAttribute('aria-sort')!=='ascending';
    heads.forEach(function(h){h.removeAttribute('aria-sort');});
    th.setAttribute('aria-sort',asc?'ascending':'descending');
    var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){var x=val(a,i),y=val(b,i);
      if(x===y)return 0;if(x===null)return 1;if(y===null)return -1;
      var r=(typeof x==='string')?x.localeCompare(y):x-y;return asc?r:-r;});
    rows.forEach(function(r){body.appendChild(r);});
  });});
})();
"""


def to_html(board: Board, plots: list[str] | None = None) -> str:
    """The self-contained page."""
    e = html.escape
    cfg = board.config
    rows = _ordered_rows(board)
    p: list[str] = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
                    f"<title>{e(cfg.title or cfg.name)}</title><style>{_CSS}</style></head>",
                    f"<body><h1>{e(cfg.title or cfg.name)}</h1>"]
    if cfg.description:
        p.append(f"<p>{e(cfg.description)}</p>")
    p.append(f"<p class=\"legend\">{e(_legend(board))}</p>")
    p.append("<table id=\"board\"><thead><tr class=\"groups\"><th colspan=\"2\"></th>")
    for group, cols in board.groups():
        p.append(f"<th colspan=\"{len(cols)}\">{e(group or 'tasks')}</th>")
    p.append("</tr><tr><th class=\"sortable model\" data-col=\"0\">Model</th>"
             "<th class=\"sortable\" data-col=\"1\" aria-sort=\"ascending\" title=\"EuroEval-style"
             " rank score over the board's tasks, 1 = best; 95% bootstrap CI\">Rank score</th>")
    i = 2
    ordered_cols: list[Column] = []
    for _, cols in board.groups():
        for c in cols:
            arrow = "↑" if c.higher_is_better else "↓"
            tip = f"{c.task} · {c.metric}: {c.description}".strip(": ")
            p.append(f"<th class=\"sortable\" data-col=\"{i}\" data-id=\"{e(c.id)}\" "
                     f"title=\"{e(tip)}\">{e(c.label)} {arrow}</th>")
            ordered_cols.append(c)
            i += 1
    p.append("</tr></thead><tbody>")
    for r in rows:
        rs = board.rank.get(r.key)
        base = board.baselines.get(r.key)
        meta = r.meta()
        meta_tip = "\n".join(f"{k}: {v}" for k, v in meta.items() if k != "runs" and v)
        badge = "" if base or not any(v == r.key for v in board.baselines.values()) \
            else "<span class=\"badge\">baseline</span>"
        details = "".join(f"<dt>{e(str(k))}</dt><dd>{e(json.dumps(v, ensure_ascii=False) if isinstance(v, dict) else str(v))}</dd>"
                          for k, v in meta.items() if v not in (None, ""))
        if base:
            details += f"<dt>baseline</dt><dd>{e(board.row(base).label)}</dd>"
        p.append(f"<tr data-key=\"{e(r.key)}\"><td class=\"model\" data-type=\"text\" "
                 f"data-sort=\"{e(r.label)}\"><span title=\"{e(meta_tip)}\">{e(r.label)}</span>"
                 f"{badge}<details><summary>run details</summary><dl>{details}</dl></details></td>")
        p.append(f"<td data-sort=\"{rs.value if rs else ''}\" title=\"over "
                 f"{rs.n_tasks if rs else 0} task(s)\">{fmt(rs.value) if rs else '—'}"
                 f"<span class=\"ci\">{e(_ci(rs.ci)) if rs else ''}</span></td>")
        for c in ordered_cols:
            cell = board.cell(r, c)
            cls = [cell.verdict] if cell.verdict in ("better", "worse") else []
            if not cell.comparable and cell.value is not None:
                cls.append("mismatch")
            mark = MARK.get(cell.verdict or "", "") + (" ⚠" if "mismatch" in cls else "")
            p.append(f"<td class=\"{' '.join(cls)}\" data-sort=\""
                     f"{'' if cell.value is None else cell.value}\" "
                     f"title=\"{e(cell_tooltip(board, cell, c))}\">{fmt(cell.value)}"
                     f"<span class=\"ci\">{e(_ci(cell.ci))}</span>{e(mark)}</td>")
        p.append("</tr>")
    p.append("</tbody></table>")
    p.append("<h2>Metrics</h2><dl class=\"metrics\">")
    for c in board.columns:
        p.append(f"<dt>{e(c.label)}</dt><dd>{e(c.description or c.metric)} "
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
        p += [f"<p><img src=\"{e(src)}\" alt=\"{e(src)}\" style=\"max-width:100%\"></p>"
              for src in plots]
    p.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(p) + "\n"
