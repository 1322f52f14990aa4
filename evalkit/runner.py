"""The runner: tasks → requests → one backend pass per model → records → summaries.

Generation and scoring are separate stages. Every finished request is appended to the
generation store the moment it returns (see `evalkit.store`), so a killed run resumes without
regenerating anything; scoring then reads outputs only, and `rescore_run` repeats it from saved
sample records without a model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from evalkit.backends.factory import make_backend
from evalkit.chat import ChatMode, ChatRenderer
from evalkit.data import DataLayer
from evalkit.errors import BadInput, EvalkitError, Interrupted
from evalkit.locks import exclusive, model_lock
from evalkit.models import AdapterRef, ModelRef, Variant, resolve_adapters, resolve_model
from evalkit.paths import ensure_writable_dir
from evalkit.progress import ProgressFn
from evalkit.records import (
    RunInfo,
    RunSummary,
    SampleRecord,
    read_lines,
    read_summaries,
    write_task_records,
)
from evalkit.registry import SUITES, load_task
from evalkit.store import GenerationStore, output_from_json, request_key
from evalkit.types import (
    Generation,
    GenRequest,
    LoglikRequest,
    Output,
    Prompt,
    Sample,
    ScoringContext,
    Task,
)

__all__ = ["RunConfig", "expand_task_names", "load_task", "make_backend", "plan_task",
           "rescore_run", "run"]


def expand_task_names(tasks: Sequence[str] = (), suites: Sequence[str] = ()) -> list[str]:
    """Task names from --tasks (comma lists allowed) and --suite, de-duplicated in order."""
    names: list[str] = []
    for s in suites:
        if s not in SUITES:
            import difflib

            hint = difflib.get_close_matches(s, list(SUITES), n=3, cutoff=0.5)
            raise EvalkitError(f"unknown suite {s!r}"
                               + (f"; did you mean {', '.join(hint)}?" if hint else "")
                               + f" (suites: {', '.join(sorted(SUITES))})")
        names += SUITES[s]
    for t in tasks:
        names += [x.strip() for x in t.split(",") if x.strip()]
    seen: dict[str, None] = {}
    for n in names:
        seen.setdefault(n, None)
    if not seen:
        raise BadInput("no tasks selected; pass --tasks NAME[,NAME] or --suite NAME "
                       "(`evalkit tasks` lists them)")
    return list(seen)


def check_run_values(limit: int | None, max_new_tokens: int | None, seed: int) -> None:
    """The run options every command shares: a one-line error for an odd value."""
    if limit is not None and limit < 1:
        raise BadInput(f"--limit must be a positive number of samples per task, got "
                       f"{limit}; leave it out to evaluate every sample")
    if max_new_tokens is not None and max_new_tokens < 1:
        raise BadInput(f"--max-new-tokens must be at least 1, got {max_new_tokens}")
    if seed < 0:
        raise BadInput(f"--seed must be 0 or more, got {seed}")


@dataclass
class RunConfig:
    """Everything `evalkit run` needs; mirrors the CLI options."""

    model: str
    tasks: list[str]
    adapters: list[str] = field(default_factory=list)
    merge_adapter: bool = False
    include_base: bool = True
    backend: str = "hf"
    limit: int | None = None
    seed: int = 0
    out: Path = Path("runs")
    data_dir: Path | None = None
    chat_template: ChatMode = "auto"
    revision: str | None = None
    backend_options: dict[str, Any] = field(default_factory=dict)
    task_options: dict[str, Any] = field(default_factory=dict)
    update_leaderboards: bool = True  # read by the commands that refresh boards, not here
    max_new_tokens: int | None = None  # caps every generation request (recorded in gen_params)

    def validate(self) -> None:
        """Odd values fail here, before any model or data loads."""
        check_run_values(self.limit, self.max_new_tokens, self.seed)
        if self.merge_adapter and len(self.adapters) != 1:
            raise BadInput("--merge-adapter needs exactly one --adapter")
        if not self.include_base and not self.adapters:
            raise BadInput("--no-base leaves nothing to evaluate without --adapter")


@dataclass
class _Planned:
    task: Task
    samples: list[Sample]
    chat: bool
    # per sample: list of (request, rendered prompt or None)
    requests: list[list[GenRequest | LoglikRequest]]


def plan_task(task: Task, data: DataLayer, renderer: ChatRenderer | None, limit: int | None,
              seed: int, max_new_tokens: int | None = None) -> _Planned:
    """Load a task's samples and turn them into backend requests (rendered prompts)."""
    samples = task.samples(data)
    if limit is not None:
        samples = samples[:limit]
    chat = renderer.use_chat(bool(getattr(task, "prefers_chat", False))) if renderer else False
    per_sample: list[list[GenRequest | LoglikRequest]] = []
    for s in samples:
        reqs: list[GenRequest | LoglikRequest] = []
        for r in task.requests(s, chat):
            if isinstance(r, LoglikRequest):
                reqs.append(r)
                continue
            prompt, params = r
            if params.seed is None and not params.greedy:
                params = replace(params, seed=seed + params.seed_offset, seed_offset=0)
            if max_new_tokens is not None and params.max_new_tokens > max_new_tokens:
                params = replace(params, max_new_tokens=max_new_tokens)
            text, special = renderer.render(prompt, chat) if renderer else (_plain(prompt), True)
            reqs.append(GenRequest(text, params, None, special))
        per_sample.append(reqs)
    return _Planned(task, samples, chat, per_sample)


