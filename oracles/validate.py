"""``evalkit oracle validate``: how far can each oracle be trusted?

For each oracle it measures, on data from the mirror:

* UAS/LAS on held-out gold (NDT labels: the NDT versions of the UD test sentences, never trained
  on; UD-scheme oracles: UD Bokmål test), gold tokenization, punctuation included;
* rule agreement gold vs predicted: the rule on the gold tree vs the full oracle path
  (raw UD test text → tokenizer → parser → rule; one sentence per gold sentence, no truncation),
  as accuracy and Cohen's κ; plus the agreement of the rule on UD gold vs NDT gold trees
  (how much the scheme mapping itself changes verdicts);
* NoCoLA pass-rate AUROC: grammatical vs ungrammatical learner sentences (pass and q as scores);
* cross-oracle agreement on FLORES-200 nob devtest (1,012 sentences);
* throughput in words/s of raw ``nlp.pipe`` vs the oracle (split + parse + rule) on the same
  texts in the same run, and the speed-up of parse-cache hits over parsing.
"""

from __future__ import annotations

import gzip
import json
import platform
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.oracles.base import Oracle, Parse, parse_from_columns
from evalkit.oracles.rule import RuleConfig, check_parse, judge
from evalkit.oracles.train.treebanks import GoldSentence, mirror, read_conllu, read_ndt, ud_file
from evalkit.stats import auroc, cohen_kappa

__all__ = ["held_out_pairs", "load_nocola", "validate", "write_benchmarks"]

GOLD_CONFIG = RuleConfig(truncate=False, split=False)


def held_out_pairs() -> list[tuple[GoldSentence, GoldSentence]]:
    """(UD test sentence, the same sentence in NDT labels) for every UD test sentence in NDT."""
    ud = read_conllu(ud_file("test"))
    by_key = {s.key: s for s in ud}
    return [(by_key[n.key], n) for n in read_ndt() if n.key in by_key]


def gold_parse(s: GoldSentence, scheme: str) -> Parse:
    """A gold tree as a Parse."""
    return parse_from_columns(s.forms, s.upos, s.feats, s.heads, s.rels, scheme)


def load_nocola(split: str = "dev") -> tuple[list[str], list[str]]:
    """(grammatical, ungrammatical) NoCoLA sentences from the mirror."""
    path = mirror() / "nocola" / f"NoCoLa_class_{split}.txt"
    gram: list[str] = []
    ungram: list[str] = []
    section = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("Ungrammatical:"):
            section = ungram
        elif line.startswith("Grammatical:"):
            section = gram
        elif line.strip() and section is not None:
            section.append(line.split("\t")[0])
    return gram, ungram


def flores_nob() -> list[str]:
    """FLORES-200 nob_Latn devtest sentences (1,012)."""
    path = mirror() / "flores200" / "devtest" / "nob_Latn.devtest.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [ln.rstrip("\n") for ln in fh if ln.strip()]


def _attachment(pred: list[Parse], gold: list[GoldSentence]) -> dict[str, float]:
    total = uas = las = 0
    for p, g in zip(pred, gold, strict=True):
        if len(p.tokens) != len(g.forms):
            continue
        for t, gh, gr in zip(p.tokens, g.heads, g.rels, strict=True):
            total += 1
            if t.head == gh - 1:
                uas += 1
                if (gh == 0) or t.rel.lower() == gr.lower():
                    las += 1
    return {"uas": 100 * uas / total, "las": 100 * las / total, "tokens": total}


def _auroc(grammatical: Sequence[float], ungrammatical: Sequence[float]) -> float | None:
    """AUROC of grammatical (positive) against ungrammatical scores; None if one side is empty."""
    return auroc(list(grammatical) + list(ungrammatical),
                 [1] * len(grammatical) + [0] * len(ungrammatical))


def _agreement(gold: list[bool], pred: list[bool]) -> dict[str, float | None]:
    n = len(gold)
    return {"accuracy": 100 * sum(a == b for a, b in zip(gold, pred, strict=True)) / n,
            "kappa": cohen_kappa(gold, pred), "gold_pass": 100 * sum(gold) / n,
            "pred_pass": 100 * sum(pred) / n, "n": n}


def _words(texts: Sequence[str]) -> int:
    return sum(len(t.split()) for t in texts)


