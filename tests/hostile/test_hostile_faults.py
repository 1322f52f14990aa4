"""Faults and concurrency: kills at every stage leave every file whole; two runs on one
``--out`` generate nothing twice, do not crash and write the records a single run writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hostile_harness import FLORES, Env

from evalkit.records import RunSummary, SampleRecord


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "evalkit.cli", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _store(out: Path) -> list[dict]:
    p = out / "cache" / "generations.jsonl"
    return [json.loads(x) for x in p.read_text().splitlines() if x.strip()] if p.exists() else []


def assert_whole(root: Path) -> None:
    """Every file a reader would open parses completely (temporary files aside)."""
    for p in root.rglob("*"):
        if not p.is_file() or p.name.startswith(".") or p.suffix == ".lock":
            continue
        data = p.read_bytes()
        if p.suffix == ".jsonl":
            lines = data.decode("utf-8").splitlines()
            for line in lines:
                if not line.strip():
                    continue
                obj = json.loads(line)  # raises on a torn line
                if p.name == "summary.jsonl":
                    RunSummary.model_validate(obj)
                elif p.parent.name == "samples":
                    SampleRecord.model_validate(obj)
        elif p.suffix == ".json":
            json.loads(data)
        elif p.suffix == ".svg":
            ET.fromstring(data)
        elif p.suffix == ".png":
            assert data.startswith(b"\x89PNG") and data.rstrip().endswith(b"IEND\xaeB`\x82"), p
        elif p.suffix in (".md", ".csv", ".html"):
            data.decode("utf-8")
            if p.suffix == ".html":
                assert data.rstrip().endswith(b"</html>"), p


def _summaries_by_task(out: Path) -> dict[str, dict]:
    from evalkit.records import read_summaries

    return {f"{d.name}|{s.task}": s.metrics for d in out.iterdir()
            if (d / "summary.jsonl").exists() for s in read_summaries(d)}


def test_two_concurrent_runs_on_one_out(env: Env, tmp_path: Path) -> None:
    out = tmp_path / "shared"
    args = ["run", str(env.model), "-t", FLORES, "--limit", "12", "--max-new-tokens", "16",
            "--adapter", str(env.adapter), "--out", str(out), "--json"]
    procs = [subprocess.Popen(_cmd(*args), env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=900) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0 and "Traceback" not in err, err[-2000:]
    keys = [r["key"] for r in _store(out)]
    assert len(keys) == len(set(keys)) == 24  # 12 samples × (base + adapter), each once
    assert any("waiting for it to finish" in err for _, err in results)
    assert_whole(out)
    fresh = tmp_path / "fresh"
    res = subprocess.run(_cmd(*args[:-3], "--out", str(fresh), "--json"), env=_env(),
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    assert _summaries_by_task(out) == _summaries_by_task(fresh)
    a = [json.loads(x)["metrics"] for x in results[0][0].splitlines() if x.startswith("{")]
    b = [json.loads(x)["metrics"] for x in results[1][0].splitlines() if x.startswith("{")]
    assert a == b


def _kill_at(args: list[str], cond: object, timeout: float = 600) -> None:
    proc = subprocess.Popen(_cmd(*args), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + timeout
    while not cond():  # type: ignore[operator]
        if proc.poll() is not None:
            return  # finished before the kill: nothing to test in this round
        assert time.time() < deadline
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_kills_during_generation_and_scoring_leave_files_whole(env: Env, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["run", str(env.model), "-t", "nb_parse:30", "-o", "oracles=spacy-nob",
            "--max-new-tokens", "40", "--batch-size", "6", "--out", str(out), "--json",
            "--no-leaderboard"]
    _kill_at(args, lambda: len(_store(out)) >= 10)  # mid-generation
    assert_whole(out)
    n = len(_store(out))
    assert 10 <= n < 90
    # then during scoring: every generation stored, the parser oracle still judging
    _kill_at(args, lambda: len(_store(out)) >= 90 and time.sleep(1.0) is None)
    assert_whole(out)
    res = subprocess.run(_cmd(*args), env=_env(), capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    assert_whole(out)
    keys = [r["key"] for r in _store(out)]
    assert len(keys) == len(set(keys)) == 90


@pytest.mark.parametrize("delay", [0.3, 0.8, 1.5, 2.5, 4.0])
def test_kills_during_board_writing_leave_files_whole(env: Env, tmp_path: Path,
                                                      delay: float) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(env.good_run, run)
    proc = subprocess.Popen(_cmd("leaderboard", str(run)), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    time.sleep(delay)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert_whole(run)
    res = subprocess.run(_cmd("leaderboard", str(run)), env=_env(), capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert_whole(run)


def test_torn_summary_line_is_repaired_on_the_next_run(env: Env, tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "out"
    shutil.copytree(env.good_run, out)
    variant = next(d for d in out.iterdir() if (d / "summary.jsonl").exists()
                   and "+" not in d.name)
    p = variant / "summary.jsonl"
    p.write_text(p.read_text() + '{"schema_version": 2, "run_id": "torn')  # killed mid-append
    res = subprocess.run(_cmd("run", str(env.model), "-t", FLORES, "--limit", "4",
                              "--max-new-tokens", "6", "--out", str(out), "--json"),
                         env=_env(), capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "unreadable summary line" in res.stderr
    lines = p.read_text().splitlines()
    assert lines[-2].startswith('{"schema_version": 2, "run_id": "torn')
    json.loads(lines[-1])  # the new summary is whole, on its own line
    res = subprocess.run(_cmd("leaderboard", str(out)), env=_env(), capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
