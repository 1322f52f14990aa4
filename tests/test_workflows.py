"""Workflows as users chain them, through the CLI, on tiny models.

Each test compares the numbers of a chained workflow (several adapters in one run, two runs
into one ``--out``, an interrupted and resumed run, a re-score, a partial run on a board) with
those of each piece run alone in a fresh directory. Identities are content hashes: two
adapters that share a directory name must never be confused, the same weights reached by two
paths must share their cache.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalkit.records import read_sample_records

FLORES = "flores:eng_Latn-nob_Latn"
COMMON = ["--max-new-tokens", "12", "--no-leaderboard", "--json"]


def _evalkit(*args: str, timeout: int = 600, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "evalkit.cli", *args], capture_output=True,
                         text=True, timeout=timeout, env=env)
    if check:
        assert res.returncode == 0, res.stderr[-3000:]
    return res


def _summaries(res: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]


def _by_label(summaries: list[dict]) -> dict[str | None, dict]:
    return {s["adapter_label"]: s for s in summaries}


def _texts(out: Path, summary: dict) -> list[list[str]]:
    d = out / summary["run_id"].split("@", 1)[0]
    recs = sorted(read_sample_records(d, summary["task"]), key=lambda r: r.sample_id)
    return [[t for o in r.outputs for t in o["texts"]] for r in recs]


@pytest.fixture(scope="module")
def rounds(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three different adapters; two of them share the directory name ``adapter`` (the Δ-DPO
    loop's ``out/round<k>/adapter`` layout)."""
    pytest.importorskip("peft")
    from evalkit.testing import build_tiny_adapter

    root = tmp_path_factory.mktemp("dpo-out")
    return {"round1": build_tiny_adapter(tiny_model, root / "round1" / "adapter", seed=11),
            "round2": build_tiny_adapter(tiny_model, root / "round2" / "adapter", seed=22),
            "extra": build_tiny_adapter(tiny_model, root / "extra", seed=33)}


def test_adapters_sharing_a_basename_are_not_confused(tiny_model: Path, rounds: dict[str, Path],
                                                      tmp_path: Path, data_dir: Path) -> None:
    both = tmp_path / "both"
    res = _evalkit("run", str(tiny_model), "-t", FLORES, "--limit", "6",
                   "--adapter", str(rounds["round1"]), "--adapter", str(rounds["round2"]),
                   "--no-base", "--out", str(both), *COMMON)
    got = _by_label(_summaries(res))
    assert set(got) == {"round1/adapter", "round2/adapter"}
    for name in ("round1", "round2"):
        alone = tmp_path / f"alone-{name}"
        (s,) = _summaries(_evalkit("run", str(tiny_model), "-t", FLORES, "--limit", "6",
                                   "--adapter", str(rounds[name]), "--no-base",
                                   "--out", str(alone), *COMMON))
        mine = got[f"{name}/adapter"]
        assert mine["adapter_hash"] == s["adapter_hash"]
        assert mine["metrics"] == s["metrics"]
        assert _texts(both, mine) == _texts(alone, s)
    assert _texts(both, got["round1/adapter"]) != _texts(both, got["round2/adapter"])
    # round 1 alone into the same --out reuses round 1's cached generations, not round 2's
    lines = (both / "cache" / "generations.jsonl").read_text().count("\n")
    (again,) = _summaries(_evalkit("run", str(tiny_model), "-t", FLORES, "--limit", "6",
                                   "--adapter", str(rounds["round1"]), "--no-base",
                                   "--out", str(both), *COMMON))
    assert (both / "cache" / "generations.jsonl").read_text().count("\n") == lines
    assert again["metrics"] == got["round1/adapter"]["metrics"]


