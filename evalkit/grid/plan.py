"""From a grid file and the command line to a `GridPlan`: options merged, units expanded.

Command-line options win over the file's ``[options]`` (``--option`` pairs are added after the
file's); ``--tasks``/``--suite`` replace the file's tasks, ``--seed`` its seeds. Paths in the file
are relative to the file's folder. Every model, adapter, merge input and task is resolved here,
before anything runs, so a typo fails in a second with the entry it is in.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from evalkit.cli_options import RunOptions
from evalkit.errors import BadInput
from evalkit.grid.spec import ENGINE_OPTIONS, GridFile, anchored, anchored_adapter, load_grid_file
from evalkit.grid.units import GridPlan, Unit, merge_units, model_units, task_versions


def _anchored_or_none(value: str | None, root: Path) -> str | None:
    return anchored(value, root) if value else value


def _constant(text: str) -> Callable[[int], str]:
    """A `where` naming every unit `text`."""
    return lambda _j: text


def merged_options(grid: GridFile, root: Path, opts: RunOptions, given: set[str]) -> RunOptions:
    """`opts` with every option the command line left at its default taken from the file."""
    values = dataclasses.asdict(opts)
    fo: Any = grid.options  # a model built from RunOptions' fields (`spec.GridOptions`)
    for name in sorted(fo.model_fields_set - set(ENGINE_OPTIONS)):
        v = getattr(fo, name)
        if name == "option":
            pairs = ([f"{k}={json.dumps(x)}" for k, x in v.items()] if isinstance(v, dict)
                     else list(v or []))
            values["option"] = pairs + list(opts.option)  # the command line's come last: win
            continue
        if name in given or v is None:
            continue
        if name == "batch_size":
            v = str(v)
        elif name in ("out", "data_dir"):
            v = Path(anchored(v, root))
        values[name] = v
    return RunOptions(**values)


def engine_options(grid: GridFile, cli: dict[str, Any], backend: str) -> dict[str, Any]:
    """The vLLM multi-node options (command line over file), checked against the backend."""
    out: dict[str, Any] = {}
    for name in ENGINE_OPTIONS:
        v = cli.get(name)
        if v is None:
            v = getattr(grid.options, name)
        if v is not None:
            out[name] = v
    pp = out.get("pipeline_parallel_size")
    if pp is not None and pp < 1:
        raise BadInput(f"--pipeline-parallel-size must be at least 1, got {pp}")
    if out.get("distributed_executor_backend") not in (None, "ray", "mp"):
        raise BadInput("--distributed-executor-backend must be ray or mp, not "
                       f"{out['distributed_executor_backend']!r}")
    if out and backend != "vllm":
        if pp not in (None, 1) or "distributed_executor_backend" in out:
            raise BadInput(f"{', '.join('--' + k.replace('_', '-') for k in out)} are vLLM "
                           f"engine options; use --backend vllm (the {backend} backend runs on "
                           "one node)")
        return {}  # a pipeline of 1 is every backend's default: nothing to pass on
    return out


def plan_from_file(path: Path | str, opts: RunOptions, given: set[str],
                   cli_engine: dict[str, Any] | None = None) -> GridPlan:
    """Read the grid file and expand it into units (see the module docstring)."""
    from evalkit.merge.roles import spec_factory
    from evalkit.runner import expand_task_names

    path = Path(path)
    grid = load_grid_file(path)
    root = path.resolve().parent
    ro = merged_options(grid, root, opts, given)
    if given & {"tasks", "suite"}:
        names = ro.task_names()
    elif grid.tasks or grid.suites:
        names = expand_task_names(grid.tasks, grid.suites)
    else:
        raise BadInput(f"{path}: no tasks; set tasks = [...] or suites = [...] in the file, "
                       "or pass --tasks")
    seeds = [ro.seed] if "seed" in given or grid.seeds is None else list(dict.fromkeys(grid.seeds))
    config = ro.run_config()
    out = Path(config.pop("out"))
    config.pop("seed")
    config["backend_options"].update(engine_options(grid, cli_engine or {}, ro.backend))
    tasks = task_versions(names)
    entries = [(anchored(m.model, root), [anchored_adapter(a, root) for a in m.adapter_specs()],
                m.base) for m in grid.models]
    units: list[Unit] = model_units(entries, tasks, seeds, config)
    targets: dict[str, int] = {}
    for i, m in enumerate(grid.merges):
        where = f"{path}: merges[{i}]"
        an = partial(_anchored_or_none, root=root)
        try:
            make = spec_factory(m.recipe, an(m.base), an(m.cpt), an(m.instruct), an(m.lang),
                                [anchored(x, root) for x in m.models], m.weights,
                                m.tokenizer_from)
        except BadInput as exc:
            raise BadInput(f"{where}: {exc}".replace("--", "")) from None
        merged_dir = anchored(m.merged_dir, root) if m.merged_dir else None
        target = f"{Path(merged_dir or out / 'merged').resolve()}/{m.recipe}"
        if target in targets:
            raise BadInput(f"{where} writes its merges where merges[{targets[target]}] does "
                           f"({target}-a…); give one of them merged_dir = ...")
        targets[target] = i
        new = merge_units(make, m.alphas, tasks, seeds, config, dtype=m.dtype,
                          allow_config_diff=m.allow_config_diff, keep=m.keep,
                          merged_dir=merged_dir, where=f"{where}.")
        units += new
        if m.with_inputs:
            spec = make(m.alphas[0])
            units += model_units([(n, [], True) for n in dict.fromkeys(spec.inputs.values())],
                                 tasks, seeds, config, where=_constant(f"{where} input"),
                                 skip_same_weights=True)
    unique: dict[str, Unit] = {}
    for u in units:  # the same work named twice (a merge input also listed) runs once
        unique.setdefault(u.key, u)
    units = list(unique.values())
    leaderboards = bool(config.get("update_leaderboards", True))
    return GridPlan(units, names, out, config, leaderboards)
