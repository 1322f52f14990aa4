"""The backend contract: one call takes every request of a run, results stream back.

A backend owns batching. ``generate`` and ``loglikelihood`` receive *all* requests of all tasks
for one model variant set and yield ``(index, output)`` as each finishes, in any order, so the
runner can persist every finished sample immediately. Requests name their adapter (None = base),
so one engine can serve several LoRA adapters of one base in a single pass.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from evalkit.types import Generation, GenRequest, LoglikRequest, LoglikResult


class BackendConfig(BaseModel):
    """Options shared by the model backends; unknown keys are an error (no silent typos)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    model: str
    adapters: dict[str, str] = {}  # adapter name -> local path
    merge_adapter: bool = False
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    batch_size: int | None = Field(None, ge=1)  # None = by token budget
    max_batch_tokens: int = Field(16384, ge=1)
    max_model_len: int | None = Field(None, ge=1)
    seed: int = Field(0, ge=0)
    # vLLM engine options (ignored by hf)
    tensor_parallel_size: int = Field(1, ge=1)
    data_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.85, gt=0.0, le=1.0)
    enforce_eager: bool = False
    enable_prefix_caching: bool = True
    max_lora_rank: int | None = Field(None, ge=1)  # None = read from the adapters' configs
    # vLLM across nodes: pipeline stages and vLLM's own Ray executor (`evalkit grid`)
    pipeline_parallel_size: int = Field(1, ge=1)
    distributed_executor_backend: Literal["ray", "mp"] | None = None

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        import re

        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", v):
            raise ValueError(f"{v!r} is not a device; use auto, cpu, cuda, cuda:N or mps")
        return v


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


def truncate_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut `text` at the earliest stop string; returns (text, stopped)."""
    cut = len(text)
    for s in stop:
        if s:
            i = text.find(s)
            if 0 <= i < cut:
                cut = i
    return text[:cut], cut < len(text)