def _plain(prompt: Prompt) -> str:
    return prompt if isinstance(prompt, str) else "\n".join(m.content for m in prompt)


def _for_variant(req: GenRequest | LoglikRequest, v: Variant) -> GenRequest | LoglikRequest:
    return replace(req, adapter=v.backend_adapter)


def plan_variants(model: ModelRef, adapters: list[AdapterRef], cfg: RunConfig) -> list[Variant]:
    """The variants a run evaluates: base (unless --no-base) and each adapter, or the merge."""
    if cfg.merge_adapter:
        return [Variant(model, adapters[0], merged=True)]
    variants = [Variant(model, None)] if cfg.include_base or not adapters else []
    return variants + [Variant(model, a) for a in adapters]


def run(cfg: RunConfig, progress: ProgressFn | None = None,
        notify: Callable[[str], None] | None = None) -> list[RunSummary]:
    """Evaluate every variant on every task; returns the summaries written.

    `notify` receives one-line notes meant for the user (a stale store, a partial run).
    Board refreshes are the caller's business (the `run` command, `evalkit.api.evaluate`).
    """
    cfg.validate()
    out = Path(cfg.out)
    ensure_writable_dir(out)
    tasks = [load_task(n) for n in cfg.tasks]
    for t in tasks:  # options a task can vet cheaply fail now, before any generation
        check = getattr(t, "check_options", None)
        if check is not None:
            check(cfg.task_options)
    model = resolve_model(cfg.model, cfg.revision, cfg.data_dir)
    adapters = resolve_adapters(list(cfg.adapters))
    variants = plan_variants(model, adapters, cfg)
    data = DataLayer(cfg.data_dir)
    renderer = _renderer(model, cfg)
    plans = []
    for i, t in enumerate(tasks):  # reading data shows as a stage of its own
        if progress:
            progress("reading task data", i, len(tasks))
        plans.append(plan_task(t, data, renderer, cfg.limit, cfg.seed, cfg.max_new_tokens))
    if progress:
        progress("reading task data", len(tasks), len(tasks))
    with exclusive(model_lock(out, model.hash), what=f"{out} ({model.name})", notify=notify):
        store = GenerationStore(out / "cache" / "generations.jsonl")
        if store.stale and notify:
            notify(f"{store.stale} generation(s) in {store.path} come from an older evalkit "
                   "store format and are not reused (that format could confuse adapters "
                   "sharing a directory name); they will be generated again")
        if cfg.limit is not None and notify:
            notify(f"--limit {cfg.limit}: a partial run; its records say limit={cfg.limit} "
                   "and boards mark it, never compare it silently with full runs")
        try:
            _generate_all(cfg, model, adapters, variants, plans, store, progress)
            summaries = [score_variant(cfg, v, p, store, data, renderer, out, progress)
                         for v in variants for p in plans]
        finally:
            store.close()
    return summaries


