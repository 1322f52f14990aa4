"""Log-likelihood tasks of SAGA's table and Basque grammatical knowledge.

* ``ppl:nob`` — PPL-Wiki (reconstructed, protocols.md §3): token-level perplexity
  ``exp(ΣNLL / Σtokens)`` over held-out Bokmål text, one BOS-prefixed sentence at a time. The text
  is the 1,939 UD Bokmål **test** sentences (``nob_sentences/ud_no_bokmaal-test.sentences.txt``:
  news, blogs, non-fiction; held out from evalkit's embedded model). SAGA used Norwegian
  Wikipedia, which the mirror lacks, so absolute values differ from SAGA's. Every continuation
  token after the BOS is scored; no EOS is appended. Perplexity is comparable only between models
  sharing one tokenizer; ``bits_per_byte`` (ΣNLL / ln 2 / ΣUTF-8 bytes) is reported beside it
  for cross-tokenizer comparisons.
* ``scala:nob`` — ScaLA-nb (see :mod:`evalkit.tasks.scala_nob`): AUROC of the mean per-token
  log-prob (length-normalised, because deletions shorten sentences) of correct vs corrupted
  texts, and the summed-log-prob AUROC beside it; plus the paired accuracy (correct scores
  above its own corruption).
* ``bl2mp:eus`` — BL2MP Basque minimal pairs: accuracy = share of pairs with summed
  log P(good) > log P(bad) (ties count as wrong, as in lm-eval's BLiMP tasks), overall, per
  error type and per CEFR level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from evalkit.errors import BadInput
from evalkit.metrics import auroc_metric, mean_metric
from evalkit.stats import bootstrap_replicates, percentile_interval
from evalkit.types import (LoglikRequest, LoglikResult, MetricValue, Output, Sample,
                           ScoredTask, ScoringContext)

PPL_TEXT = "nob_sentences/ud_no_bokmaal-test.sentences.txt"
BL2MP_FILE = "bl2mp/bl2mp.jsonl"
TOKENIZER_NOTE = ("comparable only between models with the same tokenizer; use bits_per_byte "
                  "across tokenizers")


def _ll(outs: Sequence[Output], k: int) -> LoglikResult:
    o = outs[k] if k < len(outs) else None
    if not isinstance(o, LoglikResult):
        raise BadInput(f"expected a log-likelihood output at position {k}, got "
                       f"{type(o).__name__}; re-run the task (stale or foreign records?)")
    return o


# ---------------------------------------------------------------------------------------------
# pure scoring functions
# ---------------------------------------------------------------------------------------------

def perplexity(nll: Sequence[float], n_tokens: Sequence[int], seed: int = 0,
               resamples: int = 1000) -> MetricValue:
    """Corpus perplexity exp(ΣNLL/Σtokens) with a 95 % bootstrap CI over sentences."""
    import numpy as np

    x = np.asarray(nll, dtype=float)
    n = np.asarray(n_tokens, dtype=float)
    if n.sum() <= 0:
        return MetricValue(value=None, n=len(x), higher_is_better=False, note="no tokens")
    value = float(math.exp(x.sum() / n.sum()))
    ci = None
    if len(x) > 1:
        boot = bootstrap_replicates(lambda w: np.exp((w @ x) / np.maximum(w @ n, 1e-9)),
                                    len(x), resamples, seed)
        ci = percentile_interval(boot, n=len(x))
    return MetricValue(value=value, n=len(x), higher_is_better=False, ci=ci,
                       ci_method=f"bootstrap-percentile-{resamples} (sentences)" if ci else None,
                       note=TOKENIZER_NOTE)


def bits_per_byte(nll: Sequence[float], n_bytes: Sequence[int]) -> MetricValue:
    """ΣNLL (nats) / ln 2 / ΣUTF-8 bytes: tokenizer-independent."""
    total = sum(n_bytes)
    return MetricValue(value=sum(nll) / math.log(2) / total if total else None, n=len(nll),
                       higher_is_better=False)


def pair_wins(good: Sequence[float], bad: Sequence[float]) -> list[float]:
    """1.0 where good > bad strictly, else 0.0 (ties lose)."""
    return [float(g > b) for g, b in zip(good, bad)]


# ---------------------------------------------------------------------------------------------
# ppl:nob
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PerplexityTask:
    """PPL-Wiki (reconstructed) on held-out Bokmål sentences."""

    name: str = "ppl:nob"
    version: str = "1"
    language: str = "nob_Latn"
    description: str = "Token-level perplexity, UD Bokmål test sentences, BOS-prefixed"
    source: str = PPL_TEXT

    def samples(self, data: Any) -> list[Sample]:
        """One sample per non-empty line."""
        lines = [x.strip() for x in data.read_lines(self.source)]
        return [Sample(id=f"test-{i:04d}", data={"text": t}) for i, t in enumerate(lines) if t]

    def requests(self, sample: Sample, chat: bool) -> list[LoglikRequest]:
        """The whole sentence after a BOS (empty context)."""
        return [LoglikRequest("", sample.data["text"])]

    def score(self, samples: Sequence[Sample], outputs: Sequence[Sequence[Output]],
              ctx: ScoringContext) -> ScoredTask:
        """Corpus perplexity, bits per byte, per-sentence NLL."""
        res = [_ll(o, 0) for o in outputs]
        nll = [-r.logprob for r in res]
        ntok = [r.n_tokens for r in res]
        nbytes = [len(s.data["text"].encode("utf-8")) for s in samples]
        metrics = {"perplexity": perplexity(nll, ntok, ctx.seed),
                   "bits_per_byte": bits_per_byte(nll, nbytes),
                   "tokens": MetricValue(value=float(sum(ntok)), n=len(ntok),
                                         higher_is_better=False,
                                         note="scored tokens (tokenizer-dependent)")}
        per = [{"nll": a, "n_tokens": b, "n_bytes": c} for a, b, c in zip(nll, ntok, nbytes)]
        meta = {"text": self.source, "bos_prefixed": True, "eos_scored": False,
                "comparability": TOKENIZER_NOTE,
                "reconstructed": "PPL-Wiki on UD Bokmål test (mirror has no Wikipedia)"}
        return ScoredTask(per, metrics, meta)


# ---------------------------------------------------------------------------------------------
# scala:nob
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScalaTask:
    """ScaLA-nb grammaticality: log-prob AUROC of correct vs corrupted sentences."""

    name: str = "scala:nob"
    version: str = "1"
    language: str = "nob_Latn"
    description: str = "ScaLA-nb (rebuilt, seeded): AUROC of mean per-token log-prob"

    def samples(self, data: Any) -> list[Sample]:
        """1,024 (correct, corrupted) pairs from the cached build."""
        from evalkit.tasks.scala_nob import load_scala

        return [Sample(id=r["id"], data=r, reference=r["corruption_type"])
                for r in load_scala(data)]

    def requests(self, sample: Sample, chat: bool) -> list[LoglikRequest]:
        """Correct text, then corrupted text, each after a BOS."""
        return [LoglikRequest("", sample.data["correct"]),
                LoglikRequest("", sample.data["incorrect"])]

    def score(self, samples: Sequence[Sample], outputs: Sequence[Sequence[Output]],
              ctx: ScoringContext) -> ScoredTask:
        """AUROC (mean and sum variants) with stratified bootstrap CIs; paired accuracy."""
        good = [_ll(o, 0) for o in outputs]
        bad = [_ll(o, 1) for o in outputs]
        mean_g = [r.logprob / max(1, r.n_tokens) for r in good]
        mean_b = [r.logprob / max(1, r.n_tokens) for r in bad]
        labels = [1] * len(good) + [0] * len(bad)
        metrics = {
            "auroc": auroc_metric(mean_g + mean_b, labels, seed=ctx.seed),
            "auroc_sum": auroc_metric([r.logprob for r in good + bad], labels, seed=ctx.seed),
            "pair_accuracy": mean_metric(pair_wins(mean_g, mean_b), seed=ctx.seed,
                                         note="mean log-prob of correct > its corruption"),
        }
        by_kind: dict[str, list[float]] = {}
        for s, g, b in zip(samples, mean_g, mean_b):
            by_kind.setdefault(s.data["corruption_type"], []).append(float(g > b))
        for kind, wins in sorted(by_kind.items()):
            metrics[f"pair_accuracy[{kind}]"] = mean_metric(wins, seed=ctx.seed)
        per = [{"lp_correct": g.logprob, "n_correct": g.n_tokens, "lp_incorrect": b.logprob,
                "n_incorrect": b.n_tokens, "mean_correct": mg, "mean_incorrect": mb,
                "corruption_type": s.data["corruption_type"]}
               for s, g, b, mg, mb in zip(samples, good, bad, mean_g, mean_b)]
        from evalkit.tasks.scala_nob import RECIPE_VERSION, SEED

        meta = {"recipe": f"ScaLA (EuroEval create_scala) rebuilt, v{RECIPE_VERSION}, seed {SEED}",
                "source": "UD Bokmål dev+test (mirror)", "auroc_score": "mean per-token log-prob",
                "reconstructed": True}
        return ScoredTask(per, metrics, meta)


# ---------------------------------------------------------------------------------------------
# bl2mp:eus
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Bl2mpTask:
    """BL2MP: Basque learner minimal pairs, summed log-prob comparison."""

    name: str = "bl2mp:eus"
    version: str = "1"
    language: str = "eus_Latn"
    description: str = "BL2MP Basque minimal pairs: accuracy of log P(good) > log P(bad)"

    def samples(self, data: Any) -> list[Sample]:
        """All 1,800 pairs, ids in file order."""
        rows = data.read_jsonl(BL2MP_FILE, hub_hint="orai-nlp/bl2mp")
        out = []
        for i, r in enumerate(rows):
            missing = {"sentence_good", "sentence_bad", "type", "level"} - set(r)
            if missing:
                raise BadInput(f"{BL2MP_FILE} line {i + 1}: missing {sorted(missing)}")
            out.append(Sample(id=f"bl2mp-{i:04d}", data=r, reference="good"))
        return out

    def requests(self, sample: Sample, chat: bool) -> list[LoglikRequest]:
        """Good sentence, then bad sentence, each after a BOS."""
        return [LoglikRequest("", sample.data["sentence_good"]),
                LoglikRequest("", sample.data["sentence_bad"])]

    def score(self, samples: Sequence[Sample], outputs: Sequence[Sequence[Output]],
              ctx: ScoringContext) -> ScoredTask:
        """Accuracy with CI; per error type and CEFR level."""
        good = [_ll(o, 0).logprob for o in outputs]
        bad = [_ll(o, 1).logprob for o in outputs]
        wins = pair_wins(good, bad)
        metrics = {"accuracy": mean_metric(wins, seed=ctx.seed)}
        for field, label in (("type", "type"), ("level", "level")):
            groups: dict[str, list[float]] = {}
            for s, w in zip(samples, wins):
                groups.setdefault(str(s.data[field]), []).append(w)
            for key, ws in sorted(groups.items()):
                metrics[f"accuracy[{label}={key}]"] = mean_metric(ws, seed=ctx.seed)
        per = [{"lp_good": g, "lp_bad": b, "correct": bool(w), "type": s.data["type"],
                "level": s.data["level"]} for s, g, b, w in zip(samples, good, bad, wins)]
        return ScoredTask(per, metrics, {"comparison": "summed token log-probs, ties wrong"})


def _check_name(name: str, family: str, lang: str) -> None:
    parts = name.split(":")
    if len(parts) != 2 or parts[1] != lang:
        raise BadInput(f"task {name!r}: only {family}:{lang} exists")


def make_ppl_task(name: str) -> PerplexityTask:
    """Factory for ``ppl:nob``."""
    _check_name(name, "ppl", "nob")
    return PerplexityTask()


def make_scala_task(name: str) -> ScalaTask:
    """Factory for ``scala:nob``."""
    _check_name(name, "scala", "nob")
    return ScalaTask()


def make_bl2mp_task(name: str) -> Bl2mpTask:
    """Factory for ``bl2mp:eus``."""
    _check_name(name, "bl2mp", "eus")
    return Bl2mpTask()
