"""The grid file (TOML): base models with their adapters, merge recipes with α values, tasks or
suites, seeds and run options. Every mistake is a one-line `BadInput` naming the key.

::

    tasks = ["flores:eng_Latn-nob_Latn", "ifeval:en"]   # and/or suites = ["saga"]
    seeds = [0, 1]                                      # one unit per base model per seed

    [options]              # any `evalkit run` option, spelled as on the command line with _
    limit = 50
    max_new_tokens = 256
    option = { judge = "rule" }                          # or ["judge=rule"]

    [[models]]
    model = "checkpoints/eu-step2000"         # a folder (relative to this file) or hub id
    adapters = ["sft=adapters/sft", "dpo=adapters/dpo"]  # or { sft = "adapters/sft", ... }
    base = true                                          # also evaluate the base model (default)

    [[merges]]
    recipe = "diploma"
    base = "m/base"
    cpt = "m/cpt"
    instruct = "m/instruct"
    alphas = [0.5, 0.75, 1.0]

Options given on the command line win over ``[options]``; ``--tasks``/``--suite`` replace the
file's tasks and ``--seed`` its seeds.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from evalkit.errors import BadInput

#: RunOptions fields that are not ``[options]`` keys: tasks and seeds are top-level keys,
#: ``--json``/``--format`` are about the terminal
_NOT_OPTIONS = {"tasks", "suite", "seed", "as_json", "format"}
#: vLLM multi-node engine options: grid options (and `VLLMConfig` fields), not run options
ENGINE_OPTIONS = ("pipeline_parallel_size", "distributed_executor_backend")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class ModelEntry(_Strict):
    """One base model and the adapters evaluated with it in one engine."""

    model: str
    adapters: list[str] | dict[str, str] = []
    base: bool = True

    def adapter_specs(self) -> list[str]:
        """``NAME=PATH`` (or bare ``PATH``) strings, as ``--adapter`` takes them."""
        if isinstance(self.adapters, dict):
            return [f"{k}={v}" for k, v in self.adapters.items()]
        return list(self.adapters)


class MergeEntry(_Strict):
    """A merge recipe evaluated at several α (`evalkit sweep`'s options)."""

    recipe: str
    alphas: list[float]
    base: str | None = None
    cpt: str | None = None
    instruct: str | None = None
    lang: str | None = None
    models: list[str] = []
    weights: list[float] = []
    tokenizer_from: str | None = None
    dtype: str = "auto"
    allow_config_diff: bool = False
    merged_dir: str | None = None
    keep: bool = False
    with_inputs: bool = False


def _options_model() -> type[BaseModel]:
    """``[options]``: every shared run option (none set by default), plus the engine options."""
    from evalkit.cli_options import RunOptions

    hints = typing.get_type_hints(RunOptions)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(RunOptions):
        if f.name in _NOT_OPTIONS:
            continue
        ann: Any = hints[f.name]
        if f.name == "batch_size":
            ann = int | str
        elif f.name == "option":
            ann = list[str] | dict[str, Any]
        elif f.name in ("out", "data_dir"):
            ann = str
        fields[f.name] = (ann | None, None)
    fields["pipeline_parallel_size"] = (int | None, None)
    fields["distributed_executor_backend"] = (Literal["ray", "mp"] | None, None)
    return create_model("GridOptions", __config__=ConfigDict(extra="forbid"), **fields)


GridOptions = _options_model()


class GridFile(_Strict):
    """The whole file."""

    tasks: list[str] = []
    suites: list[str] = []
    seeds: list[int] | None = None
    options: GridOptions = GridOptions()  # type: ignore[valid-type]
    models: list[ModelEntry] = []
    merges: list[MergeEntry] = []


_SECTIONS: dict[str, type[BaseModel]] = {"models": ModelEntry, "merges": MergeEntry,
                                         "options": GridOptions}


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _message(path: Path, exc: ValidationError) -> str:
    errs = exc.errors()
    err = errs[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))  # union tags
    where = _where(loc)
    more = f" (and {len(errs) - 1} more problem(s))" if len(errs) > 1 else ""
    if err["type"] == "extra_forbidden":
        section = _SECTIONS.get(str(loc[0])) if len(loc) > 1 else GridFile
        known = list(section.model_fields) if section else []
        hint = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.5)
        return (f"{path}: unknown key {where}" + (f"; did you mean {hint[0]}?" if hint else "")
                + f" (keys here: {', '.join(known)}){more}")
    if err["type"] == "missing":
        return f"{path}: {where} is missing; every entry there needs it{more}"
    got = err.get("input")
    shown = repr(got) if not isinstance(got, (dict, list)) or len(repr(got)) < 60 else "…"
    return f"{path}: {where}: {err['msg'].lower()} (got {shown}){more}"


def load_grid_file(path: Path | str) -> GridFile:
    """Read and validate a grid file."""
    import tomllib

    path = Path(path)
    if not path.is_file():
        raise BadInput(f"grid file {path} not found; write one (see docs/grid.md) and pass "
                       "its path")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: not valid TOML ({str(exc).splitlines()[0]}); fix the "
                       "syntax") from None
    try:
        grid = GridFile.model_validate(data)
    except ValidationError as exc:
        raise BadInput(_message(path, exc)) from None
    if not grid.models and not grid.merges:
        raise BadInput(f"{path}: nothing to evaluate; add a [[models]] entry (model = PATH) "
                       "or a [[merges]] entry")
    if grid.seeds is not None and not grid.seeds:
        raise BadInput(f"{path}: seeds is empty; give at least one seed or leave it out")
    for i, m in enumerate(grid.merges):
        if not m.alphas:
            raise BadInput(f"{path}: merges[{i}].alphas is empty; give at least one α")
    for i, e in enumerate(grid.models):
        if not e.base and not e.adapter_specs():
            raise BadInput(f"{path}: models[{i}] has base = false and no adapters; nothing "
                           "to evaluate")
    return grid


def anchored(value: str, root: Path) -> str:
    """A path written in the grid file, relative to the file's folder; other names (hub ids,
    ``default``) unchanged."""
    p = Path(value).expanduser()
    if p.is_absolute():
        return str(p)
    q = root / p
    return str(q.resolve()) if q.exists() else value


def anchored_adapter(spec: str, root: Path) -> str:
    """``NAME=PATH`` / ``PATH`` with the path anchored at the grid file's folder."""
    from evalkit.models import parse_adapter_spec

    label, path = parse_adapter_spec(spec)
    p = anchored(path, root)
    return f"{label}={p}" if label else p
