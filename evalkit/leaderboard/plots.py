"""Plots (matplotlib, Agg backend, imported only here): values with 95 % CI whiskers and
baseline-vs-variant deltas with their paired-bootstrap CIs, each as PNG and SVG.

One axis per metric scale: sacrebleu scores (0–100 points) never share an axis with rates
(0–1), and any other metric gets its own panel. Columns without a single value (tasks not run
yet) are left out, so there are no empty panels; labels are wrapped and the layout is
constrained, so nothing is clipped. A ● above a bar (or beside a delta) marks a difference from
the row's baseline that is significant after the board's correction, in the legend's colours.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

from evalkit.leaderboard.board import Board, Column

GOOD, BAD, NEUTRAL = "#0a7a2f", "#b3261e", "#9e9e9e"
POINTS = frozenset({"bleu", "chrf", "chrf++", "spbleu"})


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", s).strip("_") or "metric"


def _scale(board: Board, col: Column) -> tuple[str, str]:
    """(key, axis label) of a column's scale: sacrebleu scores share one 0–100 axis, shares
    (declared proportions and ratios) one 0–1 axis, percentages the 0–100 axis; any other
    metric gets its own. Columns without a declaration are placed by their values."""
    if col.metric.split(":", 1)[0] in POINTS:
        return "points", "score (0–100)"
    if col.kind is not None:
        scale = col.scale or 1.0
        if col.kind in ("proportion", "ratio") and scale in (1.0, 100.0):
            return ("rate", "share (0–1)") if scale == 1.0 else ("points", "score (0–100)")
        return f"own:{col.metric}", col.metric_label or col.metric
    vals: list[float] = []
    for r in board.rows:
        c = board.cell(r, col)
        vals += [v for v in (c.value, *(c.ci or ())) if v is not None]
    if vals and all(0.0 <= v <= 1.0 for v in vals):
        return "rate", "share (0–1)"
    return f"own:{col.metric}", col.metric_label or col.metric


def _groups(board: Board, cols: list[Column]) -> list[tuple[str, str, list[Column]]]:
    out: dict[str, tuple[str, list[Column]]] = {}
    for c in cols:
        key, label = _scale(board, c)
        out.setdefault(key, (label, []))[1].append(c)
    order = {"points": 0, "rate": 1}
    return [(k, lab, cs) for k, (lab, cs) in sorted(out.items(),
                                                   key=lambda kv: (order.get(kv[0], 2), kv[0]))]


def _tick(c: Column) -> str:
    task = textwrap.fill(c.task_label or c.task, 16)
    metric = textwrap.fill((c.metric_label or c.metric)
                           + ("" if c.higher_is_better else " ↓"), 16)
    return f"{task}\n{metric}"


def write_plots(board: Board, out_dir: Path) -> list[Path]:
    """Write `metrics.{png,svg}` (a panel per metric scale) and `deltas.{png,svg}`."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    cols = [c for c in board.columns if any(board.cell(r, c).value is not None
                                            for r in board.rows)]
    groups = _groups(board, cols)
    if groups:
        fig = _metrics_figure(plt, board, groups)
        files += _save(fig, out_dir / "metrics")
        plt.close(fig)
    pairs = [r for r in board.rows if board.baselines.get(r.key)]
    dcols = [c for c in cols if any(board.cell(r, c).delta is not None for r in pairs)]
    if pairs and dcols:
        fig = _deltas_figure(plt, board, pairs, _groups(board, dcols))
        files += _save(fig, out_dir / "deltas")
        plt.close(fig)
    return files