def _renderer(model: ModelRef, cfg: RunConfig) -> ChatRenderer | None:
    if cfg.backend == "scripted":
        return ChatRenderer(None, "off", model.name)
    from evalkit.chat import load_chat_tokenizer

    return ChatRenderer(load_chat_tokenizer(model.path, model.name), cfg.chat_template,
                        model.name)


def _keys(v: Variant, reqs: Sequence[GenRequest | LoglikRequest]) -> list[str]:
    return [request_key(v.model.hash, v.adapter.hash if v.adapter else None, r, v.merged)
            for r in reqs]


def _generate_all(cfg: RunConfig, model: ModelRef, adapters: list[AdapterRef],
                  variants: list[Variant], plans: list[_Planned], store: GenerationStore,
                  progress: ProgressFn | None) -> None:
    """One backend, one generate call and one loglik call for everything not yet stored."""
    todo_gen: dict[str, GenRequest] = {}
    todo_ll: dict[str, LoglikRequest] = {}
    for v in variants:
        for p in plans:
            for reqs in p.requests:
                vreqs = [_for_variant(r, v) for r in reqs]
                for key, r in zip(_keys(v, reqs), vreqs):
                    if key in store:
                        continue
                    if isinstance(r, GenRequest):
                        todo_gen.setdefault(key, r)
                    else:
                        todo_ll.setdefault(key, r)
    if not todo_gen and not todo_ll:
        return
    loading = f"loading {model.name} ({cfg.backend})"
    if progress:
        progress(loading, 0, 1)
    backend = make_backend(cfg.backend, model, adapters, cfg.merge_adapter,
                           cfg.backend_options, cfg.seed)
    if progress:
        progress(loading, 1, 1)
    total = len(todo_gen) + len(todo_ll)
    done = 0
    try:
        for label, todo, call in (("generating", todo_gen, backend.generate),
                                  ("log-likelihoods", todo_ll, backend.loglikelihood)):
            if not todo:
                continue
            keys, reqs = list(todo), list(todo.values())
            n = tokens = 0
            if progress:
                progress(label, 0, len(reqs))
            with contextlib.closing(call(reqs)) as stream:
                for idx, outp in stream:
                    store.put(keys[idx], outp)
                    n += 1
                    done += 1
                    if progress:
                        if isinstance(outp, Generation):
                            tokens += sum(outp.n_tokens)
                            progress(label, n, len(reqs), tokens=tokens)
                        else:
                            progress(label, n, len(reqs))
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: {done} of {total} missing generations were finished "
                          f"and are stored in {store.path}; rerun the same command to resume "
                          "(stored work is not redone)") from None
    finally:
        backend.close()


def score_variant(cfg: RunConfig, v: Variant, p: _Planned, store: GenerationStore,
                  data: DataLayer, renderer: ChatRenderer | None, out: Path,
                  progress: ProgressFn | None) -> RunSummary:
    """Score one task for one variant from stored outputs; write records and summary."""
    outputs: list[list[Output]] = []
    for reqs in p.requests:
        outputs.append([store.get(k) for k in _keys(v, reqs)])
    adapter_check = _adapter_check(v, p, store, outputs)
    label = f"scoring {p.task.name}" + (f" ({v.adapter.display})" if v.adapter else "")
    step = (lambda done, total: progress(label, done, total)) if progress else None
    ctx = ScoringContext(options=cfg.task_options, data=data, seed=cfg.seed, progress=step)
    if step:
        step(0, len(p.samples))
    scored = p.task.score(p.samples, outputs, ctx)
    if step:
        step(len(p.samples), len(p.samples))
    chat = {"chat_applied": p.chat, "chat_template_sha256":
            renderer.template_sha256 if renderer else None}
    if adapter_check is not None:
        scored.meta["adapter_check"] = adapter_check
    info = RunInfo(backend=cfg.backend, seed=cfg.seed, data_hashes=data.hashes, chat=chat,
                   limit=cfg.limit)
    return write_task_records(out / v.slug, v, p.task, p.samples, p.requests, outputs, scored,
                              info)


