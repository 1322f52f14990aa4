"""Any lm-evaluation-harness task (or group) answered by evalkit's backends, scored by lm-eval.

Name: ``lm-eval:<task or group>[@<dir>[;<dir>…]]``. Tasks are loaded through lm-eval's own
``TaskManager``, lazily: only the named task is built, and the ~14,700 built-in task files are
indexed only when the name is not found in the user's task directories. User task directories
(YAML files, as ``lm_eval --include_path`` takes them) come from the ``@`` suffix or from
``$EVALKIT_LM_EVAL_INCLUDE`` (``os.pathsep``-separated). Keep the ``@dir`` in the name when you
want ``evalkit rescore`` to find the task again without the environment variable.

How requests map (lm-eval ``Instance`` → evalkit request, in instance order, one ``Sample`` per
lm-eval document, ``--limit N`` = lm-eval's ``limit=N``, i.e. the first N documents):

- ``generate_until`` → ``GenRequest``: prompt ``args[0]``, ``until`` → stop strings (the backend
  also stops at EOS, as lm-eval adds the EOS string to ``until``), ``max_gen_toks`` (default 256,
  lm-eval's), ``do_sample``/``temperature`` (greedy unless ``do_sample`` is true), ``repeats`` →
  ``n``. Prompts are plain text (no chat template), as ``simple_evaluate`` without
  ``apply_chat_template``; the tokenizer's default special tokens are added, as lm-eval's hf model.
  (``--chat-template auto`` still applies the template for instruct-looking models: pass
  ``--chat-template off`` to reproduce lm-eval's default numbers on those.)
- ``loglikelihood`` → ``LoglikRequest(context, continuation)``: the hf backend pairs tokens exactly
  as lm-eval does (trailing context spaces move to the continuation, whole-text split).
- ``loglikelihood_rolling`` → ``LoglikRequest("", text)``: BOS (else EOS) as the only context,
  one window. lm-eval's hf model differs in two ways: it encodes the text with the tokenizer's
  default special tokens (so a BOS-adding tokenizer also scores BOS-after-BOS) and it splits texts
  longer than the model's context into rolling windows. Scores therefore equal lm-eval's only for
  tokenizers that add no BOS and documents shorter than the context; a documented deviation.

Scoring is lm-eval's: the outputs go back into the instances (``inst.resps``), lm-eval's filters
run (``task.apply_filters()``), ``task.process_results(doc, filtered)`` per document and filter,
``task.aggregation()[metric]`` per metric → ``MetricValue`` named ``<metric>,<filter>`` (lm-eval's
key; prefixed ``<subtask>/`` for groups; no group-level aggregate). Standard errors are lm-eval's
closed-form ones (``mean``…); bootstrap ones (BLEU, chrF, F1…) only with the task option
``lm_eval_bootstrap_iters=N``. The task version carries lm-eval's task version and a hash of the
task's resolved config, so editing the YAML invalidates resumed results and leaderboards.
"""

from __future__ import annotations

import difflib
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from evalkit.errors import BadInput, EvalkitError
from evalkit.metrics import Metric
from evalkit.types import (
    Generation,
    GenParams,
    LoglikRequest,
    LoglikResult,
    MetricValue,
    Output,
    Sample,
    ScoredTask,
    ScoringContext,
    stable_hash,
)

ENV_INCLUDE = "EVALKIT_LM_EVAL_INCLUDE"
BRIDGE_VERSION = "1"
#: dataset builders that read local files (anything else is a hub dataset id)
_LOCAL_BUILDERS = {"json", "csv", "text", "parquet", "arrow", "pandas"}


def _include_paths(name: str) -> tuple[str, list[str]]:
    """Split ``task@dir;dir`` and add ``$EVALKIT_LM_EVAL_INCLUDE``; check the dirs exist."""
    task, _, suffix = name.partition("@")
    dirs = [d for d in suffix.split(";") if d]
    dirs += [d for d in os.environ.get(ENV_INCLUDE, "").split(os.pathsep) if d]
    for d in dirs:
        if not os.path.isdir(d):
            raise BadInput(f"lm-eval include path {d!r} is not a directory; pass an existing "
                           f"task directory after '@' or in ${ENV_INCLUDE}")
    return task, dirs


