"""The two record types evalkit writes, both versioned (schema_version).

``SampleRecord``: one JSON line per sample per task per model variant, in
``<run dir>/samples/<task>.jsonl``. ``RunSummary``: one JSON line per model variant × task, in
``<run dir>/summary.jsonl`` (the latest line for a task wins). Leaderboards read summaries and,
for paired statistics, sample records; nothing else.

Fields (both):
    schema_version: 1.
    run_id: ``<variant slug>`` + timestamp of the scoring pass.
    task / task_version: resolved task name (``flores:eng_Latn-nob_Latn:devtest``) and version.
    model: the model as given (path or hub id); model_hash: sha256 over config + weights (local)
        or ``<id>@<commit>`` (hub).
    adapter / adapter_hash: the LoRA adapter evaluated (None for the base model).
SampleRecord only:
    sample_id, prompts (rendered prompt text per request), prompt_sha256 (of all prompts),
    outputs (per request: {"texts": [...]} or {"logprob", "n_tokens", "is_greedy"}),
    reference, scores (per-sample metric values), meta.
RunSummary only:
    metrics: name -> {value, n, higher_is_better, se?, ci?, ci_method?, signature?, note?}.
    n_samples, sample_ids_sha256 (sorted ids; runs with different sample sets are not compared),
    language, backend, chat_template ({"applied", "sha256"}), gen_params, seed, data_hashes,
    versions (python, evalkit, torch, transformers, sacrebleu, ...), created_at, meta.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

SCHEMA_VERSION = 1


class SampleRecord(BaseModel):
    """One sample's prompts, outputs and per-sample scores."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())
    schema_version: Literal[1] = 1
    run_id: str
    task: str
    task_version: str
    sample_id: str
    model: str
    model_hash: str
    adapter: str | None = None
    adapter_hash: str | None = None
    prompts: list[str]
    prompt_sha256: str
    outputs: list[dict[str, Any]]
    reference: Any = None
    scores: dict[str, Any]
    meta: dict[str, Any] = {}


class RunSummary(BaseModel):
    """Aggregate metrics of one model variant on one task, with everything to reproduce them."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())
    schema_version: Literal[1] = 1
    run_id: str
    created_at: str
    task: str
    task_version: str
    language: str
    model: str
    model_hash: str
    adapter: str | None = None
    adapter_hash: str | None = None
    backend: str
    metrics: dict[str, dict[str, Any]]
    n_samples: int
    sample_ids_sha256: str
    chat_template: dict[str, Any]
    gen_params: list[dict[str, Any]] = []
    seed: int
    data_hashes: dict[str, str]
    versions: dict[str, str]
    meta: dict[str, Any] = {}
