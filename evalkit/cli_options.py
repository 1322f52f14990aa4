"""The options every evaluating command shares (`run`, `sweep`, `grid`), declared once.

A command declares only its own parameters and takes ``opts: RunOptions``; the decorator
:func:`with_run_options` adds every shared option to its signature (typer reads
``__signature__``) and hands them over bundled. A command can therefore never lack an option
that ``evalkit run`` has (a test compares their parameters), which is how copied option lists
drift apart.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import typer

from evalkit.errors import BadInput


@dataclass
class RunOptions:
    """Shared options as given on the command line (see each option's help)."""

    tasks: list[str]
    suite: list[str]
    backend: str
    limit: int | None
    seed: int
    out: Path
    data_dir: Path | None
    chat_template: str
    revision: str | None
    dtype: str | None
    device: str | None
    batch_size: str | None
    max_model_len: int | None
    max_new_tokens: int | None
    tensor_parallel_size: int | None
    data_parallel_size: int | None
    gpu_memory_utilization: float | None
    enforce_eager: bool | None
    prefix_caching: bool | None
    max_lora_rank: int | None
    engine: str | None
    option: list[str]
    leaderboard: bool
    as_json: bool
    format: str

    def output_format(self) -> str:
        """table | markdown | json (``--json`` is short for ``--format json``)."""
        fmt = "json" if self.as_json else self.format
        if fmt not in ("table", "markdown", "json"):
            raise BadInput(f"--format must be table, markdown or json, not {fmt!r}")
        return fmt

    def task_names(self) -> list[str]:
        """--tasks and --suite expanded into task names."""
        from evalkit.runner import expand_task_names

        return expand_task_names(self.tasks, self.suite)

    def backend_options(self) -> dict[str, Any]:
        """Backend config fields the user set. Unset ones stay unset (None on the command
        line), so the backend's own defaults apply and an option the chosen backend does not
        use is refused only when the user gave it (`evalkit.backends.factory.check_options`)."""
        opts: dict[str, Any] = {
            "dtype": self.dtype, "device": self.device,
            "batch_size": parse_batch_size(self.batch_size),
            "max_model_len": self.max_model_len,
            "tensor_parallel_size": self.tensor_parallel_size,
            "data_parallel_size": self.data_parallel_size,
            "gpu_memory_utilization": self.gpu_memory_utilization,
            "enforce_eager": self.enforce_eager, "enable_prefix_caching": self.prefix_caching,
            "max_lora_rank": self.max_lora_rank, "engine": self.engine}
        return {k: v for k, v in opts.items() if v is not None}

    def run_config(self) -> dict[str, Any]:
        """Keyword arguments for `evalkit.runner.RunConfig` / `evalkit.evaluate` (everything
        but the model, its adapters and the task names)."""
        from evalkit.backends.factory import TEST_ONLY, check_backend_options

        if self.chat_template not in ("auto", "on", "off"):
            raise BadInput(f"--chat-template must be auto, on or off, not {self.chat_template!r}")
        if self.backend in TEST_ONLY:
            raise BadInput(f"backend {self.backend!r} serves canned outputs to tests only; use "
                           "--backend hf or --backend vllm")
        # odd values fail here, before any merge, model load or unit starts
        from evalkit.runner import check_run_values

        check_run_values(self.limit, self.max_new_tokens, self.seed)
        backend_options = self.backend_options()
        check_backend_options(self.backend, backend_options)  # before any data or model loads
        return dict(backend=self.backend, limit=self.limit, seed=self.seed, out=self.out,
                    data_dir=self.data_dir, chat_template=self.chat_template,
                    revision=self.revision, backend_options=backend_options,
                    task_options=parse_task_options(self.option),
                    max_new_tokens=self.max_new_tokens, update_leaderboards=self.leaderboard)


def parse_batch_size(value: str | None) -> int | None:
    """``auto`` (or unset) → None (the backend sizes batches itself); else a positive int."""
    if value is None or value == "auto":
        return None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise BadInput(f"--batch-size must be a positive integer or auto, not {value!r}")
    return n


def parse_task_options(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings → dict; values parsed as JSON when they are JSON."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item or not item.split("=", 1)[0].strip():
            raise BadInput(f"option {item!r} must look like KEY=VALUE (e.g. judge=rule)")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except (json.JSONDecodeError, RecursionError, ValueError):
            out[k.strip()] = v
    return out


_SPECS: dict[str, tuple[Any, Any]] = {
    "tasks": (list[str], typer.Option([], "--tasks", "-t", help="Task names, comma-separated "
                                      "(e.g. flores:eng_Latn-nob_Latn).")),
    "suite": (list[str], typer.Option([], "--suite", "-s", help="Named task suite (saga, "
                                      "basque, llimba, ...).")),
    "backend": (str, typer.Option("hf", help="hf | vllm | a plugin.")),
    "limit": (int | None, typer.Option(None, help="Evaluate only the first N samples of "
                                          "each task (a partial run, marked as such).")),
    "seed": (int, typer.Option(0, help="Seed for sampling and bootstrap.")),
    "out": (Path, typer.Option(Path("runs"), help="Output directory (records, cache, "
                               "boards).")),
    "data_dir": (Path | None, typer.Option(None, help="Local data mirror (else "
                                              "$EVALKIT_DATA_DIR, else ../shared/data).")),
    "chat_template": (str, typer.Option("auto", help="auto | on | off.")),
    "revision": (str | None, typer.Option(None, help="Hub revision of the model.")),
    "dtype": (str | None, typer.Option(None, help="auto | float32 | bfloat16 | float16 "
                                          "(default: auto).")),
    "device": (str | None, typer.Option(None, help="auto | cpu | cuda | cuda:1 (default: "
                                           "auto).")),
    "batch_size": (str | None, typer.Option(None, help="Fixed batch size, or auto "
                                               "(default: sized by the backend).")),
    "max_model_len": (int | None, typer.Option(None, help="Context length cap.")),
    "max_new_tokens": (int | None, typer.Option(None, help="Cap on new tokens for every "
                                                   "generation request (recorded).")),
    "tensor_parallel_size": (int | None, typer.Option(None, help="vLLM tensor parallelism "
                                                         "(default: 1).")),
    "data_parallel_size": (int | None, typer.Option(None, help="vLLM data parallelism "
                                                       "(default: 1).")),
    "gpu_memory_utilization": (float | None, typer.Option(None, help="vLLM GPU memory "
                                                             "share (default: 0.85).")),
    "enforce_eager": (bool | None, typer.Option(None, "--enforce-eager/--no-enforce-eager",
                                                   help="vLLM: no CUDA graphs (default: on "
                                                   "for CPU, off for GPU).")),
    "prefix_caching": (bool | None, typer.Option(None, "--prefix-caching/--no-prefix-caching",
                                                    help="vLLM automatic prefix caching "
                                                    "(default: on).")),
    "max_lora_rank": (int | None, typer.Option(None, help="vLLM: override the LoRA rank "
                                                  "read from the adapters' configs.")),
    "engine": (str | None, typer.Option(None, help="hf: auto | native | transformers — "
                                       "native is evalkit's Llama forward pass, bitwise equal "
                                       "to transformers and faster; auto uses it where it "
                                       "applies (default: auto).")),
    "option": (list[str], typer.Option([], "--option", "-o", help="Task option KEY=VALUE "
                                       "(e.g. judge=rule).")),
    "leaderboard": (bool, typer.Option(True, help="Update the leaderboards the results "
                                       "belong to.")),
    "as_json": (bool, typer.Option(False, "--json", help="Print results as JSON lines (same as "
                                   "--format json).")),
    "format": (str, typer.Option("table", "--format", help="How the final results print: "
                                 "table | markdown (pastes into a paper or wiki) | json.")),
}
assert set(_SPECS) == {f.name for f in fields(RunOptions)}


def with_run_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add every shared option to a command that takes ``opts: RunOptions``."""
    sig = inspect.signature(fn, eval_str=True)
    own = [p for n, p in sig.parameters.items() if n != "opts"]
    taken = {p.name for p in own}
    shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                annotation=ann)
              for name, (ann, default) in _SPECS.items() if name not in taken]

    @functools.wraps(fn)
    def wrapper(**kwargs: Any) -> Any:
        opts = RunOptions(**{k: kwargs.pop(k) for k in _SPECS})
        return fn(**kwargs, opts=opts)

    wrapper.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=[p.replace(kind=inspect.Parameter.KEYWORD_ONLY) if p.kind ==
                    inspect.Parameter.POSITIONAL_OR_KEYWORD else p for p in own] + shared)
    return wrapper
