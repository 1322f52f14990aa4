"""α sweeps: merge each α, evaluate it through the runner, feed the leaderboard, clean up.

Each merged checkpoint is an ordinary model directory, so evaluation is one `evalkit.runner.run`
per point (which also rebuilds the leaderboards under ``out``) and the rows of the board are the
merged directories' names (``diploma-a0.75``). The α-independent parts are shared: the run root,
the generation cache (an identical re-merge has the same content hash, so a rerun costs no
generation) and the optional evaluation of the input models themselves (``with_inputs``).

Merged weights live in ``<merged_dir>/<recipe>-a<α>`` (default ``<out>/merged``) and are deleted
after their evaluation unless ``keep``; the records and the per-point merge record are kept in
``<out>/sweeps/<recipe>.json``. With ``chat_template="auto"``, merges that take the instruct
model's tokenizer (diploma, language-vector) are evaluated with the chat template on.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.errors import BadInput
from evalkit.merge.recipes import MergeSpec

Progress = Callable[[str, int, int], None]


@dataclass
class SweepPoint:
    """One evaluated model of the sweep (a merge, or an input with ``with_inputs``)."""

    label: str
    alpha: float | None
    model: str  # the model name the runner recorded (a path)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # task → metric → value
    merge_record: dict[str, Any] | None = None
    kept: bool = False


def _same_merge(record: dict[str, Any] | None, spec: MergeSpec, dtype: str) -> bool:
    if not record:
        return False
    want = {"recipe": spec.recipe, "alpha": spec.alpha, "dtype": dtype,
            "deltas": [{"role": r, "weight": w} for r, w in spec.deltas]}
    return all(record.get(k) == v for k, v in want.items()) and {
        r: i.get("name") for r, i in record.get("inputs", {}).items()} == spec.inputs


def _metrics(summaries: Sequence[Any]) -> dict[str, dict[str, Any]]:
    return {s.task: {k: m.get("value") for k, m in s.metrics.items()} for s in summaries}


def select_best(points: Sequence[SweepPoint], metric: str,
                higher_is_better: bool = True) -> SweepPoint | None:
    """The merged point with the best mean of `metric` over the tasks that report it."""
    best: tuple[float, SweepPoint] | None = None
    for p in points:
        if p.alpha is None:
            continue
        vals = [m[metric] for m in p.metrics.values() if m.get(metric) is not None]
        if not vals:
            continue
        score = sum(vals) / len(vals)
        key = score if higher_is_better else -score
        if best is None or key > best[0]:
            best = (key, p)
    return best[1] if best else None


def run_sweep(make_spec: Callable[[float], MergeSpec], alphas: Sequence[float],
              tasks: Sequence[str], out: Path, *, keep: bool = False,
              with_inputs: bool = False, merged_dir: Path | None = None, dtype: str = "auto",
              allow_config_diff: bool = False, run_options: dict[str, Any] | None = None,
              progress: Progress | None = None) -> list[SweepPoint]:
    """Merge and evaluate every α in order; returns one point per evaluated model.

    `run_options` are extra `RunConfig` fields (backend, limit, max_new_tokens, seed,
    backend_options, task_options, ...). A failed merge (bad inputs) stops the sweep before
    anything is evaluated: the first α is merged first, and every α shares the same inputs.
    """
    from evalkit.merge.engine import merge, read_record
    from evalkit.runner import RunConfig, run

    if not alphas:
        raise BadInput("give at least one --alpha")
    out = Path(out)
    opts = dict(run_options or {})
    for reserved in ("model", "tasks", "out", "adapters"):
        if reserved in opts:
            raise BadInput(f"run option {reserved!r} is set by the sweep itself")
    mdir = Path(merged_dir) if merged_dir is not None else out / "merged"
    specs = [make_spec(a) for a in alphas]
    points: list[SweepPoint] = []
    written: list[Any] = []
    for spec in specs:
        path = mdir / spec.name()
        record = read_record(path)
        if not _same_merge(record, spec, dtype):
            record = merge(spec, path, dtype=dtype, force=path.exists(),
                           allow_config_diff=allow_config_diff, progress=progress).record
        popts = dict(opts)
        if popts.get("chat_template", "auto") == "auto" and spec.tokenizer_from == "instruct":
            # the merge carries the instruct model's template and is meant to follow
            # instructions; the name heuristic of `auto` cannot know that for every recipe
            popts["chat_template"] = "on"
        try:
            summaries = run(RunConfig(model=str(path.resolve()), tasks=list(tasks), out=out,
                                      **popts), progress=progress)
            written += summaries
        finally:
            if not keep:
                shutil.rmtree(path, ignore_errors=True)
        points.append(SweepPoint(spec.name(), spec.alpha, str(path.resolve()),
                                 _metrics(summaries), record, kept=keep))
    if with_inputs:
        seen: set[str] = set()
        for role, name in specs[0].inputs.items():
            if name in seen:
                continue
            seen.add(name)
            summaries = run(RunConfig(model=name, tasks=list(tasks), out=out, **opts),
                            progress=progress)
            written += summaries
            points.append(SweepPoint(f"{role} ({Path(name).name or name})", None, name,
                                     _metrics(summaries)))
    _write_report(out, specs[0], points)
    if opts.get("update_leaderboards", True):
        from evalkit.leaderboard import update_for_run

        update_for_run(out, written)
    return points


def _write_report(out: Path, spec: MergeSpec, points: Sequence[SweepPoint]) -> Path:
    path = out / "sweeps" / f"{spec.recipe}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"recipe": spec.recipe, "inputs": spec.inputs,
           "points": [{"label": p.label, "alpha": p.alpha, "model": p.model,
                       "kept": p.kept, "metrics": p.metrics, "merge": p.merge_record}
                      for p in points]}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
