"""The `evalkit` command line: a thin typer layer over `evalkit.runner` and friends.

Heavy modules (torch, transformers, vllm, spacy, stanza) are imported inside command bodies
only, so ``evalkit --help`` starts instantly (a test guards this). Every user-fixable problem
is an `EvalkitError`: one line on stderr, exit code 2, no traceback.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import typer

from evalkit.cli_options import RunOptions, parse_task_options, with_run_options
from evalkit.errors import BadInput, EvalkitError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Evaluate LLM checkpoints and adapters for low-resource languages.")

# Sub-commands contributed by other modules: each exposes `register(app)`. Importing them must
# stay light (typer only).
_PLUGINS = [
    "evalkit.cli_oracle",
    "evalkit.leaderboard.cli",
    "evalkit.merge.cli",
    "evalkit.dpo.cli",
    "evalkit.grid.cli",
    "evalkit.compare",
    "evalkit.view",
    "evalkit.export",
]


@app.command()
@with_run_options
def run(
    model: str = typer.Argument(..., help="Local checkpoint dir, hub id, or a named model: "
                                "'default' (the tiny embedded model shipped with evalkit), "
                                "'smollm2-135m-instruct'."),
    adapter: list[str] = typer.Option([], "--adapter", "-a", help="LoRA adapter dir or hub id, "
                                      "optionally labelled NAME=PATH; repeat to evaluate "
                                      "several in one pass."),
    merge_adapter: bool = typer.Option(False, help="Merge the (single) adapter into the weights "
                                       "before evaluating."),
    base: bool = typer.Option(True, help="Also evaluate the base model when adapters are given."),
    wandb_project: str | None = typer.Option(None, "--wandb-project", help="Also log the "
                                                "summaries, comparison, board and a samples "
                                                "table to this Weights & Biases project "
                                                "(pip install 'evalkit[wandb]'; WANDB_MODE="
                                                "offline works without an account)."),
    *,
    opts: RunOptions,
) -> None:
    """Evaluate MODEL (and adapters) on tasks; write records; print a results table."""
    kwargs = opts.run_config()
    names = opts.task_names()
    from evalkit.api import evaluate
    from evalkit.progress import Progress

    def note(msg: str) -> None:
        typer.echo(f"evalkit: warning: {msg}", err=True)

    with Progress(disable=opts.output_format() != "table") as bar:
        res = evaluate(model, names, adapter, leaderboards=opts.leaderboard,
                       progress=bar.update, notify=note, merge_adapter=merge_adapter,
                       include_base=base, **kwargs)
    view_page = res.view_page
    if wandb_project:
        from evalkit.export.wandb import log_run

        where = log_run(res.summaries, res.out, wandb_project, res.board_files)
        typer.echo(f"wandb: {where}", err=opts.output_format() != "table")
    if opts.output_format() == "json":
        for s in res.summaries:
            print(s.model_dump_json())
        return
    if opts.output_format() == "markdown":
        from evalkit.report import to_markdown

        typer.echo(to_markdown(res.summaries))
        return
    from evalkit.compare import print_run_comparison
    from evalkit.report import print_table

    # base + adapters: each adapter compared with the base (Δ, CI, paired p, Holm)
    if not print_run_comparison(res.summaries, res.out):
        print_table(res.summaries)
    if "saga" in opts.suite:  # SAGA's seven-column layout, base vs adapters side by side
        from evalkit.saga_table import print_saga_table

        print_saga_table(res.summaries)
    for d in sorted(set(res.variant_dirs.values())):
        typer.echo(f"records: {d}/samples/*.jsonl, {d}/summary.jsonl")
    for page in res.board_files:
        typer.echo(f"leaderboard: {page}")
    if view_page:
        typer.echo(f"samples: {view_page}")


@app.command("tasks")
def list_tasks(lm_eval: bool = typer.Option(False, "--lm-eval", help="Also list "
                                            "lm-evaluation-harness tasks (slow: indexes them).")
               ) -> None:
    """List task families and suites."""
    import shutil
    import textwrap

    from evalkit.registry import SUITES, TASKS

    rows = [(name, TASKS.doc(name)) for name in TASKS.names()]
    suites = [(name, ", ".join(members)) for name, members in sorted(SUITES.items())]
    width = max(len(name) for name, _ in rows + suites) + 2
    wrap = textwrap.TextWrapper(width=max(60, shutil.get_terminal_size().columns),
                                initial_indent=" " * width, subsequent_indent=" " * width,
                                break_on_hyphens=False)
    for i, block in enumerate((rows, suites)):
        if i:
            typer.echo("\nsuites:")
        for name, text in block:
            typer.echo(name.ljust(width) + wrap.fill(text)[width:])
    if lm_eval:
        mod = importlib.import_module("evalkit.tasks.lm_eval_bridge")
        typer.echo("\nlm-eval tasks (use as lm-eval:<name>):")
        for name in mod.list_lm_eval_tasks():
            typer.echo(f"  {name}")


@app.command()
def score(
    run_dir: Path | None = typer.Argument(None, help="A variant directory written by "
                                             "`evalkit run`, to re-score its generations."),
    task: str | None = typer.Option(None, help="Task to score external responses with."),
    responses: Path | None = typer.Option(None, help="JSONL: {id|prompt, response} per line."),
    data_dir: Path | None = typer.Option(None, help="Local data mirror."),
    option: list[str] = typer.Option([], "--option", "-o", help="Task option KEY=VALUE."),
    seed: int | None = typer.Option(None, help="Seed for resampling (CIs) and seeded "
                                       "fallbacks; default: the run's own seed (0 for "
                                       "external responses)."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics and per-sample scores "
                                 "as one JSON document."),
) -> None:
    """Re-score a run's saved generations, or score responses produced elsewhere."""
    opts = parse_task_options(option)
    if seed is not None and seed < 0:
        raise BadInput(f"--seed must be 0 or more, got {seed}")
    if responses is not None or task is not None:
        if responses is None or task is None:
            raise BadInput("external scoring needs both --task and --responses")
        from evalkit.external import score_responses

        t, ids, scored = score_responses(task, responses, data_dir, opts,
                                         seed=0 if seed is None else seed)
        metrics = {k: m.to_json() for k, m in scored.metrics.items()}
        if as_json:
            doc = {"task": t.name, "task_version": str(t.version), "metrics": metrics,
                   "meta": scored.meta,
                   "samples": [{"id": i, **sc} for i, sc in zip(ids, scored.per_sample)]}
            typer.echo(json.dumps(doc, ensure_ascii=False, default=str))
        else:
            from evalkit.report import print_metrics

            print_metrics(t.name, metrics)
        return
    if run_dir is None:
        raise BadInput("give a run directory, or --task and --responses")
    from evalkit.runner import rescore_run

    summaries = rescore_run(run_dir, data_dir, opts, seed=seed)
    if as_json:
        for s in summaries:
            typer.echo(s.model_dump_json())
    else:
        from evalkit.report import print_table

        print_table(summaries)


