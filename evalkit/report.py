"""Printing results as tables (rich)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evalkit.records import RunSummary


def digits(m: dict[str, Any]) -> int:
    """Decimals for a metric entry: from its declared kind and scale (a share: 3, a percentage:
    1), else from the value's magnitude (2 from 2 upwards, 3 below)."""
    v = m.get("value")
    if m.get("kind") in ("proportion", "ratio"):
        return 3 if (m.get("scale") or 1.0) == 1.0 else 1
    return 2 if v is not None and abs(v) >= 2 else 3


def fmt_metric(m: dict[str, Any]) -> str:
    """``value [lo, hi]`` with the precision `digits` gives."""
    v = m.get("value")
    if v is None:
        return "n/a"
    places = digits(m)
    s = f"{v:.{places}f}"
    if m.get("ci"):
        lo, hi = m["ci"]
        s += f" [{lo:.{places}f}, {hi:.{places}f}]"
    return s


def _console():  # noqa: ANN202
    import shutil

    from rich.console import Console

    return Console(width=max(100, shutil.get_terminal_size((120, 24)).columns))


def print_table(summaries: Sequence[RunSummary]) -> None:
    """One table per model variant; rows (task, metric), ↓ marks lower-is-better.

    Every name is printed literally: metric ids such as ``pair_accuracy[delete]`` look like
    rich markup and would otherwise vanish.
    """
    from rich.markup import escape
    from rich.table import Table

    console = _console()
    by_variant: dict[str, list[RunSummary]] = {}
    for s in summaries:
        who = s.model + (f" + adapter {s.adapter_label or s.adapter}" if s.adapter else "")
        if s.limit is not None:
            who += f"  [partial: --limit {s.limit}]"
        by_variant.setdefault(who, []).append(s)
    for who, items in by_variant.items():
        table = Table(title=escape(f"{who}  (95% CI)"), title_justify="left")
        for col in ("task", "metric", "value [95% CI]", "n"):
            table.add_column(col, overflow="fold")
        for s in items:
            for i, (name, m) in enumerate(s.metrics.items()):
                arrow = "" if m.get("higher_is_better", True) else " ↓"
                table.add_row(escape(s.task) if i == 0 else "", escape(name + arrow),
                              fmt_metric(m), str(m.get("n", "")))
        console.print(table)


def print_metrics(task: str, metrics: dict[str, dict[str, Any]]) -> None:
    """Metrics of one task."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(task))
    table.add_column("metric")
    table.add_column("value")
    for name, m in metrics.items():
        table.add_row(escape(name), fmt_metric(m))
    _console().print(table)


def to_markdown(summaries: Sequence[RunSummary]) -> str:
    """The results as GitHub Markdown that pastes into a paper or a wiki: one table (variant,
    task, metric, value, 95 % CI, n) under a line with the run's key settings."""

    def cell(text: object) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines: list[str] = []
    if summaries:
        s0 = summaries[0]
        chat = sorted({f"{s.task}: {'on' if s.chat_template.get('chat_applied') else 'off'}"
                       for s in summaries})
        gen = sorted({json_key(g) for s in summaries for g in s.gen_params})
        settings = [f"model `{s0.model}` ({s0.model_hash[:12]})", f"backend {s0.backend}",
                    f"seed {s0.seed}", "evalkit " + s0.versions.get("evalkit", "?")]
        if any(s.limit is not None for s in summaries):
            settings.append(f"**partial run: --limit {s0.limit}**")
        lines += ["Settings: " + ", ".join(settings) + ".",
                  "Chat template per task: " + "; ".join(chat) + ".",
                  "Generation: " + ("; ".join(gen) if gen else "log-likelihood only") + ".", ""]
    lines += ["| variant | task | metric | value | 95% CI | n |",
              "|---|---|---|---:|---|---:|"]
    for s in summaries:
        who = "base" if not s.adapter else (s.adapter_label or s.adapter)
        for name, m in s.metrics.items():
            v, d = m.get("value"), digits(m)
            value = "n/a" if v is None else f"{v:.{d}f}"
            ci = (f"[{m['ci'][0]:.{d}f}, {m['ci'][1]:.{d}f}]" if m.get("ci") else "")
            arrow = "" if m.get("higher_is_better", True) else " ↓"
            lines.append(f"| {cell(who)} | {cell(s.task)} | {cell(name + arrow)} | {value} | "
                         f"{ci} | {m.get('n', '')} |")
    return "\n".join(lines) + "\n"


def json_key(params: dict[str, Any]) -> str:
    """Generation parameters in one short line."""
    keep = ("max_new_tokens", "temperature", "top_p", "n", "seed")
    return ", ".join(f"{k}={params[k]}" for k in keep if params.get(k) is not None)
