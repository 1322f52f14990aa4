"""Weight merging: DIPLomA, Merge-and-Conquer language vectors and task arithmetic, streamed.

``evalkit merge`` writes a loadable Hugging Face checkpoint from safetensors inputs without ever
loading a whole model (see `evalkit.merge.engine`); ``evalkit sweep`` merges several α, evaluates
each through the runner and feeds the leaderboards (`evalkit.merge.sweep`). Recipes are plain
data (`evalkit.merge.recipes`). Importing this package is cheap: torch loads on first merge.
"""

from __future__ import annotations

from typing import Any

from evalkit.merge.recipes import (
    RECIPES,
    MergeSpec,
    diploma,
    language_vector,
    parse_alphas,
    task_arithmetic,
)

__all__ = ["RECIPES", "MergeSpec", "diploma", "language_vector", "merge", "parse_alphas",
           "run_sweep", "task_arithmetic"]


def __getattr__(name: str) -> Any:
    if name == "merge":
        from evalkit.merge.engine import merge

        return merge
    if name == "run_sweep":
        from evalkit.merge.sweep import run_sweep

        return run_sweep
    raise AttributeError(name)
