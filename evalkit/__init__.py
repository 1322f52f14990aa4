"""evalkit: evaluation and oracle-driven preference training for low-resource-language LLMs."""

import os as _os

__version__ = "0.1.0"

# Every entry point (the CLI, `python -m evalkit.…`, notebooks importing evalkit before torch)
# passes through here before torch is imported. On a shared, oversubscribed CPU, spinning
# OpenMP workers make 2 torch threads 4-5x slower than passive ones (measured at load ~15:
# the embedded model's training collapsed). A value the user set is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