def _metrics_figure(plt: Any, board: Board, groups: list[tuple[str, str, list[Column]]]) -> Any:
    import numpy as np

    rows = board.rows
    widest = max(len(cs) for _, _, cs in groups)
    width = min(16.0, max(6.5, 1.1 + widest * (0.35 + 0.22 * len(rows))))
    heights = [3.0] * len(groups)
    fig, axes = plt.subplots(len(groups), 1, figsize=(width, sum(heights) + 1.2),
                             squeeze=False, layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    bar_w = 0.8 / max(1, len(rows))
    for ax, (key, label, cs) in zip(axes[:, 0], groups):
        x = np.arange(len(cs))
        top = 0.0
        for i, r in enumerate(rows):
            xs = x + (i - (len(rows) - 1) / 2) * bar_w
            vals, lo, hi = [], [], []
            for c in cs:
                cell = board.cell(r, c)
                v = cell.value if cell.value is not None else np.nan
                vals.append(v)
                lo.append(max(0.0, v - cell.ci[0]) if cell.ci else 0.0)
                hi.append(max(0.0, cell.ci[1] - v) if cell.ci else 0.0)
                if cell.value is not None:
                    top = max(top, (cell.ci[1] if cell.ci else v))
            ax.bar(xs, vals, bar_w, yerr=[lo, hi], capsize=2, color=colors[i % len(colors)],
                   label=r.label, error_kw={"elinewidth": 0.8})
            for xi, c, v, h in zip(xs, cs, vals, hi):
                cell = board.cell(r, c)
                if cell.verdict in ("better", "worse") and not np.isnan(v):
                    ax.annotate("●", (xi, v + h), xytext=(0, 2), textcoords="offset points",
                                ha="center", va="bottom", fontsize=8,
                                color=GOOD if cell.verdict == "better" else BAD)
        if key == "rate":
            ax.set_ylim(0, 1.12)
        elif key == "points":
            ax.set_ylim(0, min(100.0, top * 1.15) if top > 0 else 1)
        else:
            ax.margins(y=0.15)
        ax.set_xticks(x, [_tick(c) for c in cs], fontsize=7.5)
        ax.set_ylabel(label, fontsize=8.5)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", lw=0.4, alpha=0.5)
        ax.set_axisbelow(True)
        ax.set_xlim(-0.6, len(cs) - 0.4)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    from matplotlib.lines import Line2D

    handles += [Line2D([], [], ls="", marker="o", color=GOOD, markersize=5),
                Line2D([], [], ls="", marker="o", color=BAD, markersize=5)]
    labels += ["significantly better than the baseline (after correction)",
               "significantly worse"]
    fig.legend(handles, labels, loc="outside lower center", ncol=min(3, len(labels)),
               fontsize=8, frameon=False)
    fig.suptitle(f"{board.config.title or board.config.name} — 95% CI", fontsize=10)
    return fig


def _deltas_figure(plt: Any, board: Board, pairs: list[Any],
                   groups: list[tuple[str, str, list[Column]]]) -> Any:

    counts = [sum(1 for r in pairs for c in cs if board.cell(r, c).delta is not None)
              for _, _, cs in groups]
    # name the baseline in each label only when the rows do not share one
    one_base = len({board.baselines[r.key] for r in pairs}) == 1
    fig, axes = plt.subplots(len(groups), 1, squeeze=False, layout="constrained",
                             figsize=(9.0, 0.28 * sum(counts) + 1.1 * len(groups) + 1.0),
                             height_ratios=[max(1, n) + 2 for n in counts])
    for ax, (_key, label, cs) in zip(axes[:, 0], groups):
        y, labels = 0, []
        for r in pairs:
            base = board.row(board.baselines[r.key])  # type: ignore[arg-type]
            for c in cs:
                cell = board.cell(r, c)
                if cell.delta is None:
                    continue
                d = cell.delta if c.higher_is_better else -cell.delta  # right = better
                err = None
                if cell.delta_ci:
                    lo, hi = sorted(v if c.higher_is_better else -v for v in cell.delta_ci)
                    err = [[max(0.0, d - lo)], [max(0.0, hi - d)]]
                color = {"better": GOOD, "worse": BAD}.get(cell.verdict or "", NEUTRAL)
                ax.barh(y, d, xerr=err, color=color, capsize=2, height=0.7,
                        error_kw={"elinewidth": 0.8})
                if cell.verdict in ("better", "worse"):
                    edge = (err[1][0] if d >= 0 else -err[0][0]) if err else 0.0
                    ax.annotate("●", (d + edge, y), xytext=(4 if d >= 0 else -4, 0),
                                textcoords="offset points", va="center",
                                ha="left" if d >= 0 else "right", fontsize=8, color=color)
                who = r.label if one_base else f"{r.label} vs {base.label}"
                labels.append(textwrap.fill(f"{who} · {c.task_label or c.task} · "
                                            f"{c.metric_label or c.metric}", 64))
                y += 1
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(range(len(labels)), labels, fontsize=7.5)
        ax.set_ylim(len(labels) - 0.4, -0.6)
        ax.margins(x=0.12)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", lw=0.4, alpha=0.5)
        ax.set_axisbelow(True)
        ax.set_xlabel(f"Δ vs baseline, {label} (right = better)", fontsize=8.5)
    base_label = board.row(board.baselines[pairs[0].key]).label  # type: ignore[arg-type]
    fig.suptitle(f"Δ vs {'baseline ' + base_label if one_base else 'each row’s baseline'}, 95% "
                 "paired-bootstrap CI\ngreen/red ● = significant after "
                 f"{'Holm correction' if board.config.correction == 'holm' else 'no correction'}"
                 "; grey = not significant", fontsize=9.5)
    return fig


def _save(fig: Any, stem: Path) -> list[Path]:
    """PNG and SVG, each written to a temporary name and renamed: a kill mid-write never
    leaves a truncated plot where the board links to it."""
    import os

    out = []
    for ext in ("png", "svg"):
        p = stem.with_suffix(f".{ext}")
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
        try:
            fig.savefig(tmp, format=ext, dpi=110) if ext == "png" else fig.savefig(tmp,
                                                                                  format=ext)
            tmp.replace(p)
        finally:
            if tmp.exists():
                tmp.unlink()
        out.append(p)
    return out