def _register_plugins() -> None:
    # every listed module ships with evalkit and imports only typer: a failure is a bug and
    # must show, not hide a command
    for mod_name in _PLUGINS:
        importlib.import_module(mod_name).register(app)


_register_plugins()


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops a run as cleanly as Ctrl-C


def _click_exceptions() -> tuple[Any, Any, Any]:
    """(UsageError, ClickException, Abort) of the click that typer runs on: recent typer
    releases vendor click as ``typer._click``; older ones use click itself."""
    try:
        from typer._click.exceptions import ClickException, UsageError
        from typer.exceptions import Abort
    except ImportError:  # pragma: no cover - typer before it vendored click
        from click.exceptions import (  # type: ignore[assignment]  # the same classes
            Abort,
            ClickException,
            UsageError,
        )
    return UsageError, ClickException, Abort


_INTERRUPTED = ("evalkit: interrupted; finished generations are saved, rerun the same command "
                "to resume")


def main() -> None:
    """Console entry point: EvalkitError → one line on stderr, exit 2 (130 when interrupted).

    SIGTERM stops a command like Ctrl-C while it runs; the caller's handlers are back when
    `main` returns or exits. (Left installed in an in-process caller, a Python-level SIGTERM
    handler is inherited by every process it forks, and a signal arriving between ``fork``
    and the child interpreter's reset is dropped: a multiprocessing pool's ``terminate`` then
    waits for that worker forever.)"""
    import signal

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGTERM, _terminate)
    # a command started in the background of a script inherits SIGINT ignored; `kill -INT`
    # must still stop a run cleanly (finished work kept, exit 130)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _main()
    finally:
        for sig, handler in before.items():
            if handler is not None:  # None: installed outside Python, cannot be restored
                signal.signal(sig, handler)


def _main() -> None:
    usage_error, click_error, abort = _click_exceptions()
    try:
        rc = app(standalone_mode=False)
    except EvalkitError as exc:
        typer.echo(f"evalkit: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, abort):
        typer.echo(_INTERRUPTED, err=True)
        sys.exit(130)
    except usage_error as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `evalkit`: help was printed
            sys.exit(0)
        ctx = getattr(exc, "ctx", None)
        cmd = ctx.command_path if ctx is not None else "evalkit"
        msg = " ".join(exc.format_message().split())
        typer.echo(f"evalkit: error: {msg} (see `{cmd} --help`)", err=True)
        sys.exit(2)
    except click_error as exc:
        typer.echo(f"evalkit: error: {' '.join(exc.format_message().split())}", err=True)
        sys.exit(exc.exit_code)
    if rc == 130:  # typer turns a KeyboardInterrupt it sees into exit code 130
        typer.echo(_INTERRUPTED, err=True)
    if isinstance(rc, int) and rc:
        sys.exit(rc)


def entry() -> None:
    """The ``evalkit`` console script (and ``python -m evalkit.cli``): :func:`main`, then
    :func:`quick_exit` once the command has succeeded. In-process callers use :func:`main`,
    which returns."""
    main()
    quick_exit(0)


#: modules whose teardown at interpreter exit is slow (torch alone ≈0.3 s on a 2-core machine)
_SLOW_TEARDOWN = ("torch", "langdetect", "lm_eval.tasks", "spacy", "stanza")


def quick_exit(code: int) -> None:
    """End the process without the interpreter's teardown, when that teardown is slow (for the
    console script only: it ends the whole process, an in-process caller included).

    With torch loaded, freeing every module and object at exit took ≈0.6 s of an IFEval run
    on the embedded model (BENCHMARKS.md). By now every file a command writes is closed
    (records go through unbuffered descriptors, the rest through ``with`` blocks); exit
    handlers (subprocess workers, logging) still run and the standard streams are flushed.
    Returns, leaving the normal exit to the caller, when nothing slow is loaded or when a
    non-daemon thread is still running (the normal exit waits for it).
    """
    import atexit
    import os
    import threading

    if not any(m in sys.modules for m in _SLOW_TEARDOWN):
        return
    main = threading.main_thread()
    if any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate()):
        return
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing more to flush
            pass
    os._exit(code)


if __name__ == "__main__":
    entry()