def validate_oracle(oracle: Any, *, pairs: list[tuple[GoldSentence, GoldSentence]],
                    nocola: tuple[list[str], list[str]], flores: list[str],
                    throughput_texts: list[str] | None = None) -> dict[str, Any]:
    """All single-oracle measurements for ``oracle`` (a Spacy/StanzaOracle with parse_tokens)."""
    scheme = oracle.scheme
    res: dict[str, Any] = {"name": oracle.name, "model_hash": oracle.model_hash, "scheme": scheme,
                           "versions": getattr(oracle, "versions", {})}
    gold = [n if scheme == "ndt" else u for u, n in pairs]
    t0 = time.perf_counter()
    pred_gold_tok = oracle.parse_tokens([g.forms for g in gold])
    res["attachment"] = {**_attachment(pred_gold_tok, gold),
                         "gold": "NDT labels of UD test sentences" if scheme == "ndt"
                         else "UD Bokmål test", "seconds": time.perf_counter() - t0}
    gold_pass = [check_parse(gold_parse(g, scheme), GOLD_CONFIG).passed for g in gold]
    texts = [u.text or u.key for u, _ in pairs]
    pred_pass = [v.passed for v in judge(oracle, texts, GOLD_CONFIG)]
    res["rule_agreement"] = _agreement(gold_pass, pred_pass)
    tok_pass = [check_parse(p, GOLD_CONFIG).passed for p in pred_gold_tok]
    res["rule_agreement_gold_tokens"] = _agreement(gold_pass, tok_pass)
    gram, ungram = nocola
    vg = judge(oracle, gram, RuleConfig(truncate=False))
    vu = judge(oracle, ungram, RuleConfig(truncate=False))
    res["nocola"] = {
        "auroc_pass": _auroc([float(v.passed) for v in vg], [float(v.passed) for v in vu]),
        "auroc_q": _auroc([v.q for v in vg], [v.q for v in vu]),
        "pass_grammatical": 100 * sum(v.passed for v in vg) / len(vg),
        "pass_ungrammatical": 100 * sum(v.passed for v in vu) / len(vu),
        "n_grammatical": len(vg), "n_ungrammatical": len(vu)}
    vf = judge(oracle, flores, RuleConfig(truncate=False))
    res["flores_pass"] = 100 * sum(v.passed for v in vf) / len(vf)
    res["flores_verdicts"] = [v.passed for v in vf]
    if throughput_texts is not None:
        res["throughput"] = throughput(oracle, throughput_texts)
    res["cache"] = cache_speedup(oracle, flores[:300])
    return res


def throughput(oracle: Any, texts: list[str], repeats: int = 2) -> dict[str, float]:
    """Words/s of raw parsing vs the oracle (split + parse + rule), same texts, same run.

    For spaCy the raw baseline is ``nlp.pipe`` over the texts; for Stanza its bulk call on the
    texts as one pre-tokenized sentence each. Runs alternate and the best of ``repeats`` counts.
    """
    words = _words(texts)
    raw_best = oracle_best = float("inf")
    nlp: Any = getattr(oracle, "nlp", None)
    is_spacy = hasattr(nlp, "pipe")
    for _ in range(repeats):
        t0 = time.perf_counter()
        if is_spacy:
            for _doc in nlp.pipe(texts, batch_size=oracle.batch_size,
                                 n_process=oracle.n_process):
                pass
        else:
            from evalkit.oracles.base import simple_tokenize

            toks = [simple_tokenize(t) for t in texts]
            for i in range(0, len(toks), oracle.batch_size):
                nlp(toks[i: i + oracle.batch_size])
        raw_best = min(raw_best, time.perf_counter() - t0)
        t0 = time.perf_counter()
        judge(oracle, texts)
        oracle_best = min(oracle_best, time.perf_counter() - t0)
    return {"words": words, "raw_words_per_s": words / raw_best,
            "oracle_words_per_s": words / oracle_best,
            "ratio": raw_best / oracle_best}


