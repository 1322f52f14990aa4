"""Printing results as tables (rich)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evalkit.records import RunSummary


def fmt_metric(m: dict[str, Any]) -> str:
    """``value [lo, hi]`` with sensible precision."""
    v = m.get("value")
    if v is None:
        return "n/a"
    digits = 2 if abs(v) >= 2 else 3
    s = f"{v:.{digits}f}"
    if m.get("ci"):
        lo, hi = m["ci"]
        s += f" [{lo:.{digits}f}, {hi:.{digits}f}]"
    return s


def print_table(summaries: Sequence[RunSummary]) -> None:
    """One row per (model variant, task, metric)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="evalkit results (95% CI)")
    for col in ("model", "task", "metric", "value"):
        table.add_column(col)
    for s in summaries:
        who = s.model + (f" + {s.adapter}" if s.adapter else "")
        for name, m in s.metrics.items():
            table.add_row(who, s.task, name + ("" if m.get("higher_is_better", True) else " ↓"),
                          fmt_metric(m))
    Console().print(table)


def print_metrics(task: str, metrics: dict[str, dict[str, Any]]) -> None:
    """Metrics of one task."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=task)
    table.add_column("metric")
    table.add_column("value")
    for name, m in metrics.items():
        table.add_row(name, fmt_metric(m))
    Console().print(table)
