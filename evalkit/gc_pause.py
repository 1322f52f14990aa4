"""One-time set-ups (importing torch, loading langdetect's profiles) without Python's cyclic
garbage collector.

Both create hundreds of thousands of objects that live as long as the process, and each
allocation burst triggers full (generation-2) collections that traverse everything alive:
five such collections took 0.29 s of a 10 s IFEval run of the embedded model
(BENCHMARKS.md). Inside :func:`paused` the collector is off; on leaving, everything alive is
frozen (``gc.freeze``: later collections skip it, nothing is freed earlier than it would be by
reference counting) and the collector is switched back on if it was on. Meant for a process's
first import of such a module only, so objects a caller makes later stay collectable.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Run the block with the cyclic collector off, then freeze what survived it."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was:
            gc.enable()


def import_torch():  # noqa: ANN201 - torch's module
    """``import torch``; the first import in a process runs under :func:`paused`."""
    import sys

    if "torch" not in sys.modules:
        with paused():
            import torch  # noqa: F401
    import torch

    return torch
