"""SAGA's seven-column results table (the SAGA paper's layout), built from RunSummary records only.

Columns, in SAGA's order: PPL-Wiki (``ppl:nob`` perplexity, ↓), PS and parse score
(``nb_parse``), ScaLA AUROC (``scala:nob``), Summ PS and Summ score (``summ:nob``), RC APS
(``rc:nob``). One row per model variant (base first, then adapters in the order given). Rates
print as percentages like SAGA's cards; 95 % CIs follow in brackets where the record has one.
Missing cells print ``–``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from evalkit.records import RunSummary


@dataclass(frozen=True, slots=True)
class Column:
    """One column: where its value comes from and how it prints."""

    header: str
    task_prefix: str
    metrics: tuple[str, ...]  # first present wins (tolerates naming differences)
    percent: bool = False
    digits: int = 3


COLUMNS: tuple[Column, ...] = (
    Column("PPL-Wiki ↓", "ppl:nob", ("perplexity",), digits=1),
    # nb_parse reports one metric per oracle: SAGA's table uses the held-out evaluator (Stanza)
    Column("PS", "nb_parse", ("parse_success:stanza-nob", "parse_success", "parse_success:*"),
           percent=True),
    Column("parse score", "nb_parse", ("parse_score:stanza-nob", "parse_score",
                                       "parse_score:*")),
    Column("ScaLA AUROC", "scala:nob", ("auroc",)),
    Column("Summ PS", "summ:nob", ("parse_success", "ps"), percent=True),
    Column("Summ score", "summ:nob", ("parse_score",)),
    Column("RC APS", "rc:nob", ("aps",), percent=True),
)


def variant_label(s: RunSummary) -> str:
    """``base`` or the adapter's label (unique within its run; older records: the path's
    last part)."""
    if not s.adapter:
        return "base"
    return s.adapter_label or s.adapter.rstrip("/").rsplit("/", 1)[-1]


def _cell(m: dict[str, Any] | None, col: Column, with_ci: bool) -> str:
    if not m or m.get("value") is None:
        return "–"
    scale = 100.0 if col.percent else 1.0
    digits = 1 if col.percent else col.digits
    text = f"{m['value'] * scale:.{digits}f}" + ("%" if col.percent else "")
    if with_ci and m.get("ci"):
        lo, hi = m["ci"]
        text += f" [{lo * scale:.{digits}f}, {hi * scale:.{digits}f}]"
    return text


def _find(items: Sequence[RunSummary], col: Column) -> dict[str, Any] | None:
    for s in items:
        if s.task == col.task_prefix or s.task.startswith(col.task_prefix + ":") \
                or (col.task_prefix == "nb_parse" and s.task.startswith("nb_parse")):
            for name in col.metrics:
                if name.endswith(":*"):  # any oracle, first in record order
                    hit = next((k for k in s.metrics if k.startswith(name[:-1])), None)
                    if hit:
                        return s.metrics[hit]
                elif name in s.metrics:
                    return s.metrics[name]
    return None


def saga_rows(summaries: Sequence[RunSummary], with_ci: bool = True) -> list[list[str]]:
    """Table rows ``[variant, 7 cells]``; base first, then variants in first-seen order."""
    groups: dict[tuple[str, str | None], list[RunSummary]] = {}
    for s in summaries:  # by content: two adapters may share a name, never a hash
        groups.setdefault((s.model_hash, s.adapter_hash or s.adapter), []).append(s)
    keys = sorted(groups, key=lambda k: (k[1] is not None, list(groups).index(k)))
    rows = []
    for key in keys:
        items = groups[key]
        label = variant_label(items[0])
        if len({k[0] for k in groups}) > 1:
            label = f"{items[0].model} {label}"
        rows.append([label] + [_cell(_find(items, c), c, with_ci) for c in COLUMNS])
    return rows


def render_saga_table(summaries: Sequence[RunSummary], with_ci: bool = True) -> str:
    """The table as GitHub Markdown."""
    header = ["model"] + [c.header for c in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in saga_rows(summaries, with_ci)]
    return "\n".join(lines)


def print_saga_table(summaries: Sequence[RunSummary]) -> None:
    """Print the table with rich (one line per variant)."""
    import shutil

    from rich.console import Console
    from rich.table import Table

    table = Table(title="SAGA table (95% CI; PS/APS in %, PPL lower is better)",
                  title_justify="left")
    table.add_column("model", overflow="fold")
    for c in COLUMNS:
        table.add_column(c.header, overflow="fold")
    from rich.markup import escape

    for r in saga_rows(summaries):
        table.add_row(*map(escape, r))
    Console(width=max(120, shutil.get_terminal_size((160, 24)).columns)).print(table)
