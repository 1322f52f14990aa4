"""The backend contract: one call takes every request of a run, results stream back.

A backend owns batching. ``generate`` and ``loglikelihood`` receive *all* requests of all tasks
for one model variant set and yield ``(index, output)`` as each finishes, in any order, so the
runner can persist every finished sample immediately. Requests name their adapter (None = base),
so one engine can serve several LoRA adapters of one base in a single pass.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from evalkit.types import Generation, GenRequest, LoglikRequest, LoglikResult


class BackendConfig(BaseModel):
    """Fields every backend takes. Each backend extends it with the options it uses
    (`HFConfig`, `VLLMConfig`, `OpenAIConfig`) and names that class as its ``config_class``;
    unknown keys are an error (no silent typos), and so is an option another backend uses
    (`evalkit.backends.factory.check_options` names it)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    model: str
    adapters: dict[str, str] = {}  # adapter name -> local path
    merge_adapter: bool = False
    seed: int = Field(0, ge=0)


class LocalModelConfig(BackendConfig):
    """Shared by the backends that load the weights themselves (hf, vllm)."""

    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    max_model_len: int | None = Field(None, ge=1)

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        import re

        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", v):
            raise ValueError(f"{v!r} is not a device; use auto, cpu, cuda, cuda:N or mps")
        return v


class HFConfig(LocalModelConfig):
    """hf-only options: how requests are batched."""

    batch_size: int | None = Field(None, ge=1)  # None = by token budget
    max_batch_tokens: int = Field(16384, ge=1)
    # auto: evalkit's Llama forward pass where it stands in exactly (`hf_native`), else
    # transformers; native: refuse when it cannot; transformers: always transformers
    engine: Literal["auto", "native", "transformers"] = "auto"
    # batches generated side by side on CPU by the native engine, each on its share of the
    # cores (None: two where torch has two threads or more); 1 = one batch at a time.
    # max_batch_tokens bounds each of them: memory for activations grows with the count
    streams: int | None = Field(None, ge=1)


class VLLMConfig(LocalModelConfig):
    """vLLM-only engine options (vLLM schedules its own batches)."""

    tensor_parallel_size: int = Field(1, ge=1)
    data_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.85, gt=0.0, le=1.0)
    enforce_eager: bool = False  # when unset: on for CPU, off for GPU (`vllm.engine_kwargs`)
    enable_prefix_caching: bool = True
    max_lora_rank: int | None = Field(None, ge=1)  # None = read from the adapters' configs
    # across nodes: pipeline stages and vLLM's own Ray executor (`evalkit grid`)
    pipeline_parallel_size: int = Field(1, ge=1)
    distributed_executor_backend: Literal["ray", "mp"] | None = None


class OpenAIConfig(BackendConfig):
    """Options of the OpenAI-compatible HTTP backend."""

    batch_size: int | None = Field(None, ge=1)  # concurrent requests (None = 8)


#: the built-in backends' config classes (to name the backend an option belongs to)
BUILTIN_CONFIGS: dict[str, type[BackendConfig]] = {
    "hf": HFConfig, "vllm": VLLMConfig, "openai": OpenAIConfig}


@runtime_checkable
class Backend(Protocol):
    """What the runner needs from a model backend."""

    name: str

    def generate(self, requests: Sequence[GenRequest]) -> Iterator[tuple[int, Generation]]:
        """Yield (index into `requests`, generation) for every request."""
        ...

    def loglikelihood(self, requests: Sequence[LoglikRequest]
                      ) -> Iterator[tuple[int, LoglikResult]]:
        """Yield (index, summed log-prob of the continuation) for every request."""
        ...

    def close(self) -> None:
        """Free the model and its (GPU) memory."""
        ...


def fit_positions(ids: list[int], max_new: int, positions: int | None) -> list[int]:
    """A prompt's token ids cut from the left so that `max_new` new tokens fit in the model's
    `positions`, as lm-eval's hf backend does (a model would otherwise generate past the
    positions it was trained on, or the engine refuse); unchanged when they fit."""
    if not positions:
        return ids
    keep = max(positions - max_new, 1)
    return ids[-keep:] if len(ids) > keep else ids


def warn_cut(n: int, positions: int | None) -> None:
    """Tell the user how many prompts `fit_positions` cut (nothing when none)."""
    if n:
        print(f"evalkit: warning: {n} prompt(s) left no room for their new tokens within the "
              f"model's {positions} positions and were cut from the left, as lm-eval does; "
              "lower --max-new-tokens to keep more of them", file=sys.stderr, flush=True)


def truncate_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut `text` at the earliest stop string; returns (text, stopped)."""
    cut = len(text)
    for s in stop:
        if s:
            i = text.find(s)
            if 0 <= i < cut:
                cut = i
    return text[:cut], cut < len(text)