def code_in_task_dirs(dirs: Sequence[str]) -> list[str]:
    """``file: !function target`` for every ``!function`` tag in the YAML files of `dirs`.

    lm-eval imports and runs such Python from the task folder; evalkit announces it before it
    happens and records it with the run, so nobody runs a stranger's task folder unawares.
    """
    import re
    from pathlib import Path

    found: list[str] = []
    for d in dirs:
        for f in sorted(Path(d).rglob("*.y*ml")):
            try:
                text = f.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            found += [f"{f}: !function {m}" for m in re.findall(r"!function\s+(\S+)", text)]
    return found


_ANNOUNCED: set[tuple[str, ...]] = set()


def _task_manager(task: str, dirs: list[str]) -> Any:
    """A TaskManager over the user dirs; lm-eval's built-ins only if the name is not there."""
    from lm_eval.tasks import TaskManager

    if dirs:
        tm = TaskManager(include_defaults=False, include_path=dirs)
        if task in tm.all_tasks:
            return tm
    tm = TaskManager(include_defaults=True, include_path=dirs or None)
    if task not in tm.all_tasks:
        hint = difflib.get_close_matches(task, tm.all_tasks, n=3, cutoff=0.6)
        raise BadInput(f"unknown lm-eval task {task!r}"
                       + (f"; did you mean {', '.join(hint)}?" if hint else "")
                       + " (`evalkit tasks --lm-eval` lists them; user YAML dirs go after '@' "
                       f"or in ${ENV_INCLUDE})")
    return tm


def _dataset_of(tm: Any, task: str) -> str | None:
    entry = tm.task_index.get(task)
    cfg = getattr(entry, "cfg", None) or {}
    return cfg.get("dataset_path")


def list_lm_eval_tasks() -> list[str]:
    """Every task, group and tag lm-eval knows (built-ins plus $EVALKIT_LM_EVAL_INCLUDE dirs)."""
    from lm_eval.tasks import TaskManager

    dirs = [d for d in os.environ.get(ENV_INCLUDE, "").split(os.pathsep) if d]
    return list(TaskManager(include_defaults=True, include_path=dirs or None).all_tasks)


def _gen_params(gen_kwargs: dict[str, Any], repeats: int) -> GenParams:
    """lm-eval's generation kwargs as evalkit sampling parameters (hf model defaults)."""
    until = gen_kwargs.get("until") or ()
    if isinstance(until, str):
        until = (until,)
    do_sample = bool(gen_kwargs.get("do_sample", False))
    temp = float(gen_kwargs.get("temperature", 0.0) or 0.0)
    if not do_sample:
        temp = 0.0
    elif temp <= 0.0:
        temp = 1.0  # transformers' default when sampling without a temperature
    return GenParams(max_new_tokens=int(gen_kwargs.get("max_gen_toks", 256)), temperature=temp,
                     top_p=float(gen_kwargs.get("top_p", 1.0) or 1.0),
                     stop=tuple(s for s in until if s), n=max(1, int(repeats)))


def _to_request(inst: Any) -> tuple[str, GenParams] | LoglikRequest:
    kind = inst.request_type
    if kind == "generate_until":
        return (inst.args[0], _gen_params(dict(inst.args[1] or {}), inst.repeats))
    if kind == "loglikelihood":
        return LoglikRequest(inst.args[0], inst.args[1])
    if kind == "loglikelihood_rolling":
        return LoglikRequest("", inst.args[0])
    raise EvalkitError(f"lm-eval request type {kind!r} is not supported by the bridge")


def _to_resps(inst: Any, out: Output) -> list[Any]:
    """An evalkit output in the shape lm-eval's hf model returns for this request type."""
    kind = inst.request_type
    if kind == "generate_until":
        if not isinstance(out, Generation):
            raise BadInput(f"lm-eval doc {inst.doc_id}: expected a generation, got {out!r}")
        return list(out.texts)
    if not isinstance(out, LoglikResult):
        raise BadInput(f"lm-eval doc {inst.doc_id}: expected a log-likelihood, got {out!r}")
    if kind == "loglikelihood":
        return [(out.logprob, out.is_greedy)]
    return [out.logprob]


