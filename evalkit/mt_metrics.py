"""Corpus translation metrics (sacrebleu) with per-sentence sufficient statistics.

The corpus score is sacrebleu's own ``corpus_score`` (so it equals sacrebleu by construction);
the per-sentence sufficient statistics it sums are kept, which makes 1,000-resample bootstrap
CIs and paired tests a matrix product plus sacrebleu's ``_compute_score_from_stats`` per
resample, instead of re-tokenising the corpus per resample as lm-eval does (capped at 100).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from evalkit.stats import BOOTSTRAP_RESAMPLES, percentile_interval, resample_weights
from evalkit.types import MetricValue

#: name -> (sacrebleu class, kwargs). chrF is sacrebleu's default chrF2 (word order 0);
#: chrF++ is word order 2. spBLEU uses the flores200 SentencePiece tokenizer.
SPECS: dict[str, tuple[str, dict[str, Any]]] = {
    "bleu": ("BLEU", {"tokenize": "13a"}),
    "chrf": ("CHRF", {"word_order": 0}),
    "chrf++": ("CHRF", {"word_order": 2}),
    "spbleu": ("BLEU", {"tokenize": "flores200"}),
}


def spm_model_present() -> bool:
    """Whether sacrebleu's flores200 SentencePiece model is on disk (it downloads otherwise)."""
    from sacrebleu.tokenizers.tokenizer_spm import SPM_MODELS
    from sacrebleu.utils import SACREBLEU_DIR

    name = os.path.basename(SPM_MODELS["flores200"]["url"])
    return os.path.exists(os.path.join(SACREBLEU_DIR, "models", name))


def make_metric(name: str):  # noqa: ANN201
    """A fresh sacrebleu metric object (never a shared, mutable singleton)."""
    import sacrebleu.metrics as sm

    cls, kwargs = SPECS[name]
    return getattr(sm, cls)(**kwargs)


@dataclass(frozen=True)
class CorpusResult:
    """A corpus score, its sacrebleu signature and per-sentence sufficient statistics."""

    name: str
    score: float
    signature: str
    stats: Any  # numpy array (n_sentences × n_stats)


def corpus(name: str, hyps: Sequence[str], refs: Sequence[str]) -> CorpusResult:
    """sacrebleu corpus score plus per-sentence statistics, single reference per segment."""
    import numpy as np

    metric = make_metric(name)
    hyps, refs = list(hyps), list(refs)
    score = metric.corpus_score(hyps, [refs]).score
    stats = np.asarray(metric._extract_corpus_statistics(hyps, [refs]), dtype=float)
    return CorpusResult(name, float(score), str(metric.get_signature()), stats)


def score_from_stats(name: str, summed: Sequence[float]) -> float:
    """Corpus score from summed sufficient statistics (sacrebleu's own formula)."""
    metric = make_metric(name)
    return float(metric._compute_score_from_stats([int(round(x)) for x in summed]).score)


def bootstrap_scores(name: str, stats: Any, resamples: int = BOOTSTRAP_RESAMPLES,
                     seed: int = 0) -> list[float]:
    """Corpus scores of `resamples` bootstrap resamples of the sentences."""
    metric = make_metric(name)
    sums = resample_weights(stats.shape[0], resamples, seed) @ stats
    compute = metric._compute_score_from_stats
    return [float(compute([int(x) for x in row]).score) for row in sums.round().astype("int64")]


def corpus_metric(name: str, hyps: Sequence[str], refs: Sequence[str], *,
                  resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> tuple[MetricValue, Any]:
    """A MetricValue with a 95 % percentile-bootstrap CI, plus the per-sentence statistics.

    A zero-width interval from fewer than 30 segments (e.g. every hypothesis equal to its
    reference) is withheld (``evalkit.stats.percentile_interval``).
    """
    import numpy as np

    res = corpus(name, hyps, refs)
    ci = se = None
    if len(hyps) > 1 and resamples > 0:
        boot = np.asarray(bootstrap_scores(name, res.stats, resamples, seed))
        ci = percentile_interval(boot, n=len(hyps))
        se = float(boot.std(ddof=1)) if ci else None
    return MetricValue(value=res.score, n=len(hyps), higher_is_better=True, se=se, ci=ci,
                       ci_method=f"bootstrap-percentile-{resamples}" if ci else None,
                       signature=res.signature), res.stats


def paired_bootstrap(name: str, stats_sys: Any, stats_base: Any,
                     resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 12345) -> dict[str, float]:
    """Paired bootstrap test of system vs baseline on the same segments (sacrebleu's method).

    Both systems are resampled with the same indices; the p-value is the share of
    mean-centred resampled differences at least as large as the observed one, as in
    ``sacrebleu.significance`` (Koehn 2004 with the null-centred correction).
    """
    import numpy as np

    if stats_sys.shape != stats_base.shape:
        raise ValueError("paired test needs the same segments on both sides")
    real = score_from_stats(name, stats_sys.sum(0)) - score_from_stats(name, stats_base.sum(0))
    w = resample_weights(stats_sys.shape[0], resamples, seed)
    metric = make_metric(name)
    compute = metric._compute_score_from_stats
    a = [compute([int(x) for x in r]).score for r in (w @ stats_sys).round().astype("int64")]
    b = [compute([int(x) for x in r]).score for r in (w @ stats_base).round().astype("int64")]
    diffs = np.asarray(a) - np.asarray(b)
    centred = diffs - diffs.mean()
    p = (np.sum(np.abs(centred) >= abs(real)) + 1) / (resamples + 1)
    lo, hi = percentile_interval(diffs) or (float("nan"), float("nan"))
    return {"delta": float(real), "p_value": float(p), "ci_low": lo, "ci_high": hi}
