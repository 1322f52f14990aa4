"""``ppl:nob``: token-level perplexity on held-out Bokmål text (SAGA's PPL-Wiki, reconstructed).

Perplexity is ``exp(ΣNLL / Σtokens)`` over held-out Bokmål text, one BOS-prefixed sentence at a
time. The text is the 1,939 UD Bokmål **test** sentences
(``nob_sentences/ud_no_bokmaal-test.sentences.txt``: news, blogs, non-fiction; held out from
evalkit's embedded model). SAGA used Norwegian Wikipedia, which the mirror lacks, so absolute
values differ from SAGA's. Every continuation token after the BOS is scored; no EOS is appended.
Perplexity is comparable only between models sharing one tokenizer; ``bits_per_byte``
(ΣNLL / ln 2 / ΣUTF-8 bytes) is reported beside it for cross-tokenizer comparisons.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from evalkit.metrics import Metric
from evalkit.stats import bootstrap_replicates, percentile_interval
from evalkit.tasks.loglik_utils import check_name, loglik_output
from evalkit.types import LoglikRequest, MetricValue, Output, Sample, ScoredTask, ScoringContext

PPL_TEXT = "nob_sentences/ud_no_bokmaal-test.sentences.txt"
#: corpus-level, lower is better; records keep each sentence's NLL and counts, not a share
PERPLEXITY = Metric("perplexity", "corpus", higher_is_better=False)
BITS_PER_BYTE = Metric("bits_per_byte", "corpus", higher_is_better=False)
TOKENS = Metric("tokens", "corpus", higher_is_better=False)
TOKENIZER_NOTE = ("comparable only between models with the same tokenizer; use bits_per_byte "
                  "across tokenizers")


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
        res = [loglik_output(o, 0) for o in outputs]
        nll = [-r.logprob for r in res]
        ntok = [r.n_tokens for r in res]
        nbytes = [len(s.data["text"].encode("utf-8")) for s in samples]
        metrics = {PERPLEXITY.name: PERPLEXITY.declare(perplexity(nll, ntok, ctx.seed)),
                   BITS_PER_BYTE.name: BITS_PER_BYTE.declare(bits_per_byte(nll, nbytes)),
                   TOKENS.name: TOKENS.declare(MetricValue(
                       value=float(sum(ntok)), n=len(ntok), higher_is_better=False,
                       note="scored tokens (tokenizer-dependent)"))}
        per = [{"nll": a, "n_tokens": b, "n_bytes": c} for a, b, c in zip(nll, ntok, nbytes)]
        meta = {"text": self.source, "bos_prefixed": True, "eos_scored": False,
                "comparability": TOKENIZER_NOTE,
                "reconstructed": "PPL-Wiki on UD Bokmål test (mirror has no Wikipedia)"}
        return ScoredTask(per, metrics, meta)


def make_ppl_task(name: str) -> PerplexityTask:
    """Factory for ``ppl:nob``."""
    check_name(name, "ppl", "nob")
    return PerplexityTask()
