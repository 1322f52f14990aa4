"""Corpus translation metrics (sacrebleu) with per-sentence sufficient statistics.

The corpus score is sacrebleu's own ``corpus_score`` (so it equals sacrebleu by construction);
the per-sentence sufficient statistics it sums are kept, which makes 1,000-resample bootstrap
CIs and paired tests one matrix product (resample counts × statistics) plus sacrebleu's score
formula evaluated for all resamples at once in numpy (:func:`scores_from_stats`, tested equal to
sacrebleu's ``_compute_score_from_stats`` per resample), instead of re-tokenising the corpus per
resample as lm-eval does (capped at 100).
"""

from __future__ import annotations

import functools
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
    metric._check_corpus_score_args(hyps, [refs])
    # what corpus_score does, minus a second pass over the corpus: its score is sacrebleu's
    # formula over the summed per-sentence statistics
    raw = metric._extract_corpus_statistics(hyps, [refs])
    score = metric._aggregate_and_compute(raw).score
    stats = np.asarray(raw, dtype=float)
    return CorpusResult(name, float(score), str(metric.get_signature()), stats)


def score_from_stats(name: str, summed: Sequence[float]) -> float:
    """Corpus score from summed sufficient statistics (sacrebleu's own formula)."""
    metric = make_metric(name)
    return float(metric._compute_score_from_stats([int(round(x)) for x in summed]).score)


def scores_from_stats(name: str, sums: Any) -> Any:
    """Corpus scores of many rows of summed statistics at once (one row per resample).

    sacrebleu's ``_compute_score_from_stats`` formula in numpy over a (rows × statistics)
    matrix: BLEU with the metric's smoothing ('exp', 'floor' or 'none'; brevity penalty, the
    stop at the first order without n-grams, the -9999999999 log floor), chrF/chrF++ with
    effective-order or epsilon smoothing. Settings outside these fall back to sacrebleu's own
    function row by row. tests/test_mt_metrics.py checks it against sacrebleu per resample.
    """
    import numpy as np

    metric = make_metric(name)
    m = np.asarray(sums, dtype=float)
    if m.ndim != 2:
        raise ValueError(f"scores_from_stats needs a 2-D matrix, got shape {m.shape}")
    if _SPECS_CLASS[name] == "BLEU":
        if metric.smooth_method in ("exp", "floor", "none") and not metric.effective_order:
            return _bleu_scores(m, metric.max_ngram_order, metric.smooth_method,
                                metric.smooth_value)
    elif hasattr(metric, "_compute_f_score"):
        return _chrf_scores(m, metric.order, metric.beta,
                            metric.eps_smoothing)
    compute = metric._compute_score_from_stats
    return np.asarray([compute([int(x) for x in row]).score for row in m.round()], dtype=float)


_SPECS_CLASS = {k: v[0] for k, v in SPECS.items()}


def _bleu_scores(m: Any, order: int, smooth: str, smooth_value: float | None) -> Any:
    """``BLEU.compute_bleu`` over every row (same operations in the same order)."""
    import numpy as np

    sys_len, ref_len = m[:, 0], m[:, 1]
    correct, total = m[:, 2:2 + order], m[:, 2 + order:2 + 2 * order]
    with np.errstate(divide="ignore", invalid="ignore"):
        bp = np.where(sys_len < ref_len,
                      np.where(sys_len > 0, np.exp(1 - ref_len / sys_len), 0.0), 1.0)
        alive = np.cumprod(total > 0, axis=1).astype(bool)  # orders before the first total 0
        zero = correct == 0
        halvings = np.cumsum(zero & alive, axis=1)  # 'exp': smooth_mteval doubles per zero
        if smooth == "exp":
            smoothed = 100.0 / (np.power(2.0, halvings) * total)
        elif smooth == "floor":
            value = 0.1 if smooth_value is None else smooth_value
            smoothed = 100.0 * value / total
        else:
            smoothed = np.zeros_like(total)
        prec = np.where(alive, np.where(zero, smoothed, 100.0 * correct / total), 0.0)
        logs = np.where(prec == 0.0, -9999999999.0, np.log(np.where(prec > 0, prec, 1.0)))
    acc = logs[:, 0]
    for n in range(1, order):  # left to right, as Python's sum()
        acc = acc + logs[:, n]
    score = bp * np.exp(acc / order)
    return np.where(correct.any(axis=1), score, 0.0)


def _chrf_scores(m: Any, order: int, beta: int, eps_smoothing: bool) -> Any:
    """``CHRF._compute_f_score`` over every row (same operations in the same order)."""
    import numpy as np

    eps = 1e-16
    factor = beta ** 2
    rows = m.shape[0]
    score = np.zeros(rows)
    avg_prec = np.zeros(rows)
    avg_rec = np.zeros(rows)
    eff = np.zeros(rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(order):
            n_hyp, n_ref, n_match = m[:, 3 * i], m[:, 3 * i + 1], m[:, 3 * i + 2]
            prec = np.where(n_hyp > 0, n_match / n_hyp, eps)
            rec = np.where(n_ref > 0, n_match / n_ref, eps)
            denom = factor * prec + rec
            score = score + np.where(denom > 0, (1 + factor) * prec * rec / denom, eps)
            ok = (n_hyp > 0) & (n_ref > 0)
            avg_prec = np.where(ok, avg_prec + prec, avg_prec)
            avg_rec = np.where(ok, avg_rec + rec, avg_rec)
            eff = eff + ok
        if eps_smoothing:
            return 100 * score / order
        avg_prec = np.where(eff > 0, avg_prec / eff, 0.0)
        avg_rec = np.where(eff > 0, avg_rec / eff, 0.0)
        f = (1 + factor) * avg_prec * avg_rec
        f = f / ((factor * avg_prec) + avg_rec)
    return np.where(avg_prec + avg_rec != 0, 100 * f, 0.0)


@functools.lru_cache(maxsize=8)
def _weights(n: int, resamples: int, seed: int) -> Any:
    """`resample_weights`, drawn once per (n, resamples, seed): the metrics of one corpus share
    the draw (it costs more than the scoring). Read-only."""
    w = resample_weights(n, resamples, seed).astype(float)
    w.flags.writeable = False
    return w


def bootstrap_scores(name: str, stats: Any, resamples: int = BOOTSTRAP_RESAMPLES,
                     seed: int = 0) -> Any:
    """Corpus scores of `resamples` bootstrap resamples of the sentences (a numpy vector)."""
    return scores_from_stats(name, _weights(stats.shape[0], resamples, seed) @ stats)


def corpus_metric(name: str, hyps: Sequence[str], refs: Sequence[str], *,
                  resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> tuple[MetricValue, Any]:
    """A MetricValue with a 95 % percentile-bootstrap CI, plus the per-sentence statistics.

    A zero-width interval from fewer than 30 segments (e.g. every hypothesis equal to its
    reference) is withheld (``evalkit.stats.percentile_interval``).
    """
    res = corpus(name, hyps, refs)
    ci = se = None
    if len(hyps) > 1 and resamples > 0:
        boot = bootstrap_scores(name, res.stats, resamples, seed)
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
    diffs = bootstrap_scores(name, stats_sys, resamples, seed) - \
        bootstrap_scores(name, stats_base, resamples, seed)
    centred = diffs - diffs.mean()
    p = (np.sum(np.abs(centred) >= abs(real)) + 1) / (resamples + 1)
    lo, hi = percentile_interval(diffs) or (float("nan"), float("nan"))
    return {"delta": float(real), "p_value": float(p), "ci_low": lo, "ci_high": hi}