def _adapter_check(v: Variant, p: _Planned, store: GenerationStore,
                   outputs: list[list[Output]]) -> dict[str, Any] | None:
    """How many of an adapter's outputs differ from the base model's on the same requests.

    Peers have silently evaluated the base model when an adapter failed to load (lm-eval
    #2432); an adapter that changes nothing is flagged in the summary. Needs the base
    model's outputs in the store (evaluated in this run or an earlier one).
    """
    if v.adapter is None:
        return None
    base = Variant(v.model, None)
    compared = changed = 0
    for reqs, outs in zip(p.requests, outputs):
        for key, out in zip(_keys(base, reqs), outs):
            if key in store:
                compared += 1
                changed += store.get(key) != out
    if compared == 0:
        return {"compared": 0, "changed": 0, "note": "base outputs not available"}
    return {"compared": compared, "changed": changed,
            "warning": "adapter changed no output" if changed == 0 else None}


def rescore_run(run_dir: Path, data_dir: Path | None = None,
                task_options: dict[str, Any] | None = None, seed: int | None = None
                ) -> list[RunSummary]:
    """Re-score a variant directory's saved generations (no model needed).

    `seed` drives the scoring's resampling (CIs) and seeded fallbacks; by default the seed the
    run was made with. It cannot change the saved generations: re-run to sample anew.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "samples").is_dir():
        raise BadInput(f"{run_dir} is not a run directory (no samples/); pass a directory "
                       "written by `evalkit run` (e.g. runs/<model>-<hash>)")
    data = DataLayer(data_dir)
    out: list[RunSummary] = []
    if not any((run_dir / "samples").glob("*.jsonl")):
        raise BadInput(f"{run_dir}: no sample records in samples/; nothing to re-score")
    old = {s.task: s for s in read_summaries(run_dir)}
    jobs = []  # read and check every task first: nothing is rewritten unless all are sound
    for f in sorted((run_dir / "samples").glob("*.jsonl")):
        recs = read_lines(f, SampleRecord, "sample", strict=True)
        if not recs:
            raise BadInput(f"{f}: no sample records; re-run `evalkit run` for this task "
                           "(stored generations are reused)")
        task = load_task(recs[0].task)
        by_id = {s.id: s for s in task.samples(data)}
        missing = [r.sample_id for r in recs if r.sample_id not in by_id]
        if missing:
            raise BadInput(f"{f}: sample ids {missing[:3]} are not in task {task.name} "
                           "(data changed?); re-run instead of re-scoring")
        jobs.append((task, recs, [by_id[r.sample_id] for r in recs]))
    with exclusive(model_lock(run_dir.parent, jobs[0][1][0].model_hash), what=str(run_dir)):
        for task, recs, samples in jobs:
            out.append(_rescore_one(run_dir, task, recs, samples, old.get(task.name), data,
                                    task_options, seed))
    return out


def _rescore_one(run_dir: Path, task: Task, recs: list[SampleRecord], samples: list[Sample],
                 prev: RunSummary | None, data: DataLayer, task_options: dict[str, Any] | None,
                 seed: int | None) -> RunSummary:
    """Score one task's saved outputs again and rewrite its records."""
    outputs = [[output_from_json(o) for o in r.outputs] for r in recs]
    use_seed = seed if seed is not None else (prev.seed if prev else 0)
    scored = task.score(samples, outputs, ScoringContext(options=task_options or {},
                                                         data=data, seed=use_seed))
    r0 = recs[0]
    v = Variant(ModelRef(r0.model, "", r0.model_hash),
                AdapterRef(r0.adapter, "", r0.adapter_hash or "", 0, None, {},
                           label=r0.adapter_label or "") if r0.adapter else None)
    requests = [[GenRequest(p) for p in r.prompts] for r in recs]
    info = RunInfo(backend=prev.backend if prev else "rescored", seed=use_seed,
                   data_hashes=data.hashes, chat=prev.chat_template if prev else {},
                   limit=prev.limit if prev else None,
                   gen_params=prev.gen_params if prev else [])
    return write_task_records(run_dir, v, task, samples, requests, outputs, scored, info)
