"""lm-eval bridge: evalkit's engine + lm-eval's scoring equals lm-eval's own `simple_evaluate`.

The task YAMLs live in tests/data/lm_eval_tasks with a ``__DATA__`` placeholder; `task_dir`
materialises them in a temporary directory, writing the FLORES eng→nob JSONL from the data
mirror at test time (no mirror text is committed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")

from evalkit.errors import BadInput, EvalkitError  # noqa: E402
from evalkit.tasks import lm_eval_bridge as bridge  # noqa: E402

FIXTURES = Path(__file__).parent / "data" / "lm_eval_tasks"
GEN, MC = "evalkit_flores_eng_nob", "evalkit_tiny_mc"
LIMIT = 4


def materialise(data_dir: Path, out: Path, n: int = 12) -> Path:
    """The fixture YAMLs with real paths, the shipped MC JSONL and a FLORES JSONL from the
    mirror."""
    from evalkit.data import DataLayer

    out.mkdir(parents=True, exist_ok=True)
    d = DataLayer(data_dir)
    eng = d.read_lines("flores200/dev/eng_Latn.dev")[:n]
    nob = d.read_lines("flores200/dev/nob_Latn.dev")[:n]
    with open(out / "flores_eng_nob.jsonl", "w", encoding="utf-8") as fh:
        for e, b in zip(eng, nob):
            fh.write(json.dumps({"eng": e, "nob": b}, ensure_ascii=False) + "\n")
    shutil.copy(FIXTURES / "tiny_mc.jsonl", out)
    for y in FIXTURES.glob("*.yaml"):
        (out / y.name).write_text(y.read_text(encoding="utf-8").replace("__DATA__", str(out)),
                                  encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def task_dir(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return materialise(data_dir, tmp_path_factory.mktemp("lm_eval_tasks"))


@pytest.fixture(scope="module")
def lm_eval_results(tiny_model: Path, task_dir: Path) -> dict:
    """lm-eval's own scores with its hf model (the reference)."""
    import torch
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    torch.set_num_threads(1)
    res = simple_evaluate(model="hf", model_args=f"pretrained={tiny_model},dtype=float32",
                          tasks=[GEN, MC], device="cpu", batch_size=4, limit=LIMIT,
                          task_manager=TaskManager(include_defaults=False,
                                                   include_path=str(task_dir)))
    return res["results"]


@pytest.fixture(scope="module")
def evalkit_run(tiny_model: Path, task_dir: Path, tmp_path_factory: pytest.TempPathFactory
                ) -> tuple[Path, dict]:
    """`evalkit run MODEL --tasks lm-eval:...` through the CLI, in process."""
    from typer.testing import CliRunner

    from evalkit.cli import app
    from evalkit.records import read_summaries

    out = tmp_path_factory.mktemp("runs")
    names = f"lm-eval:{GEN}@{task_dir},lm-eval:{MC}@{task_dir}"
    res = CliRunner().invoke(app, ["run", str(tiny_model), "--tasks", names, "--limit",
                                   str(LIMIT), "--dtype", "float32", "--out", str(out),
                                   "--no-leaderboard"])
    assert res.exit_code == 0, res.output
    (run_dir,) = [p for p in out.iterdir() if (p / "summary.jsonl").exists()]
    return run_dir, {s.task.split(":", 1)[1].split("@")[0]: s for s in read_summaries(run_dir)}


def test_scores_equal_lm_eval(evalkit_run: tuple[Path, dict], lm_eval_results: dict) -> None:
    _, ours = evalkit_run
    for task in (GEN, MC):
        ref = {k: v for k, v in lm_eval_results[task].items()
               if "," in k and "_stderr" not in k}
        got = {k: m["value"] for k, m in ours[task].metrics.items()}
        assert set(got) == set(ref), task
        for k in ref:
            assert got[k] == pytest.approx(float(ref[k]), abs=1e-12), (task, k)
        assert ours[task].n_samples == LIMIT
    # closed-form stderr (mean) is lm-eval's; bootstrap ones are off by default
    mc = ours[MC].metrics
    assert mc["acc,none"]["se"] == pytest.approx(lm_eval_results[MC]["acc_stderr,none"])
    assert "se" not in ours[GEN].metrics["bleu,raw"]
    # both filters of the generative YAML ran
    assert {"bleu,raw", "bleu,trimmed"} <= set(ours[GEN].metrics)


