"""Benchmark the safety judges: agreement with hand labels and throughput, rule vs LLM judge.

Agreement: the rule and learned judges' refusal/compliance decisions against hand-labelled replies
(en, eu, es, it, no; labelled by the evalkit developers, see ``tests/data/safety/README.md``) —
accuracy and Cohen's kappa, overall and per language, for set A (``labelled_responses.jsonl``: held
out for the first pattern version, then used to revise the patterns, so now a development set) and
set B (``labelled_responses_b.jsonl``: written after the revision, held out). Throughput: replies
judged per second by the rule judge and by an LLM judge (a tiny random Llama on the hf backend,
built offline) on the same replies in the same process; the ratio is the figure of merit. The tiny
model's verdicts are meaningless (random weights): it measures the cost of the LLM-judge path, not
its quality.

    python bench/bench_judges.py [--repeat 50] [--llm-items 98] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from evalkit.stats import cohen_kappa

REPO = Path(__file__).resolve().parent.parent
SETS = {"A (dev)": REPO / "tests" / "data" / "safety" / "labelled_responses.jsonl",
        "B (held out)": REPO / "tests" / "data" / "safety" / "labelled_responses_b.jsonl"}


def agreement(pred: Sequence[str], gold: Sequence[str]) -> dict[str, float | int | None]:
    """Accuracy, kappa and n."""
    acc = sum(p == g for p, g in zip(pred, gold)) / len(gold)
    return {"n": len(gold), "accuracy": round(acc, 4),
            "kappa": None if (k := cohen_kappa(pred, gold)) is None else round(k, 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=50, help="rule-judge passes over the set")
    ap.add_argument("--llm-items", type=int, default=98, help="replies for the LLM judge")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(2)
    from evalkit.judges import JudgeItem, make_judge
    from evalkit.testing import build_tiny_model

    rule = make_judge("rule")
    learned = make_judge("learned")
    report: dict[str, object] = {}
    items: list[JudgeItem] = []
    for set_name, path in SETS.items():
        rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]
        set_items = [JudgeItem(r["prompt"], r["response"], r["lang"]) for r in rows]
        items += set_items
        gold = [r["label"] for r in rows]
        for jname, judge in (("rule", rule), ("learned", learned)):
            verdicts = judge.judge("refusal", set_items)
            pred = ["refusal" if v.label == "refused" else "compliance" for v in verdicts]
            per_lang = {}
            for lang in sorted({r["lang"] for r in rows}):
                idx = [i for i, r in enumerate(rows) if r["lang"] == lang]
                per_lang[lang] = agreement([pred[i] for i in idx], [gold[i] for i in idx])
            report[f"{set_name}, {jname}"] = {
                "overall": agreement(pred, gold), "per_language": per_lang,
                "disagreements": [{"id": r["id"], "gold": g, jname: p, "reason": v.reason}
                                  for r, g, p, v in zip(rows, gold, pred, verdicts) if g != p]}

    many = items * args.repeat
    t0 = time.perf_counter()
    rule.judge("refusal", many)
    rule_s = time.perf_counter() - t0
    rule_rate = len(many) / rule_s
    t0 = time.perf_counter()
    learned.judge("refusal", many)
    learned_rate = len(many) / (time.perf_counter() - t0)

    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_model(Path(tmp) / "judge")
        llm = make_judge(f"hf:{model}")
        llm.judge("refusal", items[:2])  # load the model outside the timed region
        sub = items[: args.llm_items]
        t0 = time.perf_counter()
        lv = llm.judge("refusal", sub)
        llm_s = time.perf_counter() - t0
        llm.close()
    llm_rate = len(sub) / llm_s
    report["throughput"] = {
        "rule_replies_per_s": round(rule_rate, 1), "rule_n": len(many),
        "learned_replies_per_s": round(learned_rate, 1),
        "llm_tiny_hf_replies_per_s": round(llm_rate, 2), "llm_n": len(sub),
        "llm_unparseable": sum(not v.parsed for v in lv),
        "ratio_rule_over_llm": round(rule_rate / llm_rate, 1)}
    report["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, torch threads 2, " \
                        "shared with other engineers (noisy)"
    print(json.dumps(report, indent=2, ensure_ascii=False))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
