"""Helpers shared by the log-likelihood tasks (``ppl``, ``scala``, ``bl2mp``)."""

from __future__ import annotations

from collections.abc import Sequence

from evalkit.errors import BadInput
from evalkit.types import LoglikResult, Output


def loglik_output(outs: Sequence[Output], k: int) -> LoglikResult:
    """The `k`-th output of a sample, which must be a log-likelihood result."""
    o = outs[k] if k < len(outs) else None
    if not isinstance(o, LoglikResult):
        raise BadInput(f"expected a log-likelihood output at position {k}, got "
                       f"{type(o).__name__}; re-run the task (stale or foreign records?)")
    return o


def pair_wins(good: Sequence[float], bad: Sequence[float]) -> list[float]:
    """1.0 where good > bad strictly, else 0.0 (ties lose)."""
    return [float(g > b) for g, b in zip(good, bad)]


def check_name(name: str, family: str, lang: str) -> None:
    """Raise unless `name` is exactly ``<family>:<lang>``."""
    parts = name.split(":")
    if len(parts) != 2 or parts[1] != lang:
        raise BadInput(f"task {name!r}: only {family}:{lang} exists")
