"""`evalkit grid GRID.toml` (typer only at import; Ray and the models load inside the command)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import typer

from evalkit.cli_options import RunOptions, with_run_options
from evalkit.errors import BadInput, EvalkitError

# executor options, shared with `evalkit sweep`
EXECUTOR = typer.Option("local", "--executor", help="local: one unit after another in this "
                        "process; ray: one Ray task per unit across a cluster.")
RAY_ADDRESS = typer.Option(None, "--ray-address", help="Ray cluster to use (host:port or "
                           "ray://...; default $RAY_ADDRESS, else a local one-node cluster).")
NO_SHARED_OUT = typer.Option(False, "--no-shared-out", help="Ray workers cannot see --out: "
                             "they return their records and this process writes them "
                             "(detected automatically when a worker cannot see it).")
CPUS_PER_UNIT = typer.Option(1.0, "--cpus-per-unit", help="Ray: CPUs a unit declares on "
                             "CPU-only clusters (on GPUs it declares the engine's GPUs).")
MAX_RETRIES = typer.Option(3, "--max-retries", help="Ray: reruns of a unit whose worker or "
                           "node died (it resumes from the stored generations).")


def make_executor(executor: str, ray_address: str | None, no_shared_out: bool,
                  cpus_per_unit: float, max_retries: int, notify: Any = None) -> Any:
    """The executor named on the command line."""
    if executor == "local":
        if ray_address or no_shared_out:
            raise BadInput("--ray-address and --no-shared-out need --executor ray")
        from evalkit.grid.execute import LocalExecutor

        return LocalExecutor(notify=notify)
    if executor == "ray":
        from evalkit.grid.ray_exec import RayExecutor

        return RayExecutor(ray_address, shared_out=not no_shared_out,
                           cpus_per_unit=cpus_per_unit, max_retries=max_retries)
    raise BadInput(f"--executor must be local or ray, not {executor!r}")


def given_options(ctx: typer.Context) -> set[str]:
    """Shared run options the user set on the command line (not left at their defaults)."""
    sources = {f.name: ctx.get_parameter_source(f.name) for f in dataclasses.fields(RunOptions)}
    return {name for name, src in sources.items()
            if src is not None and src.name not in ("DEFAULT", "DEFAULT_MAP")}


def note(msg: str) -> None:
    """A one-line note on stderr."""
    typer.echo(f"evalkit: {msg}" if msg.startswith("grid:") else f"evalkit: warning: {msg}",
               err=True)


def report(result: Any, as_json: bool) -> None:
    """Print a grid's results, then fail (exit 2) when units failed."""
    from evalkit.grid.execute import print_failures

    if as_json:
        for s in result.summaries:
            print(s.model_dump_json())
    else:
        from evalkit.report import print_table

        print_table(result.summaries)
        ran = [o for o in result.outcomes if o.status == "done"]
        n = sum(o.n_samples for o in ran)
        typer.echo(f"grid: {len(result.outcomes)} unit(s): {len(ran)} run, "
                   f"{sum(o.status == 'skipped' for o in result.outcomes)} already done, "
                   f"{len(result.failed)} failed; {n} sample records in {result.seconds:.1f} s"
                   + (f" ({n / result.seconds:.1f} samples/s)" if n and result.seconds else ""))
        typer.echo(f"manifest: {result.manifest}")
        for page in result.board_files:
            typer.echo(f"leaderboard: {page}")
    if result.failed:
        print_failures(result)
        first = result.failed[0]
        label = result.labels.get(first.key, first.key)
        raise EvalkitError(f"{len(result.failed)} of {len(result.outcomes)} grid unit(s) "
                           f"failed (first: {label}: {first.error}); fix it and rerun the same "
                           "command (finished units are skipped)")


@with_run_options
def grid_cmd(
    ctx: typer.Context,
    grid_file: Path = typer.Argument(..., help="The grid (TOML): models with their adapters, "
                                     "merges with their alphas, tasks or suites, seeds, "
                                     "options (docs/grid.md)."),
    executor: str = EXECUTOR, ray_address: str | None = RAY_ADDRESS,
    no_shared_out: bool = NO_SHARED_OUT, cpus_per_unit: float = CPUS_PER_UNIT,
    max_retries: int = MAX_RETRIES,
    pipeline_parallel_size: int | None = typer.Option(
        None, help="vLLM pipeline parallelism (stages may sit on different nodes)."),
    distributed_executor_backend: str | None = typer.Option(
        None, help="vLLM's executor: ray (engine across nodes) or mp (one node)."),
    *,
    opts: RunOptions,
) -> None:
    """Evaluate a grid of base models × adapters/merges × tasks × seeds; finished units are
    skipped on rerun (every `evalkit run` option applies; the file's options table fills in
    the ones not given here)."""
    from evalkit.grid.execute import run_grid
    from evalkit.grid.plan import plan_from_file

    plan = plan_from_file(grid_file, opts, given_options(ctx),
                          {"pipeline_parallel_size": pipeline_parallel_size,
                           "distributed_executor_backend": distributed_executor_backend})
    ex = make_executor(executor, ray_address, no_shared_out, cpus_per_unit, max_retries, note)
    result = run_grid(plan, ex, show_progress=opts.output_format() == "table", notify=note)
    report(result, opts.output_format() == "json")


def register(app: typer.Typer) -> None:
    """Add `grid` to the evalkit CLI."""
    app.command("grid")(grid_cmd)
