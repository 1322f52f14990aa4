"""Every Eval Ever (EEE) records from evalkit runs: schema 0.2.3.

The layout is EEE's own (``data/<benchmark>/<developer>/<model>/<uuid>.json`` plus
``<uuid>_samples.jsonl``): per variant × task one aggregate record (``eval.schema.json``: model
info, evaluation library, one ``evaluation_results`` entry per metric with its metric
configuration, 95 % CI / standard error and generation settings) and its instance-level
records (``instance_level_eval.schema.json``: one line per sample per per-sample metric, as the
schema asks when a sample feeds several aggregate results, each naming its
``evaluation_result_id``). The uuid is derived from the run's content (variant, task, run id),
so exporting the same records twice gives the same files. Benchmarks are evalkit task names
(record file names), developers the hub organisation (``local`` otherwise), models the
variant directory names; no path of this machine is written.
"""

from __future__ import annotations

import json
import re
import uuid
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

SCHEMA_VERSION = "0.2.3"
INSTANCE_SCHEMA_VERSION = "instance_level_eval_0.2.3"
RELATIONSHIPS = ("first_party", "third_party", "collaborative", "other")
POINTS = {"bleu", "chrf", "chrf++", "spbleu"}


def _dir(name: str) -> str:
    return re.sub(r"[^\w.+=-]+", "_", name).strip("_") or "unknown"


def _uuid(*parts: str) -> str:
    digest = sha256("\x1f".join(parts))
    return str(uuid.UUID(bytes=bytes.fromhex(digest[:32]), version=4))


def _strings(d: dict[str, Any]) -> dict[str, str]:
    return {str(k): v if isinstance(v, str) else json.dumps(v, ensure_ascii=False,
                                                            sort_keys=True)
            for k, v in d.items() if v is not None}


def _model_id(row: Any) -> tuple[str, str]:
    """(model id in hub form, developer): hub ids as given, local checkpoints ``local/…``."""
    from evalkit.leaderboard.labels import public_name

    name = public_name(row.model)
    dev = name.split("/", 1)[0] if "/" in name else "local"
    mid = name if "/" in name else f"local/{name}"
    if row.adapter:
        mid += f"+{row.adapter_label or public_name(row.adapter)}"
    return mid, dev


def _metric_config(metric: str, m: dict[str, Any]) -> dict[str, Any]:
    from evalkit.leaderboard.labels import METRIC_DOCS, metric_label

    head = metric.split(":", 1)[0].split("/", 1)[0].split("[", 1)[0]
    cfg: dict[str, Any] = {"metric_id": f"evalkit.{metric}", "metric_name": metric_label(metric),
                           "lower_is_better": not bool(m.get("higher_is_better", True))}
    desc = METRIC_DOCS.get(metric) or m.get("note")
    if desc:
        cfg["evaluation_description"] = str(desc)
    if head in POINTS:
        cfg.update(metric_kind=head, metric_unit="points", score_type="continuous",
                   min_score=0, max_score=100)
    elif m.get("ci_method") in ("wilson", "wilson-design-effect") or head.endswith(
            ("_rate", "_acc", "accuracy", "parse_success", "aps")):
        cfg.update(metric_kind="proportion", metric_unit="proportion", score_type="continuous",
                   min_score=0, max_score=1)
    if m.get("signature"):
        cfg["additional_details"] = {"sacrebleu_signature": str(m["signature"])}
    return cfg


def _score(m: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"score": finite(m.get("value"))}
    unc: dict[str, Any] = {}
    ci = m.get("ci")
    if ci and finite(ci[0]) is not None and finite(ci[1]) is not None:
        unc["confidence_interval"] = {"lower": float(ci[0]), "upper": float(ci[1]),
                                      "confidence_level": 0.95,
                                      **({"method": str(m["ci_method"])} if m.get("ci_method")
                                         else {})}
        boot = re.search(r"bootstrap\D*(\d+)", str(m.get("ci_method") or ""))
        if boot:
            unc["num_bootstrap_samples"] = int(boot.group(1))
    if finite(m.get("se")) is not None:
        unc["standard_error"] = {"value": float(m["se"])}
    if isinstance(m.get("n"), int):
        unc["num_samples"] = m["n"]
    if unc:
        out["uncertainty"] = unc
    return out


def _generation(s: Any) -> dict[str, Any]:
    g = dict(s.gen_params[0]) if s.gen_params else {}
    args: dict[str, Any] = {}
    for src, dst in (("temperature", "temperature"), ("top_p", "top_p")):
        if isinstance(g.get(src), (int, float)):
            args[dst] = g[src]
    if isinstance(g.get("max_new_tokens"), int) and g["max_new_tokens"] >= 1:
        args["max_tokens"] = g["max_new_tokens"]
    chat = s.chat_template
    extra = {"chat_template_applied": chat.get("chat_applied", chat.get("applied")),
             "chat_template_sha256": chat.get("chat_template_sha256") or chat.get("sha256"),
             "seed": s.seed, "stop": g.get("stop"), "n": g.get("n"),
             "limit": s.limit, "backend": s.backend}
    return {"generation_args": args, "additional_details": _strings(extra)}


