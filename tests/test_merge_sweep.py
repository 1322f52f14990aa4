"""`evalkit sweep` end to end: three α merged, evaluated on FLORES with the hf backend, a
leaderboard built from the records, merged weights removed afterwards; each α is a grid unit,
so rerunning the sweep does no work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit.records import read_summaries

pytest.importorskip("transformers")

TASK = "flores:eng_Latn-nob_Latn"


@pytest.fixture(scope="module")
def fam(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from evalkit.testing import build_tiny_model

    root = tmp_path_factory.mktemp("sweepfam")
    return {r: build_tiny_model(root / r, seed=s)
            for r, s in (("base", 0), ("cpt", 1), ("instruct", 2))}


def test_sweep_three_alphas_builds_leaderboard(fam: dict[str, Path], tmp_path: Path,
                                               data_dir: Path) -> None:
    out = tmp_path / "runs"
    cmd = [sys.executable, "-m", "evalkit.cli", "sweep", "diploma", "--base", str(fam["base"]),
           "--cpt", str(fam["cpt"]), "--instruct", str(fam["instruct"]),
           "--alpha", "0.5,1.0,1.5", "--tasks", TASK, "--limit", "2", "--max-new-tokens", "4",
           "--chat-template", "off", "--out", str(out), "--select", "chrf++"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "best by chrf++:" in proc.stdout
    report = json.loads((out / "sweeps" / "diploma.json").read_text())
    labels = [p["label"] for p in report["points"]]
    assert labels == ["diploma-a0.5", "diploma-a1", "diploma-a1.5"]
    for p in report["points"]:
        (task,) = p["metrics"]
        assert task.startswith(TASK) and "chrf++" in p["metrics"][task]
        assert p["merge"]["alpha"] == p["alpha"] and not p["kept"]
    # one set of inputs, three distinct merged models (different weights → different
    # hashes), weights cleaned up afterwards
    assert len({p["merge"]["inputs"]["cpt"]["hash"] for p in report["points"]}) == 1
    assert not (out / "merged").exists() or not any((out / "merged").iterdir())
    variant_dirs = [d for d in out.iterdir() if (d / "summary.jsonl").is_file()]
    assert len(variant_dirs) == 3
    model_hashes = {s.model_hash for d in variant_dirs for s in read_summaries(d)}
    assert len(model_hashes) == 3
    boards = list((out / "leaderboards").glob("*/board.json"))
    assert boards, "no leaderboard written"
    board = json.loads(boards[0].read_text())
    # a --limit sweep is marked partial on the board
    assert {r["label"].removesuffix(" (--limit 2)") for r in board["rows"]} >= set(labels)
    assert all("(--limit 2)" in r["label"] for r in board["rows"])
    assert (boards[0].parent / "board.md").is_file()
    # each α was a grid unit: a rerun skips them all (no merge, no generation, no summary)
    store = out / "cache" / "generations.jsonl"
    before = (store.read_bytes(), {d.name: (d / "summary.jsonl").read_bytes()
                                   for d in variant_dirs})
    assert len(list((out / "grid" / "units").glob("*.json"))) == 3
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (store.read_bytes(), {d.name: (d / "summary.jsonl").read_bytes()
                                 for d in variant_dirs}) == before
    assert not (out / "merged").exists() or not any((out / "merged").iterdir())
    rerun = json.loads((out / "sweeps" / "diploma.json").read_text())
    assert [(p["label"], p["metrics"], p["merge"]) for p in rerun["points"]] == [
        (p["label"], p["metrics"], p["merge"]) for p in report["points"]]