def test_same_weights_by_two_paths_share_the_cache(tiny_model: Path, rounds: dict[str, Path],
                                                   tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "out"
    (a,) = _summaries(_evalkit("run", str(tiny_model), "-t", FLORES, "--limit", "4",
                               "--adapter", str(rounds["extra"]), "--no-base", "--out", str(out),
                               *COMMON))
    link = tmp_path / "elsewhere" / "my-adapter"
    link.parent.mkdir()
    link.symlink_to(rounds["extra"], target_is_directory=True)
    lines = (out / "cache" / "generations.jsonl").read_text().count("\n")
    (b,) = _summaries(_evalkit("run", str(tiny_model), "-t", FLORES, "--limit", "4",
                               "--adapter", f"mine={link}", "--no-base", "--out", str(out),
                               *COMMON))
    assert (out / "cache" / "generations.jsonl").read_text().count("\n") == lines
    assert a["adapter_hash"] == b["adapter_hash"] and a["metrics"] == b["metrics"]
    assert b["adapter_label"] == "mine"
    # the same weights twice in one run would be one row twice: refused, one line
    res = _evalkit("run", str(tiny_model), "-t", FLORES, "--limit", "4", "--adapter",
                   str(rounds["extra"]), "--adapter", str(link), "--out", str(out), *COMMON,
                   check=False)
    assert res.returncode == 2 and "same weights" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_base_and_three_adapters_over_two_runs_in_one_out(tiny_model: Path,
                                                          rounds: dict[str, Path],
                                                          tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "shared"
    first = _summaries(_evalkit("run", str(tiny_model), "-t", FLORES, "--limit", "5",
                                "--adapter", f"r1={rounds['round1']}",
                                "--adapter", f"r2={rounds['round2']}", "--out", str(out),
                                *COMMON))
    second = _summaries(_evalkit("run", str(tiny_model), "-t", FLORES, "--limit", "5",
                                 "--adapter", f"x={rounds['extra']}", "--out", str(out),
                                 *COMMON))
    got = {**_by_label(first), **_by_label(second)}
    assert set(got) == {None, "r1", "r2", "x"}
    dirs = {p.name for p in out.iterdir() if (p / "summary.jsonl").exists()}
    assert len(dirs) == 4
    for label, path in ((None, None), ("r1", rounds["round1"]), ("r2", rounds["round2"]),
                        ("x", rounds["extra"])):
        fresh = tmp_path / f"fresh-{label}"
        extra = ["--adapter", str(path), "--no-base"] if path else []
        (s,) = _summaries(_evalkit("run", str(tiny_model), "-t", FLORES, "--limit", "5",
                                   *extra, "--out", str(fresh), *COMMON))
        assert got[label]["metrics"] == s["metrics"], label
        assert _texts(out, got[label]) == _texts(fresh, s), label


def _store_lines(out: Path) -> list[dict]:
    p = out / "cache" / "generations.jsonl"
    rows = []
    for line in (p.read_text().splitlines() if p.exists() else []):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return rows


def _start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "evalkit.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_for(out: Path, n: int, proc: subprocess.Popen) -> None:
    deadline = time.time() + 300
    while len(_store_lines(out)) < n:
        assert proc.poll() is None, proc.stderr.read()[-2000:] if proc.stderr else ""
        assert time.time() < deadline, "run did not start generating"
        time.sleep(0.02)


def test_sigint_then_sigkill_mid_batch_then_resume(tiny_model: Path, tmp_path: Path,
                                                   data_dir: Path) -> None:
    """Finished sequences are stored while their batch still runs; Ctrl-C stops cleanly with
    a message, SIGKILL loses only unfinished sequences; the resumed run equals a fresh one."""
    args = ["run", str(tiny_model), "-t", "nb_parse:40", "-o", "oracles=fake",
            "--max-new-tokens", "60", "--batch-size", "8", "--no-leaderboard", "--json"]
    out = tmp_path / "interrupted"
    proc = _start([*args, "--out", str(out)])
    _wait_for(out, 3, proc)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "rerun the same command to resume" in err
    after_int = len(_store_lines(out))
    assert 3 <= after_int < 120
    proc = _start([*args, "--out", str(out)])
    _wait_for(out, after_int + 3, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    after_kill = _store_lines(out)
    assert after_int < len(after_kill) < 120
    res = _evalkit(*args, "--out", str(out))
    keys = [r["key"] for r in _store_lines(out)]
    assert len(keys) == len(set(keys)) == 120  # nothing finished was generated twice
    fresh = tmp_path / "fresh"
    res2 = _evalkit(*args, "--out", str(fresh))
    (a,), (b,) = _summaries(res), _summaries(res2)
    assert a["metrics"] == b["metrics"]
    assert {r["key"]: r["output"] for r in _store_lines(out)} == \
        {r["key"]: r["output"] for r in _store_lines(fresh)}


def test_sampling_ignores_batch_size_limit_and_resumption(tiny_model: Path, tmp_path: Path,
                                                          data_dir: Path) -> None:
    """A sample's text is a function of (prompt, params, seed, sample index) only."""
    base = ["run", str(tiny_model), "-t", "nb_parse:16", "-o", "oracles=fake",
            "--max-new-tokens", "30", "--no-leaderboard", "--json"]
    runs = {}
    for bs in ("1", "3", None):
        out = tmp_path / f"bs{bs}"
        (s,) = _summaries(_evalkit(*base, "--limit", "16", "--out", str(out),
                                   *(["--batch-size", bs] if bs else [])))
        runs[bs] = _texts(out, s)
    assert runs["1"] == runs["3"] == runs[None]
    assert len({t for texts in runs["1"] for t in texts}) > 16  # really sampled
    grow = tmp_path / "grow"
    (s8,) = _summaries(_evalkit(*base, "--limit", "8", "--out", str(grow)))
    texts8 = _texts(grow, s8)
    (s16,) = _summaries(_evalkit(*base, "--limit", "16", "--out", str(grow)))
    texts16 = _texts(grow, s16)
    assert texts16 == runs[None]
    assert texts8 == texts16[:8]
    fresh16 = _summaries(_evalkit(*base, "--limit", "16", "--out", str(tmp_path / "f16")))[0]
    assert s16["metrics"] == fresh16["metrics"]


def test_seed_drives_nb_parse_samples_and_is_recorded(tiny_model: Path, tmp_path: Path,
                                                      data_dir: Path) -> None:
    base = ["run", str(tiny_model), "-t", "nb_parse:6", "-o", "oracles=fake",
            "--max-new-tokens", "20", "--no-leaderboard", "--json"]
    (s0,) = _summaries(_evalkit(*base, "--out", str(tmp_path / "s0")))
    (s7,) = _summaries(_evalkit(*base, "--seed", "7", "--out", str(tmp_path / "s7")))
    assert s0["meta"]["seeds"] == [0, 1, 2] and s7["meta"]["seeds"] == [7, 8, 9]
    assert {p["seed"] for p in s7["gen_params"]} == {7, 8, 9}
    t0, t7 = _texts(tmp_path / "s0", s0), _texts(tmp_path / "s7", s7)
    assert sum(a != b for a, b in zip(t0, t7)) >= 5


def test_rescore_with_another_seed_equals_a_fresh_run(tiny_model: Path, tmp_path: Path,
                                                      data_dir: Path) -> None:
    out = tmp_path / "run"
    (s,) = _summaries(_evalkit("run", str(tiny_model), "-t", FLORES, "--limit", "12",
                               "--out", str(out), *COMMON))
    run_dir = out / s["run_id"].split("@", 1)[0]
    (r,) = _summaries(_evalkit("score", str(run_dir), "--seed", "5", "--json"))
    (f,) = _summaries(_evalkit("run", str(tiny_model), "-t", FLORES, "--limit", "12",
                               "--seed", "5", "--out", str(tmp_path / "fresh5"), *COMMON))
    assert r["seed"] == 5 and r["metrics"] == f["metrics"]
    assert r["metrics"]["chrf"]["value"] == s["metrics"]["chrf"]["value"]
    assert r["metrics"]["chrf"]["ci"] != s["metrics"]["chrf"]["ci"]  # resampling moved
    assert r["adapter_label"] is None and r["limit"] == 12


def test_limit_run_is_marked_next_to_a_full_run(tiny_model: Path, rounds: dict[str, Path],
                                                tmp_path: Path, data_dir: Path) -> None:
    """A full base run and a --limit adapter run on one board: the partial row says so, is
    never tested against the full baseline, and --strict refuses the board."""
    out = tmp_path / "out"
    common = ["-t", "nb_parse:8", "-o", "oracles=fake", "--max-new-tokens", "10", "--json"]
    (full,) = _summaries(_evalkit("run", str(tiny_model), *common, "--out", str(out)))
    part = _evalkit("run", str(tiny_model), *common, "--adapter", str(rounds["extra"]),
                    "--no-base", "--limit", "4", "--out", str(out))
    assert "--limit 4: a partial run" in part.stderr
    (lim,) = _summaries(part)
    assert lim["limit"] == 4 and full["limit"] is None
    for extra, ref in (([], full), (["--adapter", str(rounds["extra"]), "--no-base",
                                     "--limit", "4"], lim)):
        (alone,) = _summaries(_evalkit("run", str(tiny_model), *common, *extra, "--out",
                                       str(tmp_path / f"alone{len(extra)}")))
        assert alone["metrics"] == ref["metrics"]
    board = json.loads((out / "leaderboards" / "all" / "board.json").read_text())
    labels = [r["label"] for r in board["rows"]]
    assert sum("--limit 4" in x for x in labels) == 1, labels
    part_cells = [c for c in board["cells"] if c["variant"] != _dir(full)]
    assert part_cells and all(any("partial run" in f for f in c["flags"]) for c in part_cells)
    assert all(c["p_value"] is None for c in part_cells)  # never tested against the full run
    res = _evalkit("leaderboard", str(out), "--strict", check=False)
    assert res.returncode == 2 and "not comparable" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def _dir(summary: dict) -> str:
    return summary["run_id"].split("@", 1)[0]


def test_scripted_backend_is_refused_by_the_cli(tiny_model: Path, tmp_path: Path) -> None:
    res = _evalkit("run", str(tiny_model), "-t", FLORES, "--backend", "scripted",
                   "--out", str(tmp_path), check=False)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "test" in res.stderr and "Traceback" not in res.stderr


def test_model_dir_with_only_config_is_one_line(tiny_model: Path, tmp_path: Path) -> None:
    bad = tmp_path / "cfg-only"
    bad.mkdir()
    (bad / "config.json").write_text((tiny_model / "config.json").read_text())
    res = _evalkit("run", str(bad), "-t", FLORES, "--out", str(tmp_path / "o"), check=False)
    assert res.returncode == 2, res.stderr[-2000:]
    assert len(res.stderr.strip().splitlines()) == 1 and "no weights" in res.stderr


def test_bracketed_metric_names_print_literally(capsys: pytest.CaptureFixture[str]) -> None:
    from evalkit.records import RunSummary
    from evalkit.report import print_table

    s = RunSummary(run_id="r", created_at="t", task="scala:nob", task_version="1",
                   language="nob_Latn", model="m", model_hash="h", backend="hf",
                   metrics={"pair_accuracy": {"value": 0.5},
                            "pair_accuracy[delete]": {"value": 0.25},
                            "pair_accuracy[flip_neighbours]": {"value": 0.75}},
                   n_samples=1, sample_ids_sha256="x", chat_template={}, seed=0,
                   data_hashes={}, versions={})
    print_table([s])
    out = capsys.readouterr().out
    assert "pair_accuracy[delete]" in out and "pair_accuracy[flip_neighbours]" in out
