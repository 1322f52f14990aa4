"""Grids: many base models × adapters or merges × tasks × seeds, as units of work keyed by
content, run one after another or across a Ray cluster (`evalkit grid GRID.toml`).

`evalkit.grid.plan` reads a grid file into a `GridPlan`; `evalkit.grid.execute.run_grid` runs
it with an executor (`LocalExecutor`, or `evalkit.grid.ray_exec.RayExecutor`), skipping units
whose records are complete and building the leaderboards once. Importing this package is
cheap (no Ray, no torch).
"""

from __future__ import annotations

from typing import Any

__all__ = ["GridPlan", "LocalExecutor", "RayExecutor", "Unit", "plan_from_file", "run_grid"]


def __getattr__(name: str) -> Any:
    if name in ("GridPlan", "Unit"):
        from evalkit.grid import units

        return getattr(units, name)
    if name in ("LocalExecutor", "run_grid"):
        from evalkit.grid import execute

        return getattr(execute, name)
    if name == "RayExecutor":
        from evalkit.grid.ray_exec import RayExecutor

        return RayExecutor
    if name == "plan_from_file":
        from evalkit.grid.plan import plan_from_file

        return plan_from_file
    raise AttributeError(name)
