"""Aggregate metrics shared by tasks: the `Metric` declaration, means and rates with CIs, AUROC.

A task declares each metric it reports as a `Metric` (name, direction, kind, scale, per-sample
key) next to the code that computes it; the declaration travels with the value into the
RunSummary (fields ``kind``, ``scale``, ``per_sample_key`` of each metric entry), and the
results table, `evalkit compare`, the viewer and the boards read it instead of inferring it
from the numbers. Kinds:

* ``"proportion"`` — the mean of 0/1 per-sample outcomes (× `scale`);
* ``"mean"`` — the mean of real per-sample values (× `scale`);
* ``"ratio"`` — Σ per-sample numerators / Σ denominators, the per-sample key holding each
  sample's list of 0/1 outcomes (IFEval's instruction level);
* ``"corpus"`` — computed over the whole sample set at once (sacrebleu scores, perplexity,
  AUROC, parse score, kappa); the per-sample key, if any, holds sufficient statistics
  (sacrebleu's ``<metric>_stats``).

Every function is pure (no I/O, no model) and takes per-sample values, so saved generations can
be re-scored and leaderboards can recompute paired statistics from records alone. The
statistics themselves (intervals, bootstrap, AUROC) live in :mod:`evalkit.stats`.

Interval per kind of mean (``MetricValue.ci_method`` names it in every record):

* ``kind="proportion"`` — a mean of 0/1 outcomes (a rate, an accuracy, a pass rate): the
  Wilson score interval (``"wilson"``), which is never of zero width;
* ``kind="mean"`` — any other per-sample value: the 1,000-resample percentile bootstrap
  (``"bootstrap-percentile-1000"``); an interval of zero width from fewer than 30 values (all
  values equal) is withheld and the note says so;
* ``kind="auto"`` (default) — ``"proportion"`` when every value is 0 or 1, else ``"mean"``.
  Callers that know their kind pass it: a continuous score that happens to be all 0/1 on a
  small sample then keeps its bootstrap, and a proportion that is not 0/1 raises.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from evalkit.stats import (
    BOOTSTRAP_RESAMPLES,
    MIN_N_ZERO_WIDTH,
    auroc,
    auroc_bootstrap,
    is_binary,
    percentile_interval,
    resample_weights,
    wilson_interval,
)
from evalkit.types import MetricValue

__all__ = ["BOOTSTRAP_RESAMPLES", "Metric", "auroc", "auroc_metric", "mean_metric",
           "resample_weights"]

MeanKind = Literal["auto", "proportion", "mean"]
MetricKind = Literal["proportion", "mean", "ratio", "corpus"]
METRIC_KINDS: tuple[str, ...] = ("proportion", "mean", "ratio", "corpus")


@dataclass(frozen=True, slots=True)
class Metric:
    """The declaration of one reported metric.

    Attributes:
        name: the key in ``ScoredTask.metrics`` and the RunSummary.
        kind: ``proportion``, ``mean``, ``ratio`` or ``corpus`` (see the module docstring).
        higher_is_better: direction.
        scale: the metric is the mean of the per-sample values × `scale` (1, or 100 for a
            percentage); 1 for ratio and corpus metrics.
        per_sample_key: the key in ``SampleRecord.scores`` holding this metric's per-sample
            values (for a ratio, each sample's list of outcomes; for a sacrebleu score, its
            sufficient statistics), or None when the records hold none.
    """

    name: str
    kind: MetricKind
    higher_is_better: bool = True
    scale: float = 1.0
    per_sample_key: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in METRIC_KINDS:
            raise ValueError(f"metric {self.name}: kind must be one of {METRIC_KINDS}, "
                             f"not {self.kind!r}")
        if self.kind in ("ratio", "corpus") and self.scale != 1.0:
            raise ValueError(f"metric {self.name}: a {self.kind} metric has scale 1")

    @property
    def sample_key(self) -> str:
        """`per_sample_key`, for the code that writes the per-sample values."""
        if self.per_sample_key is None:
            raise ValueError(f"metric {self.name} declares no per-sample key")
        return self.per_sample_key

    def mean(self, values: Sequence[float | None], *, seed: int = 0,
             note: str | None = None) -> MetricValue:
        """The mean of per-sample `values` with its CI (`mean_metric`), declared.

        A ``proportion`` asks `mean_metric` for the Wilson interval (and so refuses values
        that are not 0/1); a ``mean`` keeps its ``auto`` choice of interval.
        """
        if self.kind not in ("proportion", "mean"):
            raise ValueError(f"metric {self.name} is a {self.kind}, not a mean")
        ci_kind: MeanKind = "proportion" if self.kind == "proportion" else "auto"
        return self.declare(mean_metric(values, kind=ci_kind,
                                        higher_is_better=self.higher_is_better,
                                        scale=self.scale, seed=seed, note=note))

    def declare(self, value: MetricValue) -> MetricValue:
        """`value` (computed elsewhere, e.g. a corpus score) carrying this declaration."""
        if value.higher_is_better != self.higher_is_better:
            raise ValueError(f"metric {self.name}: the value says higher_is_better="
                             f"{value.higher_is_better}, the declaration the opposite")
        return dataclasses.replace(value, kind=self.kind, scale=self.scale,
                                   per_sample_key=self.per_sample_key)


def _join(*notes: str | None) -> str | None:
    parts = [n for n in notes if n]
    return "; ".join(parts) if parts else None


def mean_metric(values: Sequence[float | None], *, kind: MeanKind = "auto",
                higher_is_better: bool = True, scale: float = 1.0, seed: int = 0,
                note: str | None = None) -> MetricValue:
    """Mean of per-sample values (None = excluded) with SE and a 95 % CI chosen by `kind`.

    `scale` multiplies the values (e.g. 100 for percent); 0/1 detection looks at the values
    before scaling. SE is the sample standard deviation over √n.
    """
    import numpy as np

    if kind not in ("auto", "proportion", "mean"):
        raise ValueError(f"mean_metric kind must be auto, proportion or mean, not {kind!r}")
    raw = [float(v) for v in values if v is not None]
    n = len(raw)
    if n == 0:
        return MetricValue(value=None, n=0, higher_is_better=higher_is_better, note=note)
    binary = is_binary(raw)
    if kind == "proportion" and not binary:
        raise ValueError("mean_metric(kind='proportion') needs 0/1 values")
    xs = np.asarray(raw) * scale
    mean = float(xs.mean())
    se = float(xs.std(ddof=1) / math.sqrt(n)) if n > 1 else None
    if kind == "proportion" or (kind == "auto" and binary):
        lo, hi = wilson_interval(sum(raw), n)
        return MetricValue(value=mean, n=n, higher_is_better=higher_is_better, se=se,
                           ci=(lo * scale, hi * scale), ci_method="wilson", note=note)
    ci = None
    if n > 1:
        ci = percentile_interval(resample_weights(n, seed=seed) @ xs / n, n=n)
    why = None
    if ci is None and n < MIN_N_ZERO_WIDTH:
        why = f"no CI: {n} value(s)" + (", all equal" if n > 1 else "")
    return MetricValue(value=mean, n=n, higher_is_better=higher_is_better, se=se, ci=ci,
                       ci_method=f"bootstrap-percentile-{BOOTSTRAP_RESAMPLES}" if ci else None,
                       note=_join(note, why))


def auroc_metric(scores: Sequence[float], labels: Sequence[int], seed: int = 0,
                 resamples: int = BOOTSTRAP_RESAMPLES) -> MetricValue:
    """AUROC with a 95 % stratified percentile-bootstrap CI."""
    value = auroc(scores, labels)
    if value is None:
        return MetricValue(value=None, n=len(scores), note="one class only")
    ci = percentile_interval(auroc_bootstrap(scores, labels, resamples, seed), n=len(scores))
    return MetricValue(value=value, n=len(scores), ci=ci,
                       ci_method=f"stratified-bootstrap-{resamples}" if ci else None)
