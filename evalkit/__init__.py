"""evalkit: evaluate LLM checkpoints and adapters for low-resource languages.

``evalkit.evaluate(...)`` is the Python API (see `evalkit.api`); it is imported on first use so
``import evalkit`` stays instant.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "evaluate"]


def __getattr__(name: str) -> Any:
    if name in ("evaluate", "Results"):
        from evalkit import api

        return getattr(api, name)
    raise AttributeError(f"module 'evalkit' has no attribute {name!r}")
