"""Units of work keyed by content, and how a finished unit is recognised.

A unit is one base model with the variants that share its engine (the base model and its
adapters, evaluated by the runner in one backend pass), on every task of the grid, at one seed;
or one merge at one α, then evaluated. Its key hashes what decides its records: the base
model's content hash (a merge: its recipe, α, dtype and the inputs' content hashes), each
adapter's hash and label, the base-model switch, every task with its version, the generation
options (backend, backend options, limit, max_new_tokens, chat template, task options,
revision) and the seed.

A unit that finished writes ``<out>/grid/units/<key>.json`` after its records: which variant
directory holds which task's records under which ``run_id``, and how many samples. A rerun
skips a unit whose manifest still matches the records (the summary with that ``run_id`` is the
latest for its task, the sample file has that many records); any other unit runs again, and the
runner resumes it at sample level from the generation store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from evalkit.errors import EvalkitError
from evalkit.merge.recipes import MergeSpec
from evalkit.records import RunSummary, read_summaries, samples_path, write_text_atomic
from evalkit.types import stable_hash

#: RunConfig fields that decide a unit's outputs (with the model, adapters, tasks and seed)
KEY_OPTIONS = ("backend", "backend_options", "limit", "max_new_tokens", "chat_template",
               "task_options", "revision")
UNIT_FORMAT = 1


@dataclass(frozen=True)
class MergeJob:
    """Merge `spec` (then evaluate the result); weights go to ``<merged_dir>/<spec.name()>``."""

    spec: MergeSpec
    dtype: str = "auto"
    allow_config_diff: bool = False
    keep: bool = False
    merged_dir: str | None = None  # None: <out>/merged


@dataclass(frozen=True)
class Unit:
    """One engine's worth of work (see the module docstring)."""

    key: str
    label: str
    model: str  # base model as given (a merge unit: filled in once merged)
    adapters: tuple[str, ...] = ()  # NAME=PATH, as --adapter takes them
    include_base: bool = True
    seed: int = 0
    chat_template: str | None = None  # overrides the grid's (merges with an instruct tokenizer)
    merge: MergeJob | None = None
    role: str | None = None  # a sweep's input model: its role name


@dataclass
class GridPlan:
    """Everything an executor needs: the units and the run options they share."""

    units: list[Unit]
    tasks: list[str]
    out: Path
    run_options: dict[str, Any]  # RunConfig fields besides model/tasks/adapters/seed/out
    leaderboards: bool = True

    def run_config(self, unit: Unit, model: str, out: Path) -> dict[str, Any]:
        """`RunConfig` keyword arguments for `unit` (evaluating `model`, writing to `out`)."""
        opts = dict(self.run_options)
        if unit.chat_template is not None:
            opts["chat_template"] = unit.chat_template
        return dict(model=model, tasks=list(self.tasks), adapters=list(unit.adapters),
                    include_base=unit.include_base, seed=unit.seed, out=out, **opts)


@dataclass
class UnitOutcome:
    """What running (or skipping) one unit gave."""

    key: str
    status: Literal["done", "skipped", "failed"]
    summaries: list[RunSummary] = field(default_factory=list)
    model: str | None = None  # what was evaluated (a merged checkpoint's path)
    merge_record: dict[str, Any] | None = None
    error: str | None = None
    detail: str | None = None  # traceback of an unexpected failure
    worker: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    records: dict[str, Any] | None = None  # unshared --out: the files for the driver to write

    @property
    def n_samples(self) -> int:
        """Sample records written (variants × tasks × samples)."""
        return sum(s.n_samples for s in self.summaries)


# -- keys -----------------------------------------------------------------------------------


def task_versions(tasks: Sequence[str]) -> list[list[str]]:
    """[name, version] per task (loading each task fails early on an unknown name)."""
    from evalkit.registry import load_task

    return [[t, str(load_task(t).version)] for t in tasks]


def unit_key(ident: dict[str, Any], tasks: list[list[str]], run_options: dict[str, Any],
             seed: int, chat_template: str | None) -> str:
    """The content key of a unit (24 hex digits)."""
    gen = {k: run_options.get(k) for k in KEY_OPTIONS}
    if chat_template is not None:
        gen["chat_template"] = chat_template
    return stable_hash({"grid_unit": UNIT_FORMAT, **ident, "tasks": tasks, "gen": gen,
                        "seed": seed})[:24]


def _resolve(name: str, where: str, run_options: dict[str, Any]) -> Any:
    from evalkit.models import resolve_model

    try:
        return resolve_model(name, run_options.get("revision"), run_options.get("data_dir"))
    except EvalkitError as exc:
        raise type(exc)(f"{where}: {exc}") from None


