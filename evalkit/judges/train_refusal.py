"""Train the learned refusal judge from public human-labelled responses; write model + card.

    python -m evalkit.judges.train_refusal --gptfuzz DIR --rbr DIR [--out MODEL.json]

DIR is a checkout (or a flat copy of the files) of ``sherdencooper/GPTFuzz`` and of
``openai/safety-rbr-code-and-data`` (both MIT; see ``evalkit/judges/README.md``). The data stay
outside the repository; the model file records their SHA-256 hashes (and the commits, when DIR
is a git checkout).

Recipe (`evalkit.judges.learned` describes the features): model selection by 5-fold grouped
cross-validation on the development split only (GPTFuzz question / RBR item as the group) over the
regularisation C, the weight of the small RBR source and class balancing, then the decision
threshold, each by the out-of-fold Cohen's κ averaged over the two sources; refit on the whole
development split; one evaluation on the held-out split (`evalkit.judges.refusal_data`) of the model
*as saved* (rounded weights, evalkit's own scoring code), beside the rule judge on the same items,
overall, per source, per language and per response style. Needs scikit-learn (training only; judging
does not).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.judges import refusal_data as rd
from evalkit.judges.learned import DEFAULT_MODEL, FEATURE_VERSION, LearnedJudge, features
from evalkit.judges.rule import detect
from evalkit.stats import cohen_kappa, wilson_interval

Grid = dict[str, tuple[float, ...]]  # booleans are grid values too (balanced: 0 / 1)
GRID: Grid = {"C": (1.0, 4.0, 16.0), "rbr_weight": (1.0, 4.0, 16.0), "balanced": (False, True)}
QUICK_GRID: Grid = {"C": (4.0,), "rbr_weight": (1.0,), "balanced": (True,)}  # smoke runs
MAX_FEATURES = 20000
MIN_COVERAGE = 0.5
LICENCES = {"gptfuzz": "MIT (sherdencooper/GPTFuzz LICENSE)",
            "rbr": "MIT (openai/safety-rbr-code-and-data readme and LICENSE)"}


def _identity(x: list[str]) -> list[str]:
    return x


def _vectorizer(max_features: int) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer=_identity, sublinear_tf=True, min_df=2,
                           max_features=max_features)


def _fit(feats: Sequence[list[str]], y: Sequence[bool], weights: Sequence[float], c: float,
         balanced: bool) -> tuple[Any, Any]:
    from sklearn.linear_model import LogisticRegression

    vec = _vectorizer(MAX_FEATURES)
    x = vec.fit_transform(feats)
    clf = LogisticRegression(C=c, max_iter=5000, class_weight="balanced" if balanced else None)
    return vec, clf.fit(x, list(y), sample_weight=list(weights))


def macro_kappa(p: Sequence[float], y: Sequence[bool], sources: Sequence[str],
                threshold: float) -> float:
    """Mean over sources of Cohen's κ at `threshold`: each source counts the same, so the
    small but varied RBR set is not drowned by GPTFuzz's jailbreak replies."""
    ks = []
    for src in sorted(set(sources)):
        idx = [i for i, s in enumerate(sources) if s == src]
        ks.append(cohen_kappa([y[i] for i in idx], [p[i] >= threshold for i in idx]) or 0.0)
    return sum(ks) / len(ks)


def _best_threshold(p: Sequence[float], y: Sequence[bool],
                    sources: Sequence[str]) -> tuple[float, float]:
    best = (0.5, macro_kappa(p, y, sources, 0.5))
    for t in [i / 100 for i in range(20, 81)]:
        k = macro_kappa(p, y, sources, t)
        if k > best[1] + 1e-12:
            best = (t, k)
    return best


def select(dev: Sequence[rd.LabelledResponse], feats: Sequence[list[str]], folds: int = 5,
           log: Any = print, grid: dict[str, tuple[float, ...]] = GRID) -> dict[str, Any]:
    """Grouped k-fold CV over `grid` on the development split; best setting and threshold."""
    from sklearn.model_selection import GroupKFold

    y = [r.declined for r in dev]
    groups = [r.group for r in dev]
    splits = list(GroupKFold(n_splits=folds).split(feats, y, groups))
    best: dict[str, Any] = {"kappa": -2.0}
    sources = [r.source for r in dev]
    for c in grid["C"]:
        for w in grid["rbr_weight"]:
            for bal in grid["balanced"]:
                oof = [0.0] * len(dev)
                for tr, va in splits:
                    vec, clf = _fit([feats[i] for i in tr], [y[i] for i in tr],
                                    [w if dev[i].source == "rbr" else 1.0 for i in tr], c,
                                    bool(bal))
                    probs = clf.predict_proba(vec.transform([feats[i] for i in va]))[:, 1]
                    for i, p in zip(va, probs):
                        oof[i] = float(p)
                t, k = _best_threshold(oof, y, sources)
                log(f"  C={c:g} rbr_weight={w:g} balanced={bool(bal)}: out-of-fold macro κ "
                    f"{k:.4f} at threshold {t:.2f}")
                if k > best["kappa"]:
                    best = {"C": c, "rbr_weight": w, "balanced": bool(bal), "threshold": t,
                            "kappa": k}
    return best