def cache_speedup(oracle: Oracle, sentences: list[str]) -> dict[str, float]:
    """Seconds to parse ``sentences`` vs to fetch them from a warm parse cache.

    ``disk``: a fresh :class:`CachedOracle` (empty memory level) reading the sqlite store, as a new
    process would; ``memory``: repeated lookups in the same process.
    """
    from evalkit.oracles.cache import CachedOracle, ParseCache

    with tempfile.TemporaryDirectory() as tmp:
        cache = ParseCache(Path(tmp) / "parses.sqlite")
        t0 = time.perf_counter()
        oracle.parse(sentences)
        parse_s = time.perf_counter() - t0
        CachedOracle(oracle, cache).parse(sentences)  # fill the disk level
        disk_best = mem_best = float("inf")
        for _ in range(3):
            cached = CachedOracle(oracle, cache)
            t0 = time.perf_counter()
            cached.parse(sentences)
            disk_best = min(disk_best, time.perf_counter() - t0)
            t0 = time.perf_counter()
            cached.parse(sentences)
            mem_best = min(mem_best, time.perf_counter() - t0)
        cache.close()
    return {"n": len(sentences), "parse_s": parse_s, "disk_hit_s": disk_best,
            "memory_hit_s": mem_best, "disk_speedup": parse_s / disk_best,
            "memory_speedup": parse_s / mem_best}


def validate(oracles: Sequence[str] = ("spacy", "stanza"), *, nocola_per_class: int = 1000,
             seed: int = 0, n_process: int = 1, out_json: Path | None = None,
             benchmarks: Path | None = None, reuse: Path | None = None) -> dict[str, Any]:
    """Run every measurement for the named oracles and (optionally) write them out.

    Args:
        oracles: any of ``"spacy"`` (shipped training oracle), ``"stanza"`` (shipped held-out
            evaluator), ``"spacy:<model or path>"``, ``"stanza:<path or nb>"``.
        nocola_per_class: NoCoLA dev sentences per class (seeded sample; 0 = all).
        seed: sampling seed.
        n_process: spaCy ``n_process`` for the throughput measurement.
        out_json: where to write the raw results.
        benchmarks: a BENCHMARKS.md to (re)write the ``## Norwegian grammar oracles`` section of.
        reuse: an earlier ``out_json``; oracles found there with the same name, model hash and
            settings are not measured again (lets one oracle be re-validated alone).

    Returns:
        ``{"oracles": {name: results}, "cross_oracle": {...}, "machine": ...}``.
    """
    pairs = held_out_pairs()
    gram, ungram = load_nocola("dev")
    rng = random.Random(seed)
    if nocola_per_class:
        gram = rng.sample(gram, min(nocola_per_class, len(gram)))
        ungram = rng.sample(ungram, min(nocola_per_class, len(ungram)))
    flores = flores_nob()
    results: dict[str, Any] = {"oracles": {}, "machine": machine()}
    # scheme mapping itself: rule on UD gold vs rule on NDT gold, same sentences
    ud_pass = [check_parse(gold_parse(u, "ud"), GOLD_CONFIG).passed for u, _ in pairs]
    ndt_pass = [check_parse(gold_parse(n, "ndt"), GOLD_CONFIG).passed for _, n in pairs]
    results["gold_ud_vs_ndt"] = _agreement(ud_pass, ndt_pass)
    verdicts: dict[str, list[bool]] = {}
    old = json.loads(reuse.read_text())["oracles"] if reuse is not None and reuse.exists() else {}
    settings = {"nocola_per_class": nocola_per_class, "seed": seed, "n_process": n_process}
    for spec in oracles:
        oracle = load_oracle(spec, n_process=n_process)
        prev = old.get(oracle.name)
        if (prev and prev.get("model_hash") == oracle.model_hash
                and prev.get("settings") == settings):
            r = prev
        else:
            r = validate_oracle(oracle, pairs=pairs, nocola=(gram, ungram), flores=flores,
                                throughput_texts=flores)
            r["settings"] = settings
        verdicts[r["name"]] = r["flores_verdicts"]
        results["oracles"][r["name"]] = r
    names = list(verdicts)
    results["cross_oracle"] = {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            agr = _agreement(verdicts[a], verdicts[b])
            results["cross_oracle"][f"{a} vs {b}"] = {"accuracy": agr["accuracy"],
                                                      "kappa": agr["kappa"], "n": agr["n"]}
    if out_json is not None:
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(results, indent=2))
    if benchmarks is not None:
        write_benchmarks(results, benchmarks)
    return results