def model_units(entries: Sequence[tuple[str, list[str], bool]], tasks: list[list[str]],
                seeds: Sequence[int], run_options: dict[str, Any],
                where: Callable[[int], str] = lambda i: f"models[{i}]",
                skip_same_weights: bool = False) -> list[Unit]:
    """One unit per (base model, seed); entries are (model, adapter specs, include base).

    Two entries with the same weights are refused (one engine per base model), or, with
    `skip_same_weights`, the later one is dropped.
    """
    from evalkit.models import resolve_adapters

    units: list[Unit] = []
    seen: dict[str, int] = {}
    for i, (model, specs, include_base) in enumerate(entries):
        ref = _resolve(model, where(i), run_options)
        if ref.hash in seen:
            if skip_same_weights:
                continue
            raise EvalkitError(f"{where(i)} names the same weights as {where(seen[ref.hash])} "
                               f"({model}); list all its adapters in one entry")
        seen[ref.hash] = i
        try:
            adapters = resolve_adapters(list(specs))
        except EvalkitError as exc:
            raise type(exc)(f"{where(i)}: {exc}") from None
        ident = {"model": ref.hash, "base": include_base or not adapters,
                 "adapters": [[a.hash, a.display] for a in adapters]}
        name = Path(model.rstrip("/")).name or model
        label = name + (f" + {len(adapters)} adapter(s)" if adapters else "")
        for seed in seeds:
            units.append(Unit(unit_key(ident, tasks, run_options, seed, None),
                              label + (f" seed {seed}" if len(seeds) > 1 else ""), model,
                              tuple(specs), include_base, seed))
    return units


def merge_units(make_spec: Callable[[float], MergeSpec], alphas: Sequence[float],
                tasks: list[list[str]], seeds: Sequence[int], run_options: dict[str, Any], *,
                dtype: str = "auto", allow_config_diff: bool = False, keep: bool = False,
                merged_dir: str | None = None, where: str = "--") -> list[Unit]:
    """One unit per (α, seed): merge, then evaluate the merged checkpoint. Errors about an
    input name it as `where` + role (``--cpt``)."""
    specs = [make_spec(a) for a in alphas]
    hashes = {role: _resolve(name, f"{where}{role}", run_options).hash
              for role, name in specs[0].inputs.items()}
    units: list[Unit] = []
    for spec in specs:
        chat = None
        if run_options.get("chat_template", "auto") == "auto" and spec.tokenizer_from == "instruct":
            # the merge carries the instruct model's template and is meant to follow
            # instructions; the name heuristic of `auto` cannot know that for every recipe
            chat = "on"
        ident = {"merge": {"recipe": spec.recipe, "alpha": spec.alpha, "dtype": dtype,
                           "anchor": spec.anchor, "base": spec.base,
                           "deltas": [list(d) for d in spec.deltas],
                           "tokenizer_from": spec.tokenizer_from, "extra": spec.extra,
                           "inputs": {r: hashes[r] for r in spec.inputs}}}
        job = MergeJob(spec, dtype, allow_config_diff, keep, merged_dir)
        for seed in seeds:
            units.append(Unit(unit_key(ident, tasks, run_options, seed, chat),
                              spec.name() + (f" seed {seed}" if len(seeds) > 1 else ""),
                              "", seed=seed, chat_template=chat, merge=job))
    return units


def merged_path(job: MergeJob, out: Path) -> Path:
    """Where a merge unit's weights go."""
    root = Path(job.merged_dir) if job.merged_dir is not None else Path(out) / "merged"
    return (root / job.spec.name()).resolve()


# -- manifests ------------------------------------------------------------------------------


def manifest_path(out: Path, key: str) -> Path:
    """The manifest a finished unit leaves."""
    return Path(out) / "grid" / "units" / f"{key}.json"


def write_manifest(out: Path, unit: Unit, outcome: UnitOutcome,
                   backend_options: dict[str, Any]) -> Path:
    """Record a finished unit (after its records are on disk)."""
    doc = {"format": UNIT_FORMAT, "key": unit.key, "label": unit.label,
           "model": outcome.model, "adapters": list(unit.adapters),
           "include_base": unit.include_base, "seed": unit.seed,
           "backend_options": backend_options, "merge": outcome.merge_record,
           "records": [{"dir": s.run_id.split("@", 1)[0], "task": s.task, "run_id": s.run_id,
                        "n_samples": s.n_samples} for s in outcome.summaries],
           "worker": outcome.worker, "seconds": round(outcome.seconds, 3)}
    path = manifest_path(out, unit.key)
    write_text_atomic(path, json.dumps(doc, indent=1, ensure_ascii=False, default=str) + "\n")
    return path


def read_manifest(out: Path, key: str) -> dict[str, Any] | None:
    """A unit's manifest, or None."""
    try:
        doc = json.loads(manifest_path(out, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("format") == UNIT_FORMAT else None


def finished(out: Path, unit: Unit) -> UnitOutcome | None:
    """The outcome of an earlier run of `unit` when its records are all still there."""
    doc = read_manifest(out, unit.key)
    if doc is None or not doc.get("records"):
        return None
    summaries: list[RunSummary] = []
    for rec in doc["records"]:
        run_dir = Path(out) / str(rec.get("dir", ""))
        latest = {s.task: s for s in read_summaries(run_dir)}.get(rec.get("task"))
        if latest is None or latest.run_id != rec.get("run_id"):
            return None
        try:
            with open(samples_path(run_dir, latest.task), encoding="utf-8") as fh:
                n = sum(1 for line in fh if line.strip())
        except OSError:
            return None
        if n != latest.n_samples or n != rec.get("n_samples"):
            return None
        summaries.append(latest)
    return UnitOutcome(unit.key, "skipped", summaries, model=doc.get("model"),
                       merge_record=doc.get("merge"), worker=doc.get("worker") or {},
                       seconds=float(doc.get("seconds") or 0.0))