def records(row: Any, task: str, organization: str = "unknown",
            relationship: str = "other") -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """(aggregate record, instance records, uuid) of one variant's task."""
    from evalkit.records import task_file_name
    from evalkit.view.build import explain

    s = row.summaries[task]
    mid, dev = _model_id(row)
    bench = task_file_name(task)
    ident = _uuid(row.key, task, s.run_id)
    retrieved = str(int(epoch(s.created_at)))
    eval_id = f"{bench}/{mid}/{retrieved}"
    source = {"dataset_name": task, "source_type": "other",
              "additional_details": _strings({**s.data_hashes,
                                              "sample_ids_sha256": s.sample_ids_sha256,
                                              "task_version": s.task_version,
                                              "language": s.language})}
    results = []
    for metric, m in s.metrics.items():
        if finite(m.get("value")) is None:
            continue
        results.append({"evaluation_result_id": f"{task}/{metric}", "evaluation_name": task,
                        "source_data": source, "evaluation_timestamp": retrieved,
                        "metric_config": _metric_config(metric, m), "score_details": _score(m),
                        "generation_config": _generation(s)})
    engine = {"name": s.backend}
    if s.versions.get(s.backend):
        engine["version"] = s.versions[s.backend]
    agg: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "evaluation_id": eval_id,
        "evaluation_timestamp": retrieved, "retrieved_timestamp": retrieved,
        "source_metadata": {"source_name": "evalkit", "source_type": "evaluation_run",
                            "source_organization_name": organization,
                            "evaluator_relationship": relationship,
                            "additional_details": _strings({"run_id": s.run_id,
                                                            "variant": row.key})},
        "eval_library": {"name": "evalkit", "version": s.versions.get("evalkit", "unknown"),
                         "additional_details": _strings({k: v for k, v in s.versions.items()
                                                         if k != "evalkit"})},
        "model_info": {"name": mid, "id": mid, "developer": dev,
                       "inference_platform": "local", "inference_engine": engine,
                       "additional_details": _strings({
                           "deployment_type": "self_deployed", "model_availability": "unknown",
                           "model_sha256": row.model_hash, "adapter": row.adapter_label,
                           "adapter_sha256": row.adapter_hash})},
        "evaluation_results": results,
    }
    values = per_item(row, task)
    instances: list[dict[str, Any]] = []
    for r in sorted(row.samples(task) or [], key=lambda x: x.sample_id):
        prompt = r.prompts[0] if r.prompts else ""
        ref = reference_text(r.reference)
        texts = outputs_text(r.outputs)
        ok, _, lang, why = explain(r.scores, s)
        meta = {"reasons": "; ".join(w[1] for w in why)} if why else {}
        if lang:
            meta["detected_language"] = lang
        for metric, by_id in values.items():
            v = by_id.get(r.sample_id)
            if v is None:
                continue
            instances.append({
                "schema_version": INSTANCE_SCHEMA_VERSION, "evaluation_id": eval_id,
                "model_id": mid, "evaluation_name": task,
                "evaluation_result_id": f"{task}/{metric}", "sample_id": r.sample_id,
                "sample_hash": sha256(prompt + ref), "interaction_type": "single_turn",
                "input": {"raw": prompt, "formatted": None, "reference": [ref] if ref else []},
                "output": {"raw": texts}, "messages": None,
                "answer_attribution": [{"turn_idx": 0, "source": "output.raw",
                                        "extracted_value": texts[0] if texts else "",
                                        "extraction_method": f"evalkit:{metric}",
                                        "is_terminal": True}],
                "evaluation": {"score": v,
                               "is_correct": bool(ok) if ok is not None else v > 0},
                "metadata": meta or None})
    return agg, instances, ident


def export_eee(runs: Sequence[Path], out: Path, tasks: Sequence[str] | None = None, *,
               organization: str = "unknown", relationship: str = "other") -> list[Path]:
    """Write EEE aggregate and instance-level files for every variant × task under `runs`."""
    from evalkit.records import task_file_name, write_text_atomic

    written: list[Path] = []
    for row in load(runs, tasks):
        for task in sorted(row.summaries):
            agg, inst, ident = records(row, task, organization, relationship)
            mid, dev = _model_id(row)
            rel = f"data/{_dir(task_file_name(task))}/{_dir(dev)}/{_dir(row.key)}"
            folder = Path(out) / rel
            if inst:
                text = "".join(jsonl_line(x) + "\n" for x in inst)
                path = folder / f"{ident}_samples.jsonl"
                write_text_atomic(path, text)
                written.append(path)
                agg["detailed_evaluation_results"] = {
                    "format": "jsonl", "file_path": f"{rel}/{ident}_samples.jsonl",
                    "hash_algorithm": "sha256", "checksum": sha256(text),
                    "total_rows": len(inst)}
            path = folder / f"{ident}.json"
            write_text_atomic(path, json.dumps(agg, indent=2, ensure_ascii=False) + "\n")
            written.append(path)
    return written
