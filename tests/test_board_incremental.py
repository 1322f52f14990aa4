"""The per-run board refresh is incremental and gives the full rebuild's board, through the CLI.

Runs use the hf backend on the tiny random model and LoRA adapters (tests/conftest.py): run 1
evaluates the base model and adapter A, run 2 adds adapter B to the same ``--out``. The board
`evalkit run` refreshed from its statistics cache must equal, cell for cell, a full rebuild
(`evalkit leaderboard --out` into a fresh folder, no cache). Re-running a variant with other
outputs must invalidate what was cached for it (the cache is keyed by content, not names), and
torn cache files are recomputed, never trusted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TASK = "flores:eng_Latn-eus_Latn:devtest"
RUN = ["-t", TASK, "--limit", "6", "--backend", "hf", "--device", "cpu", "--dtype", "float32",
       "--chat-template", "off", "--json"]


def _evalkit(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "EVALKIT_LEADERBOARDS"}
    env["OMP_NUM_THREADS"] = "1"
    res = subprocess.run([sys.executable, "-m", "evalkit.cli", *args], capture_output=True,
                         text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def _stats(board_dir: Path) -> dict:
    """What a board computes: columns, rows with baselines and rank scores, every cell."""
    doc = json.loads((board_dir / "board.json").read_text(encoding="utf-8"))
    return {"columns": doc["columns"],
            "rows": [{k: r[k] for k in ("variant", "label", "baseline", "rank_score", "rank_ci")}
                     for r in doc["rows"]],
            "cells": sorted(doc["cells"], key=lambda c: (c["variant"], c["column"])),
            "mismatches": doc["mismatches"]}


def _full_rebuild(out: Path, target: Path) -> dict:
    _evalkit("leaderboard", str(out), "-c", "basque", "--out", str(target), "--no-plots")
    return _stats(target)


def _cache_files(board_dir: Path) -> set[str]:
    return {p.name for p in (board_dir / ".cache").iterdir()}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path, tiny_adapter: Path
             ) -> tuple[Path, set[str]]:
    """Run 1: base + adapter A; run 2: adapter B only, into the same folder (boards on)."""
    from evalkit.testing import build_tiny_adapter

    second = build_tiny_adapter(tiny_model, tmp_path_factory.mktemp("adapters") / "lora-b",
                                seed=7)
    out = tmp_path_factory.mktemp("runs")
    _evalkit("run", str(tiny_model), "-a", f"A={tiny_adapter}", "--max-new-tokens", "6",
             "--out", str(out), *RUN)
    first = _cache_files(out / "leaderboards" / "basque")
    _evalkit("run", str(tiny_model), "-a", f"B={second}", "--no-base", "--max-new-tokens", "6",
             "--out", str(out), *RUN)
    return out, first


def test_incremental_refresh_equals_full_rebuild(two_runs: tuple[Path, set[str]],
                                                 tmp_path: Path) -> None:
    out, first = two_runs
    board = out / "leaderboards" / "basque"
    got = _stats(board)
    assert len(got["rows"]) == 3
    tested = [c for c in got["cells"] if c["p_value"] is not None]
    assert len(tested) >= 4 and all(c["delta_ci"] for c in tested)  # A and B vs the base
    assert all(r["rank_ci"] for r in got["rows"])
    # run 2 reused run 1's statistics (base and A unchanged) and added B's
    now = _cache_files(board)
    assert first & now and now - first
    assert got == _full_rebuild(out, tmp_path / "fresh")


def test_plots_are_drawn_on_demand(two_runs: tuple[Path, set[str]], tmp_path: Path) -> None:
    out, _ = two_runs
    board = tmp_path / "runs" / "leaderboards" / "basque"
    shutil.copytree(out, tmp_path / "runs")
    html = (board / "index.html").read_text(encoding="utf-8")
    assert not (board / "plots" / "metrics.svg").exists() and "plots/" not in html
    assert "evalkit leaderboard RUN_DIR -c basque" in html  # says how to draw them
    _evalkit("leaderboard", str(tmp_path / "runs"), "-c", "basque")
    html = (board / "index.html").read_text(encoding="utf-8")
    for name in ("metrics.svg", "metrics.png", "deltas.svg", "deltas.png"):
        assert (board / "plots" / name).is_file(), name
    assert 'src="plots/metrics.svg"' in html and 'src="plots/deltas.svg"' in html


def test_changed_records_invalidate_cached_statistics(two_runs: tuple[Path, set[str]],
                                                      tiny_model: Path, tiny_adapter: Path,
                                                      tmp_path: Path) -> None:
    """Same variants, same names, other outputs: nothing cached for them may be reused."""
    out = tmp_path / "runs"
    shutil.copytree(two_runs[0], out)
    board = out / "leaderboards" / "basque"
    before = _stats(board)
    _evalkit("run", str(tiny_model), "-a", f"A={tiny_adapter}", "--max-new-tokens", "3",
             "--out", str(out), *RUN)
    after = _stats(board)
    # the re-run changed what the cache holds for these rows: a stale entry would show
    changed = [c for c in after["cells"] if c["p_value"] is not None and c not in before["cells"]]
    assert changed
    assert after == _full_rebuild(out, tmp_path / "fresh")


def test_torn_cache_files_are_recomputed(two_runs: tuple[Path, set[str]], tmp_path: Path
                                         ) -> None:
    out = tmp_path / "runs"
    shutil.copytree(two_runs[0], out)
    cache = out / "leaderboards" / "basque" / ".cache"
    files = sorted(cache.iterdir())
    assert files
    for i, p in enumerate(files):
        data = p.read_bytes()
        if i % 3 == 0:  # torn
            p.write_bytes(data[: len(data) // 2])
        elif i % 3 == 1:  # another entry's content under this name
            p.write_bytes(files[(i + 1) % len(files)].read_bytes() if len(files) > 1 else b"")
        else:  # garbage
            p.write_bytes(b"not an npz")
    _evalkit("leaderboard", str(out), "-c", "basque", "--no-plots")
    assert _stats(out / "leaderboards" / "basque") == _full_rebuild(out, tmp_path / "fresh")


def test_cache_entries_verify_their_content(tmp_path: Path) -> None:
    import numpy as np

    from evalkit.leaderboard.cache import StatsCache, digest

    cache = StatsCache(tmp_path)
    reps = np.random.default_rng(0).standard_normal(1000)
    key, other = digest(("a", reps)), digest(("b", reps))
    assert key != other and digest(("ab", "c")) != digest(("a", "bc"))
    cache.put("reps", key, {"reps": reps, "method": "x", "p": float("nan")})
    got = cache.get("reps", key)
    assert got is not None and np.array_equal(got["reps"], reps) and got["method"] == "x"
    assert np.isnan(got["p"])
    (path,) = tmp_path.iterdir()
    data = path.read_bytes()
    for bad in (data[:-1], data[: len(data) // 2], data[:-8] + b"\0" * 8, b""):
        path.write_bytes(bad)
        assert cache.get("reps", key) is None
    # a whole entry under another entry's name is not trusted either
    path.write_bytes(data)
    path.rename(tmp_path / path.name.replace(key, other))
    assert cache.get("reps", other) is None
