"""α sweeps: a grid with a recipe. Each α is a grid unit (merge, then evaluate), run by the
grid's executor (in this process, or as Ray tasks), so a sweep has the grid's records, unit
manifests, skipping of finished points on rerun and single leaderboard build.

Each merged checkpoint is an ordinary model directory and the rows of the board are the merged
directories' names (``diploma-a0.75``). The α-independent parts are shared: the run root, the
generation cache (an identical re-merge has the same content hash, so a rerun costs no
generation) and the optional evaluation of the input models themselves (``with_inputs``).

Merged weights live in ``<merged_dir>/<recipe>-a<α>`` (default ``<out>/merged``) and are deleted
after their evaluation unless ``keep``; the records and the per-point merge record are kept in
``<out>/sweeps/<recipe>.json``. With ``chat_template="auto"``, merges that take the instruct
model's tokenizer (diploma, language-vector) are evaluated with the chat template on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.errors import BadInput, EvalkitError
from evalkit.merge.recipes import MergeSpec


@dataclass
class SweepPoint:
    """One evaluated model of the sweep (a merge, or an input with ``with_inputs``)."""

    label: str
    alpha: float | None
    model: str  # the model name the runner recorded (a path)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # task → metric → value
    merge_record: dict[str, Any] | None = None
    kept: bool = False


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
              executor: Any = None, show_progress: bool = False) -> list[SweepPoint]:
    """Merge and evaluate every α (one grid unit each); returns one point per evaluated model.

    `run_options` are extra `RunConfig` fields (backend, limit, max_new_tokens, seed,
    backend_options, task_options, ...); `executor` a grid executor (default: in this
    process). A failed merge (bad inputs) stops the sweep: the inputs are resolved before
    anything runs, and the first failed unit ends it.
    """
    from evalkit.grid.execute import LocalExecutor, run_grid
    from evalkit.grid.units import GridPlan, merge_units, model_units, task_versions

    if not alphas:
        raise BadInput("give at least one --alpha")
    out = Path(out)
    opts = dict(run_options or {})
    for reserved in ("model", "tasks", "out", "adapters"):
        if reserved in opts:
            raise BadInput(f"run option {reserved!r} is set by the sweep itself")
    seeds = [opts.pop("seed", 0)]
    specs = [make_spec(a) for a in alphas]
    tv = task_versions(tasks)
    units = merge_units(make_spec, alphas, tv, seeds, opts, dtype=dtype,
                        allow_config_diff=allow_config_diff, keep=keep,
                        merged_dir=str(merged_dir) if merged_dir is not None else None)
    roles: dict[str, str] = {}
    for role, name in specs[0].inputs.items():
        roles.setdefault(name, role)
    inputs = model_units([(n, [], True) for n in roles], tv, seeds, opts,
                         where=lambda i: f"--{list(roles.values())[i]}",
                         skip_same_weights=True) if with_inputs else []
    plan = GridPlan(units + inputs, list(tasks), out, opts,
                    leaderboards=bool(opts.get("update_leaderboards", True)))
    result = run_grid(plan, executor or LocalExecutor(), show_progress=show_progress,
                      fail_fast=True)
    if result.failed:
        bad = result.failed[0]
        raise EvalkitError(f"{result.labels.get(bad.key, 'sweep')}: {bad.error}")
    done = {o.key: o for o in result.outcomes}
    points = [SweepPoint(spec.name(), spec.alpha, done[u.key].model or "",
                         _metrics(done[u.key].summaries), done[u.key].merge_record, kept=keep)
              for spec, u in zip(specs, units)]
    points += [SweepPoint(f"{roles[u.model]} ({Path(u.model).name or u.model})", None, u.model,
                          _metrics(done[u.key].summaries)) for u in inputs]
    _write_report(out, specs[0], points)
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
