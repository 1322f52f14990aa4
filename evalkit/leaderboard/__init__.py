"""Leaderboards built from run records only: Markdown, CSV, static HTML and plots.

Importing this package is cheap (the CLI imports it for `evalkit --help`); the real work lives in
`evalkit.leaderboard.build` and is imported on first use. See `build` for where configs and
outputs live.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evalkit.records import RunSummary

__all__ = ["build_board", "generate", "load_config", "update_for_run", "write_board"]


def update_for_run(out: Path, summaries: list[RunSummary]) -> list[Path]:
    """Rebuild every board the run's tasks belong to, under ``<out>/leaderboards/``."""
    from evalkit.leaderboard.build import update_for_run as _update

    return _update(out, summaries)


def __getattr__(name: str) -> Any:
    if name in ("generate", "write_board", "build_board", "load_config"):
        from evalkit.leaderboard import build

        return getattr(build, name)
    raise AttributeError(name)
