"""IFEval's checkers load without lm-eval's task manager (``lm_eval/tasks/__init__.py`` and the
``datasets`` import it pulls in), score exactly as when that package is loaded, and leave it
importable for lm-eval itself afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")

CODE = """
import json, sys
if sys.argv[1] == "package-first":
    import lm_eval.tasks  # noqa: F401 - the real package, as the lm-eval bridge loads it
from evalkit.data import DataLayer
from evalkit.runner import load_task
from evalkit.types import Generation, ScoringContext
task = load_task("ifeval:en")
items = task.samples(DataLayer(sys.argv[2]))[:150]
# each prompt's own text and a plain reply as responses: both verdicts occur
outs = [[Generation((s.data["prompt"],))] if i % 2 else
        [Generation(("Sure, here it is. The answer is yes, in english.",))]
        for i, s in enumerate(items)]
scored = task.score(items, outs, ScoringContext(seed=0))
loaded = sorted(m for m in ("datasets", "lm_eval.tasks") if m in sys.modules)
rows = [[r["inst_level_strict_acc"], r["inst_level_loose_acc"]] for r in scored.per_sample]
from lm_eval.tasks import TaskManager  # lm-eval's own package still loads, whole
from lm_eval.tasks.ifeval import instructions_registry
ids = sorted(instructions_registry.INSTRUCTION_DICT)
print(json.dumps({"loaded": loaded, "rows": rows, "ids": ids, "manager": TaskManager.__name__}))
"""


def test_checkers_skip_the_task_manager_and_score_the_same(data_dir: Path) -> None:
    got = {}
    for mode in ("fresh", "package-first"):
        env = {**os.environ, "PYTHONHASHSEED": "0"}  # langdetect's verdicts hash strings
        res = subprocess.run([sys.executable, "-c", CODE, mode, str(data_dir)],
                             capture_output=True, text=True, timeout=300, env=env)
        assert res.returncode == 0, res.stderr[-2000:]
        got[mode] = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["fresh"]["loaded"] == []
    assert got["package-first"]["loaded"] == ["datasets", "lm_eval.tasks"]
    assert got["fresh"]["rows"] == got["package-first"]["rows"]
    verdicts = [v for row in got["fresh"]["rows"] for part in row for v in part]
    assert True in verdicts and False in verdicts
    assert len(got["fresh"]["ids"]) == 25 and got["fresh"]["ids"] == got["package-first"]["ids"]
    assert got["fresh"]["manager"] == "TaskManager"
