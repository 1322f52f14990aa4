"""evalkit: evaluate LLM checkpoints and adapters for low-resource languages.

``evalkit.evaluate(...)`` is the Python API (see `evalkit.api`); it is imported on first use so
``import evalkit`` stays instant.
"""

from __future__ import annotations

import os as _os
from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "evaluate"]

# Every entry point (the CLI, `python -m evalkit.…`, notebooks importing evalkit before torch)
# passes through here before torch is imported. On a shared, oversubscribed CPU, spinning
# OpenMP workers make 2 torch threads 4-5x slower than passive ones (measured at load ~15:
# the embedded model's training collapsed). A value the user set is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def __getattr__(name: str) -> Any:
    if name in ("evaluate", "Results"):
        from evalkit import api

        return getattr(api, name)
    raise AttributeError(f"module 'evalkit' has no attribute {name!r}")