def test_records_versions_and_rescore(evalkit_run: tuple[Path, dict]) -> None:
    from evalkit.records import read_sample_records
    from evalkit.runner import rescore_run

    run_dir, ours = evalkit_run
    s = ours[MC]
    assert s.task_version.startswith(bridge.BRIDGE_VERSION + "+")
    assert s.meta["subtasks"][MC]["config_sha256"]
    recs = read_sample_records(run_dir, s.task)
    assert [r.sample_id for r in recs] == [str(i) for i in range(LIMIT)]
    assert recs[0].reference == 0 and len(recs[0].outputs) == 3  # one loglik per choice
    assert set(recs[0].scores) == {"acc,none", "acc_norm,none"}
    again = {x.task: x for x in rescore_run(run_dir)}
    assert again[s.task].metrics == s.metrics


def test_requests_map_generation_kwargs(task_dir: Path) -> None:
    t = bridge.make_task(f"lm-eval:{GEN}@{task_dir}")
    samples = t.samples(None)
    assert len(samples) == 12 and samples[0].id == "0"
    (req,) = t.requests(samples[0], chat=False)
    prompt, params = req
    assert prompt.startswith("English sentence: ") and prompt.endswith("Norwegian Bokmål sentence:")
    assert params.stop == ("\n",) and params.max_new_tokens == 8 and params.greedy
    assert bridge._gen_params({"do_sample": True, "temperature": 0.7}, 3).n == 3
    assert bridge._gen_params({"do_sample": False, "temperature": 0.7}, 1).greedy


def test_hub_dataset_offline_names_it(tmp_path: Path) -> None:
    (tmp_path / "hubtask.yaml").write_text(
        "task: evalkit_hub_only\ndataset_path: no-such-org/no_such_dataset_xyz\n"
        "test_split: test\noutput_type: multiple_choice\ndoc_to_text: q\n"
        "doc_to_choice: ['a', 'b']\ndoc_to_target: 0\n", encoding="utf-8")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    t = bridge.make_task(f"lm-eval:evalkit_hub_only@{tmp_path}")
    with pytest.raises(EvalkitError, match="no-such-org/no_such_dataset_xyz") as exc:
        t.samples(None)
    assert "\n" not in str(exc.value)


def test_bad_names(tmp_path: Path, task_dir: Path) -> None:
    with pytest.raises(BadInput, match="expected lm-eval:"):
        bridge.make_task("lm-eval:")
    with pytest.raises(BadInput, match="not a directory"):
        bridge.make_task(f"lm-eval:x@{tmp_path / 'missing'}")


@pytest.mark.slow
def test_unknown_name_hint(task_dir: Path) -> None:
    # not in the include dir → lm-eval's ~14,700 built-in files are indexed too (~20 s)
    with pytest.raises(BadInput, match="did you mean evalkit_tiny_mc"):
        bridge.make_task(f"lm-eval:evalkit_tiny_mx@{task_dir}").samples(None)


def test_env_include_path(task_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(bridge.ENV_INCLUDE, str(task_dir))
    t = bridge.make_task(f"lm-eval:{MC}")
    assert [s.reference for s in t.samples(None)] == [0, 1, 2, 0, 1, 0]


def test_import_is_light() -> None:
    code = ("import sys, evalkit.tasks.lm_eval_bridge as b; b.make_task('lm-eval:x@.');"
            "print(any(m.split('.')[0] in ('lm_eval', 'torch', 'datasets') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
