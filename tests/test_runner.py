"""The runner end to end: records, resume after SIGKILL, re-scoring, adapters."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalkit.backends.scripted import ScriptedBackend
from evalkit.records import read_sample_records, read_summaries
from evalkit.runner import RunConfig, rescore_run, run

TASK = "flores:eng_Latn-nob_Latn"


def _scripted(monkeypatch: pytest.MonkeyPatch, backend: ScriptedBackend) -> None:
    monkeypatch.setattr("evalkit.runner.make_backend", lambda *a, **k: backend)


def test_scripted_run_writes_records_and_resumes(tiny_model: Path, tmp_path: Path,
                                                 data_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    backend = ScriptedBackend(default="Katten satt på matta.\nextra line")
    _scripted(monkeypatch, backend)
    cfg = RunConfig(model=str(tiny_model), tasks=[TASK], limit=6, out=tmp_path,
                    backend="scripted", update_leaderboards=False)
    (summary,) = run(cfg)
    assert backend.calls == 6
    assert summary.task == f"{TASK}:devtest" and summary.n_samples == 6
    assert set(summary.metrics) >= {"bleu", "chrf", "chrf++", "target_lang_rate"}
    assert summary.metrics["bleu"]["signature"].startswith("nrefs:1|case:mixed")
    assert summary.data_hashes and summary.versions["evalkit"]
    run_dir = next(p for p in tmp_path.iterdir() if (p / "summary.jsonl").exists())
    recs = read_sample_records(run_dir, summary.task)
    assert [r.outputs[0]["texts"][0] for r in recs] == ["Katten satt på matta."] * 6  # stop "\n"
    assert recs[0].prompts[0].endswith("Norwegian Bokmål sentence:")
    # second run: everything comes from the store
    (again,) = run(cfg)
    assert backend.calls == 6
    assert again.metrics == summary.metrics
    # re-scoring from records alone gives the same numbers
    (rescored,) = rescore_run(run_dir)
    assert rescored.metrics == summary.metrics
    assert len(read_summaries(run_dir)) == 1


def test_empty_generations_are_scored(tiny_model: Path, tmp_path: Path, data_dir: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _scripted(monkeypatch, ScriptedBackend(default=""))
    (s,) = run(RunConfig(model=str(tiny_model), tasks=[TASK], limit=4, out=tmp_path,
                         backend="scripted", update_leaderboards=False))
    assert s.metrics["bleu"]["value"] == 0.0
    assert s.metrics["empty_rate"]["value"] == 1.0


def _gen_lines(out: Path) -> list[dict]:
    p = out / "cache" / "generations.jsonl"
    if not p.exists():
        return []
    rows = []
    for line in p.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return rows


def _cli(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "evalkit.cli", "run", *args]


def test_sigkill_resume_regenerates_nothing_and_matches(tiny_model: Path, tmp_path: Path,
                                                        data_dir: Path) -> None:
    args = [str(tiny_model), "--tasks", TASK, "--limit", "16", "--batch-size", "1",
            "--max-new-tokens", "48", "--no-leaderboard", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli([*args, "--out", str(killed)]), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.time() + 300
    while len(_gen_lines(killed)) < 5:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "run did not start generating"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {r["key"] for r in _gen_lines(killed)}
    assert 5 <= len(finished) < 16
    res = subprocess.run(_cli([*args, "--out", str(killed)]), env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = _gen_lines(killed)
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) == 16  # nothing finished was generated twice
    resumed = json.loads(res.stdout.strip().splitlines()[-1])
    fresh_dir = tmp_path / "fresh"
    res2 = subprocess.run(_cli([*args, "--out", str(fresh_dir)]), env=env, capture_output=True,
                          text=True, timeout=600)
    assert res2.returncode == 0, res2.stderr[-2000:]
    fresh = json.loads(res2.stdout.strip().splitlines()[-1])
    assert resumed["metrics"] == fresh["metrics"]
    assert {r["key"]: r["output"] for r in rows} == \
        {r["key"]: r["output"] for r in _gen_lines(fresh_dir)}


def test_adapter_changes_output_and_is_recorded(tiny_model: Path, tiny_adapter: Path,
                                                tmp_path: Path, data_dir: Path) -> None:
    cfg = RunConfig(model=str(tiny_model), tasks=[TASK], adapters=[str(tiny_adapter)], limit=4,
                    out=tmp_path, max_new_tokens=16, update_leaderboards=False)
    base, lora = run(cfg)
    assert base.adapter is None and lora.adapter == str(tiny_adapter)
    assert lora.adapter_hash and lora.model_hash == base.model_hash
    dirs = {p.name: p for p in tmp_path.iterdir() if (p / "summary.jsonl").exists()}
    assert len(dirs) == 2
    outs = {}
    for name, d in dirs.items():
        recs = read_sample_records(d, base.task)
        outs[name] = [r.outputs[0]["texts"][0] for r in recs]
    a, b = outs.values()
    assert a != b
    # merged adapter gives the adapter's outputs (up to float noise) as its own variant
    merged = run(RunConfig(model=str(tiny_model), tasks=[TASK], adapters=[str(tiny_adapter)],
                           merge_adapter=True, limit=4, out=tmp_path, max_new_tokens=16,
                           update_leaderboards=False))
    assert len(merged) == 1 and merged[0].adapter == str(tiny_adapter)


def test_adapter_check_recorded(tiny_model: Path, tiny_adapter: Path, tmp_path: Path,
                                data_dir: Path) -> None:
    base, lora = run(RunConfig(model=str(tiny_model), tasks=[TASK], adapters=[str(tiny_adapter)],
                               limit=3, out=tmp_path, max_new_tokens=8,
                               update_leaderboards=False))
    assert "adapter_check" not in base.meta
    check = lora.meta["adapter_check"]
    assert check["compared"] == 3 and check["changed"] >= 1 and check["warning"] is None
