"""Plots (matplotlib, Agg backend, imported only here): per-metric bars with 95 % CI whiskers
and baseline-vs-variant deltas with their paired-bootstrap CIs, each as PNG and SVG."""

from __future__ import annotations

import re
from pathlib import Path

from evalkit.leaderboard.board import Board


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", s).strip("_") or "metric"


def write_plots(board: Board, out_dir: Path) -> list[Path]:
    """Write `metrics.{png,svg}` (a panel per metric) and `deltas.{png,svg}`; returns them."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np

    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    rows = board.rows
    metrics: dict[str, list] = {}
    for c in board.columns:
        metrics.setdefault(c.metric, []).append(c)
    if metrics:
        # one figure, one panel per metric: each savefig costs ~0.3 s on 2 shared cores,
        # so panels are far cheaper than a file per metric
        ncols = min(2, len(metrics))
        nrows = -(-len(metrics) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(6.0 * ncols, 3.2 * nrows),
                                 squeeze=False)
        width = 0.8 / max(1, len(rows))
        for ax, (metric, cols) in zip(axes.flat, metrics.items()):
            x = np.arange(len(cols))
            for i, r in enumerate(rows):
                vals, lo, hi = [], [], []
                for c in cols:
                    cell = board.cell(r, c)
                    v = cell.value if cell.value is not None else np.nan
                    vals.append(v)
                    lo.append(v - cell.ci[0] if cell.ci else 0.0)
                    hi.append(cell.ci[1] - v if cell.ci else 0.0)
                ax.bar(x + (i - (len(rows) - 1) / 2) * width, vals, width, label=r.label,
                       yerr=[lo, hi], capsize=3)
            ax.set_xticks(x, [c.label.rsplit(" ", 1)[0] for c in cols], fontsize=7)
            arrow = "" if cols[0].higher_is_better else " (lower is better)"
            ax.set_title(f"{metric}{arrow}, 95% CI", fontsize=9)
        for ax in list(axes.flat)[len(metrics):]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=7, loc="lower left")
        fig.suptitle(board.config.title or board.config.name, fontsize=10)
        fig.subplots_adjust(hspace=0.45, wspace=0.2, left=0.06, right=0.98, top=0.9)
        files += _save(fig, out_dir / "metrics")
        plt.close(fig)
    pairs = [(r, board.baselines[r.key]) for r in rows if board.baselines.get(r.key)]
    if pairs:
        cols = [c for c in board.columns
                if any(board.cell(r, c).delta is not None for r, _ in pairs)]
        if cols:
            fig, ax = plt.subplots(figsize=(7, 0.35 * len(cols) * len(pairs) + 1.5))
            y = 0
            labels = []
            for r, base in pairs:
                for c in cols:
                    cell = board.cell(r, c)
                    if cell.delta is None:
                        continue
                    d = cell.delta if c.higher_is_better else -cell.delta  # right = better
                    err = None
                    if cell.delta_ci:
                        lo, hi = sorted(v if c.higher_is_better else -v for v in cell.delta_ci)
                        err = [[max(0.0, d - lo)], [max(0.0, hi - d)]]
                    color = {"better": "#0a7a2f", "worse": "#b3261e"}.get(cell.verdict or "",
                                                                          "#9e9e9e")
                    ax.barh(y, d, xerr=err, color=color, capsize=3)
                    labels.append(f"{r.label} vs {board.row(base).label}: {c.label}")
                    y += 1
            ax.axvline(0, color="black", lw=0.8)
            ax.set_yticks(range(len(labels)), labels, fontsize=7)
            ax.invert_yaxis()
            ax.set_xlabel("Δ vs baseline (right = better; green/red = significant)")
            ax.set_title("Deltas vs baseline (95% paired bootstrap CI)")
            fig.subplots_adjust(left=0.45, right=0.97)
            files += _save(fig, out_dir / "deltas")
            plt.close(fig)
    return files


def _save(fig, stem: Path) -> list[Path]:  # noqa: ANN001
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
