"""`evalkit merge` and `evalkit sweep` (typer only at import; torch loads inside the commands)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import typer

from evalkit.cli_options import RunOptions, with_run_options
from evalkit.errors import BadInput
from evalkit.grid.cli import (
    CPUS_PER_UNIT,
    EXECUTOR,
    MAX_RETRIES,
    NO_SHARED_OUT,
    RAY_ADDRESS,
    make_executor,
)
from evalkit.merge.roles import spec_factory

_RECIPE_HELP = ("diploma: W_cpt + α·(W_instruct − W_base); language-vector: W_instruct + "
                "λ·(W_lang − W_base); task-arithmetic: W_base + Σ λ·w_i·(W_i − W_base).")


def parse_size(text: str) -> int:
    """``5GB``, ``500MB``, ``2GiB`` or a plain byte count → bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)?\s*", text, re.IGNORECASE)
    if not m:
        raise BadInput(f"--shard-size {text!r} is not a size; use e.g. 5GB, 500MB or 2GiB")
    unit = (m.group(2) or "").upper().rstrip("B")
    base = 1024 if unit.endswith("I") else 1000
    power = " KMGT".index(unit[:1] or " ")
    return int(float(m.group(1)) * base**power)


# options shared by both commands (typer needs them spelled out per command)
_BASE = typer.Option(None, "--base", help="The model the others were derived from.")
_CPT = typer.Option(None, "--cpt", help="diploma: the continued-pretraining model (anchor).")
_INSTRUCT = typer.Option(None, "--instruct", help="diploma/language-vector: the "
                         "instruction-tuned model (its tokenizer and config are copied).")
_LANG = typer.Option(None, "--lang", help="language-vector: the language-adapted base model.")
_MODEL = typer.Option([], "--model", "-m", help="task-arithmetic: a fine-tuned model (repeat).")
_WEIGHT = typer.Option([], "--weight", "-w", help="task-arithmetic: weight per --model "
                       "(default 1.0 each).")
_TOKFROM = typer.Option(None, "--tokenizer-from", help="task-arithmetic: base, model1, model2, "
                        "... (default base).")
_DTYPE = typer.Option("auto", help="Output dtype: auto (as the anchor) | float32 | bfloat16 | "
                      "float16. Arithmetic is always float32.")
_ALLOW = typer.Option(False, "--allow-config-diff", help="Merge although config.json fields "
                      "other than the architecture differ (recorded).")


def _print_result(res: Any) -> None:
    r = res.record
    typer.echo(f"merged {r['recipe']}: {r['formula']}")
    typer.echo(f"  {r['n_tensors']} tensors, {r['n_parameters']:,} parameters, "
               f"{r['weight_bytes'] / 1e6:.1f} MB in {len(r['weight_files'])} file(s), "
               f"tied embeddings: {r['tied_embeddings']}, {r['seconds']:.1f} s")
    typer.echo(f"  → {res.path} (record: evalkit_merge.json)")


def merge_cmd(
    recipe: str = typer.Argument(..., help=_RECIPE_HELP),
    out: Path = typer.Option(..., "--out", help="Output checkpoint directory."),
    alpha: float = typer.Option(1.0, "--alpha", "--lambda", help="α (diploma), λ "
                                "(language-vector, task-arithmetic)."),
    base: str | None = _BASE, cpt: str | None = _CPT, instruct: str | None = _INSTRUCT,
    lang: str | None = _LANG, model: list[str] = _MODEL, weight: list[float] = _WEIGHT,
    tokenizer_from: str | None = _TOKFROM, dtype: str = _DTYPE,
    allow_config_diff: bool = _ALLOW,
    force: bool = typer.Option(False, help="Replace --out if it exists (atomically)."),
    shard_size: str = typer.Option("5GB", help="Maximum weight shard size."),
) -> None:
    """Merge checkpoints by weight arithmetic into a loadable HF checkpoint (streamed)."""
    make = spec_factory(recipe, base, cpt, instruct, lang, model, weight, tokenizer_from)
    spec = make(alpha)
    from evalkit.merge.engine import merge
    from evalkit.progress import Progress

    with Progress() as bar:
        res = merge(spec, out, dtype=dtype, force=force, allow_config_diff=allow_config_diff,
                    shard_bytes=parse_size(shard_size), progress=bar.update)
    _print_result(res)


