"""`evalkit.gc_pause`: the first torch import and langdetect's profile load run without
garbage collections, leave the collector on, and freeze what they created."""

from __future__ import annotations

import json
import subprocess
import sys

CODE = """
import gc, json, sys
full = []
gc.callbacks.append(lambda phase, info: phase == "stop" and info["generation"] == 2
                    and full.append(1))
from evalkit.gc_pause import import_torch
if sys.argv[1] == "paused":
    torch = import_torch()
else:
    import torch
during = len(full)
frozen = gc.get_freeze_count()
x = torch.ones(3)
from evalkit.tasks.ifeval_checks import _load_langdetect_profiles
before = len(full)
if sys.argv[1] == "paused":
    _load_langdetect_profiles()
else:
    from langdetect import detector_factory
    detector_factory.init_factory()
from langdetect import detect, DetectorFactory
DetectorFactory.seed = 0
print(json.dumps({"torch": during, "langdetect": len(full) - before, "frozen": frozen,
                  "enabled": gc.isenabled(), "lang": detect("Dette er en norsk setning om været."),
                  "sum": float(x.sum())}))
"""


def _run(mode: str) -> dict:
    res = subprocess.run([sys.executable, "-c", CODE, mode], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_first_imports_run_without_full_collections() -> None:
    plain, paused = _run("plain"), _run("paused")
    assert plain["torch"] >= 1 and plain["langdetect"] >= 1  # what the pause avoids
    assert paused["torch"] == 0 and paused["langdetect"] == 0
    assert paused["frozen"] > 100_000 and plain["frozen"] == 0
    assert paused["enabled"] and plain["enabled"]
    assert paused["lang"] == plain["lang"] == "no" and paused["sum"] == 3.0