def _jsonable(x: Any) -> Any:
    if x is None or isinstance(x, (str, int, float, bool)):
        return x
    if isinstance(x, (list, tuple)) and all(isinstance(v, (str, int, float, bool)) for v in x):
        return list(x)
    return str(x)


@dataclass
class LmEvalTask:
    """One lm-eval task or group; its lm-eval objects are built on first use."""

    name: str
    task: str
    include: list[str]
    language: str = "und"
    prefers_chat: bool = False
    description: str = ""
    _subtasks: dict[str, Any] | None = field(default=None, repr=False)
    _by_doc: dict[tuple[str, int], list[Any]] = field(default_factory=dict, repr=False)
    _docs: dict[tuple[str, int], Any] = field(default_factory=dict, repr=False)
    _version: str | None = field(default=None, repr=False)

    @property
    def version(self) -> str:
        """Bridge version + lm-eval task versions + hash of the resolved task configs."""
        if self._version is None:
            self._build()
        return self._version or BRIDGE_VERSION

    def _build(self) -> None:
        if self._subtasks is not None:
            return
        code = code_in_task_dirs(self.include)
        if code and tuple(code) not in _ANNOUNCED:
            import sys

            _ANNOUNCED.add(tuple(code))
            print(f"evalkit: warning: lm-eval task folder(s) {', '.join(self.include)} run Python "
                  f"code ({len(code)} !function tag(s), e.g. {code[0]}); recorded in the run's "
                  "summary (meta.runs_code)", file=sys.stderr)
        tm = _task_manager(self.task, self.include)
        try:
            loaded = tm.load(self.task)
        except Exception as exc:  # noqa: BLE001 - datasets raises many types offline
            ds = _dataset_of(tm, self.task)
            first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
            if ds and ds not in _LOCAL_BUILDERS:
                raise EvalkitError(
                    f"lm-eval task {self.task!r} needs dataset {ds!r} from the Hugging Face hub, "
                    f"which could not be loaded ({first}); run with network once to cache it, or "
                    "write a YAML task over local files (dataset_path: json) and pass its "
                    f"directory after '@' or in ${ENV_INCLUDE}") from None
            raise EvalkitError(f"lm-eval task {self.task!r} could not be built: {first}") from None
        subtasks = dict(sorted(loaded["tasks"].items()))
        versions: dict[str, Any] = {}
        for sub, t in subtasks.items():
            t.build_all_requests(limit=None, rank=0, world_size=1)
            for inst in t.instances:
                self._by_doc.setdefault((sub, inst.doc_id), []).append(inst)
            for insts in self._by_doc.values():
                insts.sort(key=lambda i: i.idx)
            for doc_id, doc in t.doc_iterator(rank=0, limit=None, world_size=1):
                self._docs[(sub, doc_id)] = doc
            meta = (t.config.metadata or {}) if hasattr(t, "config") else {}
            versions[sub] = {"version": meta.get("version", getattr(t, "VERSION", None)),
                             "config": t.dump_config()}
        self._subtasks = subtasks
        self._version = f"{BRIDGE_VERSION}+{stable_hash(versions)[:12]}"
        self._meta = {sub: {"lm_eval_version": v["version"],
                            "config_sha256": stable_hash(v["config"])}
                      for sub, v in versions.items()}

    def _sid(self, sub: str, doc_id: int) -> str:
        assert self._subtasks is not None
        return str(doc_id) if len(self._subtasks) == 1 else f"{sub}/{doc_id}"

    def samples(self, data: Any) -> list[Sample]:
        """One sample per lm-eval document, in lm-eval's document order."""
        self._build()
        out = []
        for (sub, doc_id), doc in self._docs.items():
            if (sub, doc_id) not in self._by_doc:
                continue
            ref = _jsonable(self._subtasks[sub].doc_to_target(doc))  # type: ignore[index]
            out.append(Sample(id=self._sid(sub, doc_id),
                              data={"subtask": sub, "doc_id": doc_id}, reference=ref))
        return out

    def requests(self, sample: Sample, chat: bool) -> list[Any]:
        """The document's lm-eval instances as evalkit requests, in instance order."""
        self._build()
        insts = self._by_doc[(sample.data["subtask"], sample.data["doc_id"])]
        return [_to_request(i) for i in insts]

    def score(self, samples: Sequence[Sample], outputs: Sequence[Sequence[Output]],
              ctx: ScoringContext) -> ScoredTask:
        """lm-eval's filters, per-document metrics and aggregations over these samples."""
        from lm_eval.api.metrics import mean, stderr_for_metric

        self._build()
        assert self._subtasks is not None
        iters = int(ctx.options.get("lm_eval_bootstrap_iters", 0))
        by_sub: dict[str, list[int]] = defaultdict(list)
        for k, s in enumerate(samples):
            by_sub[s.data["subtask"]].append(k)
        per_sample: list[dict[str, Any]] = [{} for _ in samples]
        metrics: dict[str, MetricValue] = {}
        for sub, ks in by_sub.items():
            t = self._subtasks[sub]
            chosen = []
            for k in ks:
                insts = self._by_doc[(sub, samples[k].data["doc_id"])]
                if len(insts) != len(outputs[k]):
                    raise BadInput(f"{self.name} sample {samples[k].id}: {len(outputs[k])} "
                                   f"outputs for {len(insts)} lm-eval requests")
                for inst, out in zip(insts, outputs[k]):
                    inst.resps = _to_resps(inst, out)
                    inst.filtered_resps = {}
                    chosen.append(inst)
            t._instances = chosen  # filters run over exactly the scored documents
            t.apply_filters()
            prefix = f"{sub}/" if len(self._subtasks) > 1 else ""
            items: dict[str, list[Any]] = defaultdict(list)
            for fkey in chosen[0].filtered_resps:
                for k in ks:
                    did = samples[k].data["doc_id"]
                    insts = self._by_doc[(sub, did)]
                    res = t.process_results(self._docs[(sub, did)],
                                            [i.filtered_resps[fkey] for i in insts])
                    for m, v in res.items():
                        items[f"{m},{fkey}"].append(v)
                        per_sample[k][f"{prefix}{m},{fkey}"] = _jsonable(v)
            aggs, hib = t.aggregation(), t.higher_is_better()
            for key, vals in items.items():
                m = key.split(",", 1)[0]
                agg = aggs.get(m, mean)
                se_fn = stderr_for_metric(agg, 1)
                if se_fn is not None and agg is not mean:
                    # bootstrap (BLEU/chrF/F1…): costly, only on request, lm-eval's cap for MT
                    se_fn = (stderr_for_metric(agg, min(iters, 100) if m in
                                               ("bleu", "chrf", "chrf++", "ter") else iters)
                             if iters > 0 else None)
                se = float(se_fn(vals)) if se_fn is not None and len(vals) > 1 else None
                # lm-eval's `mean` is a mean of the per-sample values stored under the same
                # name; any other aggregation (BLEU, F1, perplexity...) is corpus-level
                declared = (Metric(prefix + key, "mean", bool(hib.get(m, True)),
                                   per_sample_key=prefix + key) if agg is mean
                            else Metric(prefix + key, "corpus", bool(hib.get(m, True))))
                metrics[prefix + key] = declared.declare(MetricValue(
                    value=float(agg(vals)), n=len(vals), higher_is_better=bool(hib.get(m, True)),
                    se=se, note="lm-eval aggregation" + (" and stderr" if se is not None else "")))
        meta = {"lm_eval_task": self.task, "include_path": self.include,
                "runs_code": code_in_task_dirs(self.include),
                "subtasks": getattr(self, "_meta", {}),
                "rolling_note": "loglikelihood_rolling scored as one window after BOS/EOS"}
        return ScoredTask(per_sample, metrics, meta)


def make_task(name: str) -> LmEvalTask:
    """Factory for ``lm-eval:<task>[@dir]``; builds nothing until samples are asked for."""
    spec = name.split(":", 1)[1] if ":" in name else ""
    if not spec or spec.startswith("@"):
        raise BadInput(f"task {name!r}: expected lm-eval:<task or group>[@<task dir>], e.g. "
                       "lm-eval:belebele_eus_Latn")
    task, dirs = _include_paths(spec)
    return LmEvalTask(name=name, task=task, include=dirs,
                      description=f"lm-evaluation-harness task {task}")
