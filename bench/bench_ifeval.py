"""Benchmark IFEval scoring: evalkit's ``ifeval`` task vs lm-eval's own IFEval scoring.

Same responses, same process, interleaved passes. Baseline: lm-evaluation-harness's
``lm_eval.tasks.ifeval.utils.process_results(doc, [response])`` per prompt plus its aggregation
(mean / ``agg_inst_level_acc``) — what ``lm_eval --tasks ifeval`` runs after generation.
evalkit: ``IFEvalTask.score`` (the same checkers, each built once per prompt instead of twice,
loose variants skipped once strict passes) including what lm-eval does not compute: bootstrap
CIs over prompts, per-category and per-instruction breakdowns, adaptation notes.

Responses: no model outputs are mirrored, so each prompt gets a deterministic pseudo-response of
6-30 sentences of mirrored FLORES text in the prompt's language (English for ``ifeval:en``,
Basque for ``ifeval:eu``), laid out as paragraphs, some with bullets, a title or a postscript —
about the length of real model answers, so the checkers (langdetect, Punkt, regexes) do
representative work. Also checked on them: evalkit's English per-instruction results equal
lm-eval's exactly, and on Basque every disagreement is an instruction evalkit adapts.

    python bench/bench_ifeval.py [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def pseudo_responses(samples: list[Any], sentences: list[str], seed: int = 0) -> list[str]:
    """One structured pseudo-answer per sample, deterministic."""
    rng = random.Random(seed)
    out = []
    for _ in samples:
        k = rng.randint(6, 30)
        start = rng.randrange(0, len(sentences) - k)
        sents = sentences[start:start + k]
        paras = [" ".join(sents[i:i + 4]) for i in range(0, len(sents), 4)]
        style = rng.random()
        if style < 0.25:
            paras[1:1] = ["\n".join(f"* {s}" for s in sents[:3])]
        if style > 0.8:
            paras.insert(0, f"<<{sents[0].split()[0]}>>")
        if rng.random() < 0.15:
            paras.append("P.S. " + sents[-1])
        out.append("\n\n".join(paras))
    return out


def lm_eval_score(docs: list[dict[str, Any]], responses: list[str]) -> dict[str, float]:
    """lm-eval's process_results per doc + its aggregation."""
    from lm_eval.tasks.ifeval.utils import agg_inst_level_acc, process_results

    res = [process_results(d, [r]) for d, r in zip(docs, responses)]
    return {"prompt_level_strict_acc": statistics.mean(float(x["prompt_level_strict_acc"])
                                                       for x in res),
            "inst_level_strict_acc": agg_inst_level_acc([x["inst_level_strict_acc"]
                                                         for x in res]),
            "prompt_level_loose_acc": statistics.mean(float(x["prompt_level_loose_acc"])
                                                      for x in res),
            "inst_level_loose_acc": agg_inst_level_acc([x["inst_level_loose_acc"] for x in res]),
            "_per_sample": res}  # type: ignore[dict-item]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="timed passes per scorer and language")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from evalkit.data import DataLayer
    from evalkit.runner import load_task
    from evalkit.tasks.ifeval_checks import runtime_info
    from evalkit.types import Generation, ScoringContext

    info = runtime_info()  # punkt + lm-eval import, before lm-eval's utils is imported
    layer = DataLayer()
    results: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores "
                               "(shared with other jobs: noisy)",
                               "python": platform.python_version(),
                               "sentence_splitter": info["sentence_splitter"], "tasks": {}}
    for lang, flores in (("en", "eng_Latn"), ("eu", "eus_Latn")):
        task = load_task(f"ifeval:{lang}")
        samples = task.samples(layer)
        sents = (layer.read_lines(f"flores200/dev/{flores}.dev")
                 + layer.read_lines(f"flores200/devtest/{flores}.devtest"))
        responses = pseudo_responses(samples, sents)
        docs = [{"key": int(s.id), "prompt": s.data["prompt"],
                 "instruction_id_list": s.data["instruction_id_list"],
                 "kwargs": s.data["kwargs"]} for s in samples]
        outputs = [[Generation((r,))] for r in responses]
        # warm-up: langdetect profiles, lingua models, Punkt load
        ek = task.score(samples, outputs, ScoringContext())
        lm = lm_eval_score(docs, responses)
        # wall and CPU time per pass; CPU time is the robust figure on a shared machine
        t_ek: list[tuple[float, float]] = []
        t_lm: list[tuple[float, float]] = []
        for _ in range(args.repeat):
            for fn, acc in ((partial(task.score, samples, outputs, ScoringContext()), t_ek),
                            (partial(lm_eval_score, docs, responses), t_lm)):
                w0, c0 = time.perf_counter(), time.process_time()
                fn()
                acc.append((time.perf_counter() - w0, time.process_time() - c0))
        n = len(samples)
        diff = [(s.id, i, iid) for s, row, ref in zip(samples, ek.per_sample, lm["_per_sample"])
                for i, iid in enumerate(row["instruction_id_list"])
                if row["inst_level_strict_acc"][i] != ref["inst_level_strict_acc"][i]
                or row["inst_level_loose_acc"][i] != ref["inst_level_loose_acc"][i]]
        adapted = {(s.id, int(k.split(":")[0])) for s, row in zip(samples, ek.per_sample)
                   for k in row.get("adaptations", {})}
        unexplained = [d for d in diff if (d[0], d[1]) not in adapted]
        best_ek, best_lm = min(t[0] for t in t_ek), min(t[0] for t in t_lm)
        cpu_ek, cpu_lm = min(t[1] for t in t_ek), min(t[1] for t in t_lm)
        results["tasks"][task.name] = {
            "responses": n, "mean_response_words": round(statistics.mean(
                len(r.split()) for r in responses), 1),
            "evalkit_responses_per_s": round(n / best_ek, 1),
            "lm_eval_responses_per_s": round(n / best_lm, 1),
            "speedup_evalkit_over_lm_eval": round(best_lm / best_ek, 2),
            "evalkit_responses_per_cpu_s": round(n / cpu_ek, 1),
            "lm_eval_responses_per_cpu_s": round(n / cpu_lm, 1),
            "cpu_speedup_evalkit_over_lm_eval": round(cpu_lm / cpu_ek, 2),
            "evalkit_wall_cpu_s": [[round(x, 2) for x in t] for t in t_ek],
            "lm_eval_wall_cpu_s": [[round(x, 2) for x in t] for t in t_lm],
            "instruction_disagreements": len(diff),
            "disagreements_not_from_an_adaptation": len(unexplained),
            "evalkit": {k: round(m.value, 4) for k, m in ek.metrics.items()
                        if "/" not in k and m.value is not None},
            "lm_eval": {k: round(v, 4) for k, v in lm.items() if not k.startswith("_")},
        }
        print(json.dumps({task.name: results["tasks"][task.name]}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
