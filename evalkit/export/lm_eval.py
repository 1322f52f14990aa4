"""lm-evaluation-harness's output files from evalkit records.

Shapes follow lm-eval 0.4's own writer (``lm_eval/loggers/evaluation_tracker.py``:
``save_results_aggregated`` / ``save_results_samples``) and its documented result schema
(``lm_eval/result_schema.py``): per variant a folder holding ``results_<date id>.json`` and one
``samples_<task>_<date id>.jsonl`` per task, the date id being the run's time as lm-eval writes
it (ISO, ``:`` → ``-``). In the results, metrics are keyed ``<metric>,<filter>`` with
``<metric>_stderr,<filter>`` beside them ("N/A" where evalkit reports a CI but no standard
error); in the samples, ``arguments`` are ``{"gen_args_0": {"arg_0": prompt, "arg_1":
generation settings}}``, ``resps`` / ``filtered_resps`` hold the outputs as strings, and each
per-sample metric value is a top-level key. Task keys are evalkit's record file names
(``flores__eng_Latn-eus_Latn__devtest``, the evalkit name as ``alias``), metric names keep no
``/`` (``safe_rate/x`` becomes ``safe_rate[x]``), so lm-eval's utilities that split
``task/metric`` strings read them. Model names are public names, never paths of this machine.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.export.common import (
    epoch,
    finite,
    jsonl_line,
    load,
    outputs_text,
    per_item,
    reference_text,
    sha256,
)


def _metric_key(metric: str) -> tuple[str, str]:
    """(lm-eval metric name, filter) of an evalkit metric id."""
    name, _, filt = metric.partition(",")
    if "/" in name:
        head, part = name.split("/", 1)
        name = f"{head}[{part}]"
    return name.replace("/", "_"), filt or "none"


def date_id(created_at: str) -> str:
    """lm-eval's file date id (``datetime.isoformat()`` with ``:`` → ``-``), naive UTC."""
    import datetime as dt

    t = dt.datetime.fromtimestamp(epoch(created_at), dt.timezone.utc).replace(tzinfo=None)
    return t.isoformat(timespec="microseconds").replace(":", "-")


def _gen_kwargs(s: Any) -> dict[str, Any]:
    g = dict(s.gen_params[0]) if s.gen_params else {}
    out = {"until": g.get("stop") or [], "do_sample": bool(g.get("temperature") or 0) > 0,
           "temperature": g.get("temperature"), "top_p": g.get("top_p"),
           "max_gen_toks": g.get("max_new_tokens")}
    return {k: v for k, v in out.items() if v is not None}


def results_doc(row: Any, tasks: list[str]) -> dict[str, Any]:
    """The ``results_*.json`` document of one variant."""
    from evalkit.leaderboard.labels import public_name
    from evalkit.records import task_file_name

    results: dict[str, Any] = {}
    configs: dict[str, Any] = {}
    versions: dict[str, Any] = {}
    hib: dict[str, Any] = {}
    n_samples: dict[str, Any] = {}
    hashes: dict[str, str] = {}
    for task in tasks:
        s = row.summaries[task]
        key = task_file_name(task)
        res: dict[str, Any] = {"alias": task}
        hib[key] = {}
        for metric, m in s.metrics.items():
            v = finite(m.get("value"))
            if v is None:
                continue
            name, filt = _metric_key(metric)
            res[f"{name},{filt}"] = v
            se = finite(m.get("se"))
            res[f"{name}_stderr,{filt}"] = se if se is not None else "N/A"
            hib[key][name] = bool(m.get("higher_is_better", True))
        results[key] = res
        kind = "generate_until" if s.gen_params else "loglikelihood"
        configs[key] = {"task": key, "task_alias": task, "output_type": kind,
                        "num_fewshot": 0, "generation_kwargs": _gen_kwargs(s),
                        "metric_list": [{"metric": n, "higher_is_better": h}
                                        for n, h in hib[key].items()],
                        "metadata": {"version": s.task_version, "evalkit_task": task,
                                     "language": s.language,
                                     "data_hashes": dict(s.data_hashes)}}
        versions[key] = s.task_version
        n_samples[key] = {"original": s.n_samples, "effective": s.n_samples}
        hashes[key] = s.sample_ids_sha256
    first = row.summaries[tasks[0]]
    model = public_name(row.model)
    args = f"pretrained={model}" + (f",peft={row.adapter_label or public_name(row.adapter)}"
                                    if row.adapter else "")
    chat = first.chat_template
    return {
        "results": results, "group_subtasks": {k: [] for k in results}, "configs": configs,
        "versions": versions, "n-shot": {k: 0 for k in results}, "higher_is_better": hib,
        "n-samples": n_samples,
        "config": {"model": f"evalkit-{first.backend}", "model_args": args,
                   "model_sha": row.model_hash, "batch_size": None, "batch_sizes": [],
                   "device": None, "use_cache": None, "limit": first.limit,
                   "bootstrap_iters": 1000, "gen_kwargs": None, "random_seed": first.seed,
                   "numpy_seed": first.seed, "torch_seed": first.seed,
                   "fewshot_seed": first.seed},
        "git_hash": None, "date": epoch(first.created_at),
        "transformers_version": first.versions.get("transformers"),
        "model_source": first.backend, "model_name": model, "model_name_sanitized": row.key,
        "system_instruction": None, "system_instruction_sha": None,
        "fewshot_as_multiturn": False, "chat_template": None,
        "chat_template_sha": chat.get("chat_template_sha256") or chat.get("sha256"),
        "task_hashes": hashes,
        "evalkit": {"variant": row.key, "adapter_hash": row.adapter_hash,
                    "versions": dict(first.versions),
                    "chat_applied": {task_file_name(t): row.summaries[t].chat_template.get(
                        "chat_applied", row.summaries[t].chat_template.get("applied"))
                        for t in tasks}},
    }