def _agreement(gold: Sequence[bool], pred: Sequence[bool]) -> dict[str, Any]:
    n = len(gold)
    hits = sum(a == b for a, b in zip(gold, pred))
    lo, hi = wilson_interval(hits, n) if n else (0.0, 0.0)  # (unused when n is 0)
    # within one response style the human label is constant: κ is undefined there
    k = cohen_kappa(list(gold), list(pred)) if len(set(gold)) > 1 else None
    return {"n": n, "accuracy": round(hits / n, 4) if n else None,
            "accuracy_ci": [round(lo, 4), round(hi, 4)] if n else None,
            "kappa": None if k is None else round(k, 4), "declined_share": round(
                sum(gold) / n, 4) if n else None}


def evaluate(items: Sequence[rd.LabelledResponse], judge: LearnedJudge) -> dict[str, Any]:
    """Learned and rule agreement with the human labels: overall and per breakdown."""
    gold = [r.declined for r in items]
    learned = [judge.decide(r.response)[0] for r in items]
    rule = [detect(r.response).declined for r in items]
    fallback = [judge.decide(r.response)[1].startswith("rule (") for r in items]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(items):
        groups["all"].append(i)
        groups[f"source:{r.source}"].append(i)
        groups[f"language:{rd.script_of(r.response)}"].append(i)
        if r.style:
            groups[f"style:{r.style}"].append(i)
    out = {}
    for name, idx in sorted(groups.items()):
        out[name] = {"learned": _agreement([gold[i] for i in idx], [learned[i] for i in idx]),
                     "rule": _agreement([gold[i] for i in idx], [rule[i] for i in idx]),
                     "rule_fallbacks": sum(fallback[i] for i in idx)}
    return out


def hand_sets(judge: LearnedJudge, repo: Path) -> dict[str, Any]:
    """Agreement on the repository's hand-written sets A and B (labelled by the rule patterns'
    author, en/eu/es/it/no; see tests/data/safety/README.md), per language."""
    out: dict[str, Any] = {}
    for name, fname in (("A", "labelled_responses.jsonl"), ("B", "labelled_responses_b.jsonl")):
        path = repo / "tests" / "data" / "safety" / fname
        if not path.exists():
            continue
        rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]
        by: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            by["all"].append(r)
            by[r["lang"]].append(r)
        out[name] = {}
        for lang, rs in sorted(by.items()):
            gold = [r["label"] == "refusal" for r in rs]
            out[name][lang] = {
                "learned": _agreement(gold, [judge.decide(r["response"])[0] for r in rs]),
                "rule": _agreement(gold, [detect(r["response"]).declined for r in rs])}
    return out


def _commit(root: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def _round(x: float) -> float:
    return float(f"{x:.6g}")


def train(gptfuzz: Path, rbr: Path, out: Path, folds: int = 5, log: Any = print,
          repo: Path | None = None, grid: dict[str, tuple[float, ...]] = GRID) -> dict[str, Any]:
    """The whole recipe; writes the model to `out` and its card beside it (``.md``)."""
    t0 = time.perf_counter()
    data = rd.load_gptfuzz(gptfuzz) + rd.load_rbr(rbr)
    dev = [r for r in data if r.split == "dev"]
    test = [r for r in data if r.split == "test"]
    log(f"{len(dev)} development, {len(test)} held-out responses")
    feats = [features(r.response) for r in dev]
    best = select(dev, feats, folds, log, grid)
    log(f"selected {best}")
    vec, clf = _fit(feats, [r.declined for r in dev],
                    [best["rbr_weight"] if r.source == "rbr" else 1.0 for r in dev],
                    best["C"], best["balanced"])
    names = vec.get_feature_names_out().tolist()
    sources = {
        "gptfuzz": {"repository": "https://github.com/sherdencooper/GPTFuzz",
                    "commit": _commit(gptfuzz), "licence": LICENCES["gptfuzz"],
                    "files": rd.describe_files(rd.gptfuzz_files(gptfuzz)),
                    "label": "human: 0 = not jailbroken (declined), 1 = jailbroken"},
        "rbr": {"repository": "https://github.com/openai/safety-rbr-code-and-data",
                "commit": _commit(rbr), "licence": LICENCES["rbr"],
                "files": rd.describe_files(rd.rbr_files(rbr)),
                "label": "human propositions: declined = not fully_complies"}}
    model = {"feature_version": FEATURE_VERSION, "features": names,
             "idf": [_round(v) for v in vec.idf_], "coef": [_round(v) for v in clf.coef_[0]],
             "intercept": _round(float(clf.intercept_[0])), "threshold": best["threshold"],
             "min_coverage": MIN_COVERAGE}
    card: dict[str, Any] = {
        "sources": sources,
        "split": {"dev": len(dev), "test": len(test),
                  "rule": "test = GPTFuzz questions with index % 5 == 4, and RBR test.jsonl"},
        "selection": {**best, "folds": folds, "grid": grid,
                      "note": "grouped CV on the development split only"}}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**model, "card": card}), encoding="utf-8")
    judge = LearnedJudge(out)
    # the saved model, scored by evalkit's code, equals scikit-learn's probabilities
    probs = clf.predict_proba(vec.transform([features(r.response) for r in test]))[:, 1]
    ours = [judge.model.probability(judge.model.vector(features(r.response))) for r in test]
    card["max_abs_probability_difference_vs_sklearn"] = float(max(
        abs(a - b) for a, b in zip(probs, ours)))
    card["held_out"] = evaluate(test, judge)
    if repo is not None:
        card["hand_written_sets"] = hand_sets(judge, repo)
    card["train_seconds"] = round(time.perf_counter() - t0, 1)
    out.write_text(json.dumps({**model, "card": card}), encoding="utf-8")
    judge = LearnedJudge(out)
    out.with_suffix(".md").write_text(render_card(card, judge.model.sha256, out.name),
                                      encoding="utf-8")
    return card


