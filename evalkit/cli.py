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
from typing import Any, Optional

import typer

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
]


def _parse_options(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise BadInput(f"option {item!r} must look like KEY=VALUE")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v
    return out


@app.command()
def run(
    model: str = typer.Argument(..., help="Local checkpoint dir, hub id, or 'default' (the "
                                "embedded model evalkit builds offline)."),
    adapter: list[str] = typer.Option([], "--adapter", "-a", help="LoRA adapter dir or hub id; "
                                      "repeat to evaluate several in one pass."),
    merge_adapter: bool = typer.Option(False, help="Merge the (single) adapter into the weights "
                                       "before evaluating."),
    base: bool = typer.Option(True, help="Also evaluate the base model when adapters are given."),
    tasks: list[str] = typer.Option([], "--tasks", "-t", help="Task names, comma-separated "
                                    "(e.g. flores:eng_Latn-nob_Latn)."),
    suite: list[str] = typer.Option([], "--suite", "-s", help="Named task suite (saga, basque, "
                                    "llimba, ...)."),
    backend: str = typer.Option("hf", help="hf | vllm | scripted | a plugin."),
    limit: Optional[int] = typer.Option(None, help="Evaluate only the first N samples of each task."),
    seed: int = typer.Option(0, help="Seed for sampling and bootstrap."),
    out: Path = typer.Option(Path("runs"), help="Output directory (records, cache, boards)."),
    data_dir: Optional[Path] = typer.Option(None, help="Local data mirror (else "
                                            "$EVALKIT_DATA_DIR, else ../shared/data)."),
    chat_template: str = typer.Option("auto", help="auto | on | off."),
    revision: Optional[str] = typer.Option(None, help="Hub revision of the model."),
    dtype: str = typer.Option("auto", help="auto | float32 | bfloat16 | float16."),
    device: str = typer.Option("auto", help="hf backend device (auto, cpu, cuda, cuda:1)."),
    batch_size: Optional[int] = typer.Option(None, help="Fixed batch size (default: by token budget)."),
    max_model_len: Optional[int] = typer.Option(None, help="Context length cap."),
    max_new_tokens: Optional[int] = typer.Option(None, help="Cap on new tokens for every "
                                                 "generation request (recorded)."),
    tensor_parallel_size: int = typer.Option(1, help="vLLM tensor parallelism."),
    data_parallel_size: int = typer.Option(1, help="vLLM data parallelism."),
    gpu_memory_utilization: float = typer.Option(0.85, help="vLLM GPU memory share."),
    enforce_eager: Optional[bool] = typer.Option(None, "--enforce-eager/--no-enforce-eager",
                                                 help="vLLM: no CUDA graphs (default: on for "
                                                 "CPU, off for GPU)."),
    prefix_caching: bool = typer.Option(True, help="vLLM automatic prefix caching."),
    max_lora_rank: Optional[int] = typer.Option(None, help="vLLM: override the LoRA rank read "
                                                "from the adapters' configs."),
    option: list[str] = typer.Option([], "--option", "-o", help="Task option KEY=VALUE "
                                     "(e.g. judge=rule)."),
    leaderboard: bool = typer.Option(True, help="Update leaderboards this run belongs to."),
    as_json: bool = typer.Option(False, "--json", help="Print summaries as JSON lines."),
) -> None:
    """Evaluate MODEL (and adapters) on tasks; write records; print a results table."""
    if chat_template not in ("auto", "on", "off"):
        raise BadInput("--chat-template must be auto, on or off")
    from evalkit.runner import RunConfig, expand_task_names
    from evalkit.runner import run as run_tasks

    names = expand_task_names(tasks, suite)
    backend_options: dict[str, Any] = {
        "dtype": dtype, "device": device, "batch_size": batch_size, "max_model_len": max_model_len,
        "tensor_parallel_size": tensor_parallel_size, "data_parallel_size": data_parallel_size,
        "gpu_memory_utilization": gpu_memory_utilization, "enforce_eager": enforce_eager,
        "enable_prefix_caching": prefix_caching, "max_lora_rank": max_lora_rank}
    # unset options stay unset, so backends can tell a default from a user's choice
    backend_options = {k: v for k, v in backend_options.items() if v is not None}
    cfg = RunConfig(model=model, tasks=names, adapters=adapter, merge_adapter=merge_adapter,
                    include_base=base, backend=backend, limit=limit, seed=seed, out=out,
                    data_dir=data_dir, chat_template=chat_template,  # type: ignore[arg-type]
                    revision=revision, backend_options=backend_options,
                    task_options=_parse_options(option), update_leaderboards=leaderboard,
                    max_new_tokens=max_new_tokens)
    from evalkit.progress import Progress

    with Progress(disable=as_json) as bar:
        summaries = run_tasks(cfg, progress=bar.update)
    if as_json:
        for s in summaries:
            print(s.model_dump_json())
        return
    from evalkit.report import print_table

    print_table(summaries)
    if "saga" in suite:  # SAGA's seven-column layout, base vs adapters side by side
        from evalkit.saga_table import print_saga_table

        print_saga_table(summaries)
    typer.echo(f"records: {out}/<model>-<hash>/samples/*.jsonl, summaries: summary.jsonl")


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
    run_dir: Optional[Path] = typer.Argument(None, help="A variant directory written by "
                                             "`evalkit run`, to re-score its generations."),
    task: Optional[str] = typer.Option(None, help="Task to score external responses with."),
    responses: Optional[Path] = typer.Option(None, help="JSONL: {id|prompt, response} per line."),
    data_dir: Optional[Path] = typer.Option(None, help="Local data mirror."),
    option: list[str] = typer.Option([], "--option", "-o", help="Task option KEY=VALUE."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics and per-sample scores "
                                 "as one JSON document."),
) -> None:
    """Re-score a run's saved generations, or score responses produced elsewhere."""
    opts = _parse_options(option)
    if responses is not None or task is not None:
        if responses is None or task is None:
            raise BadInput("external scoring needs both --task and --responses")
        from evalkit.external import score_responses

        t, ids, scored = score_responses(task, responses, data_dir, opts)
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

    summaries = rescore_run(run_dir, data_dir, opts)
    if as_json:
        for s in summaries:
            typer.echo(s.model_dump_json())
    else:
        from evalkit.report import print_table

        print_table(summaries)


def _register_plugins() -> None:
    for mod_name in _PLUGINS:
        try:
            mod = importlib.import_module(mod_name)
        except ImportError as exc:
            if exc.name and (mod_name.startswith(exc.name) or exc.name.startswith(mod_name)):
                continue  # that part of evalkit is not present in this build
            raise
        mod.register(app)


_register_plugins()


def main() -> None:
    """Console entry point: EvalkitError → one line on stderr, exit 2."""
    try:
        app(standalone_mode=True)
    except EvalkitError as exc:
        typer.echo(f"evalkit: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("evalkit: interrupted; finished generations are saved, rerun to resume",
                   err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