@with_run_options
def sweep_cmd(
    recipe: str = typer.Argument(..., help=_RECIPE_HELP),
    alpha: str = typer.Option("0.5,0.75,1.0,1.25", "--alpha", "--lambda",
                              help="Comma-separated α/λ values."),
    base: str | None = _BASE, cpt: str | None = _CPT, instruct: str | None = _INSTRUCT,
    lang: str | None = _LANG, model: list[str] = _MODEL, weight: list[float] = _WEIGHT,
    tokenizer_from: str | None = _TOKFROM,
    merge_dtype: str = typer.Option("auto", help="dtype of the merged weights (auto = the "
                                    "inputs' dtype; float32 | bfloat16 | float16)."),
    allow_config_diff: bool = _ALLOW,
    merged_dir: Path | None = typer.Option(None, help="Where merged weights go "
                                              "(default <out>/merged)."),
    keep: bool = typer.Option(False, help="Keep the merged checkpoints after evaluation."),
    with_inputs: bool = typer.Option(False, help="Also evaluate the input models."),
    select: str | None = typer.Option(None, help="Metric to pick the best α by (mean over "
                                         "tasks), e.g. chrf++."),
    executor: str = EXECUTOR, ray_address: str | None = RAY_ADDRESS,
    no_shared_out: bool = NO_SHARED_OUT, cpus_per_unit: float = CPUS_PER_UNIT,
    max_retries: int = MAX_RETRIES,
    *,
    opts: RunOptions,
) -> None:
    """Merge at each α, evaluate each on the tasks (every `evalkit run` option applies),
    update the leaderboard, clean up. Each α is a grid unit: finished ones are skipped on
    rerun, and --executor ray spreads them over a cluster."""
    from evalkit.merge.recipes import parse_alphas

    make = spec_factory(recipe, base, cpt, instruct, lang, model, weight, tokenizer_from)
    alphas = parse_alphas(alpha)
    names = opts.task_names()
    run_opts = opts.run_config()
    out = run_opts.pop("out")
    from evalkit.merge.sweep import run_sweep, select_best

    ex = make_executor(executor, ray_address, no_shared_out, cpus_per_unit, max_retries)
    points = run_sweep(make, alphas, names, out, keep=keep, with_inputs=with_inputs,
                       merged_dir=merged_dir, dtype=merge_dtype,
                       allow_config_diff=allow_config_diff, run_options=run_opts,
                       executor=ex, show_progress=opts.output_format() == "table")
    best = select_best(points, select) if select else None
    if opts.output_format() == "json":
        typer.echo(json.dumps({"points": [p.__dict__ for p in points],
                               "best": best.label if best else None}, default=str))
        return
    _print_sweep(points)
    if select:
        typer.echo(f"best by {select}: {best.label if best else 'no point reports it'}")
    typer.echo(f"report: {out}/sweeps/{recipe}.json; leaderboards: {out}/leaderboards/")


def _print_sweep(points: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    tasks = list(dict.fromkeys(t for p in points for t in p.metrics))
    for task in tasks:
        metrics = list(dict.fromkeys(m for p in points for m in p.metrics.get(task, {})))
        table = Table(title=task, title_justify="left")
        table.add_column("model")
        for m in metrics:
            table.add_column(m, justify="right")
        for p in points:
            vals = p.metrics.get(task, {})
            table.add_row(p.label, *("" if vals.get(m) is None else f"{vals[m]:.4g}"
                                     for m in metrics))
        Console().print(table)


def register(app: typer.Typer) -> None:
    """Add `merge` and `sweep` to the evalkit CLI."""
    app.command("merge")(merge_cmd)
    app.command("sweep")(sweep_cmd)