def _row(name: str, r: dict[str, Any]) -> str:
    lk, rk = r["learned"]["kappa"], r["rule"]["kappa"]
    fmt = lambda k: "—" if k is None else f"{k:.3f}"  # noqa: E731
    return (f"| {name} | {r['learned']['n']} | {r['learned']['accuracy']:.3f} | {fmt(lk)} | "
            f"{r['rule']['accuracy']:.3f} | {fmt(rk)} |")


def render_card(card: dict[str, Any], sha: str, fname: str) -> str:
    """The model card (markdown) from the card dict."""
    sel = card["selection"]
    lines = [f"# Model card: `{fname}` (learned refusal judge)", "",
             "Written by `python -m evalkit.judges.train_refusal`; do not edit by hand.", "",
             f"- SHA-256 of the model file: `{sha}`",
             "- Model: logistic regression over sublinear TF-IDF word 1–2-grams (whole reply and "
             "its opening) plus the rule judge's finding (`evalkit/judges/learned.py`).",
             f"- Selected by {sel['folds']}-fold grouped CV on the development split (mean of "
             f"the per-source κ): C {sel['C']:g}, RBR weight {sel['rbr_weight']:g}, balanced "
             f"classes {sel['balanced']}, vocabulary {MAX_FEATURES}, threshold "
             f"{sel['threshold']:.2f} (out-of-fold macro κ {sel['kappa']:.3f}).",
             f"- Replies whose words the model mostly does not know (coverage < "
             f"{MIN_COVERAGE:.0%}) get the rule judge's verdict.",
             f"- Split: {card['split']['dev']} development / {card['split']['test']} held-out "
             f"replies; {card['split']['rule']}.",
             "- Scoring code check: max |p(evalkit) − p(scikit-learn)| on the held-out replies = "
             f"{card['max_abs_probability_difference_vs_sklearn']:.1e}.", "", "## Data", ""]
    for name, s in card["sources"].items():
        lines.append(f"- **{name}**: {s['repository']} @ `{s['commit']}`, licence {s['licence']};"
                     f" label: {s['label']}.")
        lines += [f"  - `{f}` sha256 `{h}`" for f, h in s["files"].items()]
    lines += ["", "## Agreement with the human labels on the held-out split", "",
              "| subset | n | learned acc | learned κ | rule acc | rule κ |",
              "|---|---:|---:|---:|---:|---:|"]
    lines += [_row(k, v) for k, v in card["held_out"].items()]
    lines += ["", "Within one response style the human label is constant, so κ is undefined "
              "there (—); accuracy is the share judged as the humans did.", ""]
    if card.get("hand_written_sets"):
        lines += ["## Hand-written sets A and B (labelled by the rule patterns' author)", "",
                  "| set / language | n | learned acc | learned κ | rule acc | rule κ |",
                  "|---|---:|---:|---:|---:|---:|"]
        for s, by in card["hand_written_sets"].items():
            lines += [_row(f"{s} / {lang}", v) for lang, v in by.items()]
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gptfuzz", type=Path, required=True,
                    help="checkout (or flat copy) of sherdencooper/GPTFuzz")
    ap.add_argument("--rbr", type=Path, required=True,
                    help="checkout (or flat copy) of openai/safety-rbr-code-and-data")
    ap.add_argument("--out", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="one grid point (smoke runs)")
    args = ap.parse_args(argv)
    repo = Path(__file__).resolve().parent.parent.parent
    card = train(args.gptfuzz, args.rbr, args.out, args.folds, repo=repo,
                 grid=QUICK_GRID if args.quick else GRID)
    print(json.dumps(card["held_out"]["all"], indent=1))


if __name__ == "__main__":
    main()