def sample_lines(row: Any, task: str) -> list[str]:
    """The ``samples_<task>_*.jsonl`` lines of one variant's task."""
    from evalkit.view.build import explain

    s = row.summaries[task]
    values = per_item(row, task)
    names = {m: _metric_key(m)[0] for m in values}
    gen = json.dumps(_gen_kwargs(s), ensure_ascii=False, sort_keys=True)
    lines = []
    for i, r in enumerate(sorted(row.samples(task) or [], key=lambda x: x.sample_id)):
        target = reference_text(r.reference)
        doc = {"id": r.sample_id, "reference": target}
        prompt = r.prompts[0] if r.prompts else ""
        texts = outputs_text(r.outputs)
        loglik = [o for o in r.outputs if "logprob" in o]
        if loglik:
            resps = [[[str(o["logprob"]), str(bool(o.get("is_greedy")))]] for o in loglik]
            filtered = [[str(o["logprob"]), str(bool(o.get("is_greedy")))] for o in loglik]
        else:
            resps = [[t for t in o.get("texts", [])] for o in r.outputs]
            filtered = [(o.get("texts") or [""])[0] for o in r.outputs]
        ok, _, _, why = explain(r.scores, s)
        line: dict[str, Any] = {
            "doc_id": i, "doc": doc, "target": target,
            "arguments": {f"gen_args_{k}": {"arg_0": p, "arg_1": gen}
                          for k, p in enumerate(r.prompts)},
            "resps": resps, "filtered_resps": filtered, "filter": "none",
            "metrics": sorted(names.values()),
            "doc_hash": sha256(json.dumps(doc, indent=2, ensure_ascii=False)),
            "prompt_hash": sha256(prompt), "target_hash": sha256(target)}
        for m, name in names.items():
            line[name] = values[m].get(r.sample_id)
        line["evalkit"] = json.dumps({"sample_id": r.sample_id, "passed": ok,
                                      "reasons": [w[1] for w in why], "scores": r.scores,
                                      "outputs": texts}, ensure_ascii=False, default=str)
        lines.append(jsonl_line(line))
    return lines


def export_lm_eval(runs: Sequence[Path], out: Path, tasks: Sequence[str] | None = None
                   ) -> list[Path]:
    """Write lm-eval results and samples files for every variant under `runs` into `out`."""
    from evalkit.records import task_file_name, write_text_atomic

    rows = load(runs, tasks)
    written: list[Path] = []
    for row in rows:
        ts = sorted(row.summaries)
        newest = max(row.summaries[t].created_at for t in ts)
        did = date_id(newest)
        d = Path(out) / re.sub(r"[\"<>:/|\\?*\[\]]+", "__", row.key)
        doc = results_doc(row, ts)
        path = d / f"results_{did}.json"
        write_text_atomic(path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        written.append(path)
        for t in ts:
            if not row.samples(t):
                continue
            path = d / f"samples_{task_file_name(t)}_{did}.jsonl"
            write_text_atomic(path, "".join(x + "\n" for x in sample_lines(row, t)))
            written.append(path)
    return written