def load_oracle(spec: str, n_process: int = 1) -> Any:
    """``spacy`` / ``stanza`` / ``spacy:<model>`` / ``stanza:<model>`` / a registered name → an
    oracle (:func:`evalkit.oracles.specs.load_oracle`); ``n_process`` goes to spaCy oracles."""
    from evalkit.oracles.specs import load_oracle as load

    return load(spec, {"n_process": n_process} if spec.startswith("spacy") else {})


def machine() -> str:
    """A one-line description of this machine."""
    import os

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} CPU cores ({cpu}), {platform.system()}, "
            f"Python {platform.python_version()}")


SECTION = "## Norwegian grammar oracles"


def _fmt(x: float | None, digits: int = 2) -> str:
    """A κ or AUROC for the table; "n/a" where it is undefined (one label or one class only)."""
    return "n/a" if x is None else f"{x:.{digits}f}"


def render(results: dict[str, Any]) -> str:
    """The BENCHMARKS.md section as markdown."""
    lines = [SECTION, "",
             f"Machine: {results['machine']} (shared with other jobs: timings are noisy). "
             "Produced by `evalkit oracle validate` / `python bench/bench_oracles.py`.", "",
             "| oracle | scheme | UAS | LAS | rule agreement (acc / κ) | same, gold tokens | "
             "gold / pred pass % | NoCoLA AUROC (pass / q) | FLORES pass % |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in results["oracles"].items():
        a, ra, rt, nc = r["attachment"], r["rule_agreement"], r["rule_agreement_gold_tokens"], \
            r["nocola"]
        lines.append(
            f"| {name} | {r['scheme']} | {a['uas']:.1f} | {a['las']:.1f} | "
            f"{ra['accuracy']:.1f} % / {_fmt(ra['kappa'])} | {rt['accuracy']:.1f} % / "
            f"{_fmt(rt['kappa'])} | {ra['gold_pass']:.1f} / {ra['pred_pass']:.1f} | "
            f"{_fmt(nc['auroc_pass'], 3)} / {_fmt(nc['auroc_q'], 3)} | {r['flores_pass']:.1f} |")
    lines += ["", "| oracle | raw parser words/s | oracle (split+parse+rule) words/s | ratio | "
              "cache hit speed-up over parsing: disk (sqlite) / in-process |",
              "|---|---:|---:|---:|---:|"]
    for name, r in results["oracles"].items():
        t, c = r.get("throughput"), r["cache"]
        if t:
            lines.append(f"| {name} | {t['raw_words_per_s']:,.0f} | {t['oracle_words_per_s']:,.0f}"
                         f" | {100 * t['ratio']:.0f} % | {c['disk_speedup']:,.0f}× / "
                         f"{c['memory_speedup']:,.0f}× ({c['n']} sentences, parse "
                         f"{c['parse_s']:.2f} s) |")
    g = results["gold_ud_vs_ndt"]
    lines += ["", f"Rule on UD gold vs NDT gold trees of the same {g['n']} sentences: "
              f"{g['accuracy']:.1f} % agreement (κ {_fmt(g['kappa'])}; pass {g['gold_pass']:.1f} % "
              f"vs {g['pred_pass']:.1f} %): the scheme mapping's own disagreement."]
    for pair, c in results.get("cross_oracle", {}).items():
        lines.append(f"Cross-oracle agreement on FLORES nob devtest ({c['n']} sentences), {pair}: "
                     f"{c['accuracy']:.1f} % (κ {_fmt(c['kappa'])}).")
    lines += ["", "Held-out gold = the 1,923 UD Bokmål test sentences found in NDT (none trained "
              "on); rule agreement = rule on gold tree vs full oracle path from raw text (one "
              "sentence per gold sentence, no truncation). NoCoLA: seeded sample of dev, "
              "grammatical vs ungrammatical; the rule checks clause structure, not learner "
              "errors, so AUROC near 0.5 is expected.", ""]
    return "\n".join(lines)


def write_benchmarks(results: dict[str, Any], path: Path) -> None:
    """Replace (or append) this module's section in ``path``, leaving other sections alone."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\n"
    section = render(results)
    start = text.find(SECTION)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + ("\n" + text[end + 1:] if end != -1 else "\n")
    path.write_text(text, encoding="utf-8")
