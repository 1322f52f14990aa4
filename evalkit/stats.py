"""The statistics evalkit reports: agreement, AUROC, intervals, bootstrap and paired tests.

One module, pure functions, numpy imported inside the functions (scipy only for the
Clopper–Pearson interval). Each function is tested against scipy, scikit-learn or statsmodels
on the same data (tests/test_stats.py).

Which interval for what (the method is named in every metric record's ``ci_method``):

* proportions — means of 0/1 outcomes (rates, accuracies, pass rates): the **Wilson score
  interval** (``wilson_interval``). It never has zero width, so three all-pass samples give
  ``1.000 [0.439, 1.000]``, not the percentile bootstrap's ``[1.000, 1.000]``;
* proportions pooled over clusters (IFEval's instruction-level accuracy: a prompt's
  instructions are not independent): Wilson at the design-effect effective sample size
  (``cluster_proportion``);
* corpus metrics (BLEU, chrF, perplexity, ratios of sums) and AUROC: the **percentile
  bootstrap** over items (``resample_weights`` + ``percentile_interval``). A bootstrap interval
  of zero width from fewer than ``MIN_N_ZERO_WIDTH`` observations is not reported (None): all
  resamples being equal says nothing about the population when n is that small.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

__all__ = [
    "BOOTSTRAP_RESAMPLES", "MIN_N_ZERO_WIDTH", "ClusterProportion", "auroc", "auroc_bootstrap",
    "bootstrap_replicates", "clopper_pearson_interval", "cluster_proportion", "cohen_kappa",
    "holm", "is_binary", "mcnemar_exact", "percentile_interval", "resample_weights",
    "sign_flip_test", "wilson_interval",
]

BOOTSTRAP_RESAMPLES = 1000
#: a percentile-bootstrap interval of zero width from fewer observations is withheld
MIN_N_ZERO_WIDTH = 30


def _z(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must lie in (0, 1), not {level}")
    return NormalDist().inv_cdf(0.5 + level / 2)


# ---------------------------------------------------------------------------------------------
# agreement and ranking
# ---------------------------------------------------------------------------------------------

def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's κ of two raters' labels (any hashable labels, e.g. bools or strings).

    κ = (p_o − p_e) / (1 − p_e) with p_e from the two raters' marginal label shares. None when
    it is undefined: no items, or chance agreement 1 (both raters used one and the same label
    throughout; scikit-learn's ``cohen_kappa_score`` returns NaN there).
    """
    if len(a) != len(b):
        raise ValueError(f"kappa needs paired labels: {len(a)} vs {len(b)}")
    n = len(a)
    if n == 0:
        return None
    po = sum(x == y for x, y in zip(a, b)) / n
    count_a: dict[Hashable, int] = {}
    count_b: dict[Hashable, int] = {}
    for x, y in zip(a, b):
        count_a[x] = count_a.get(x, 0) + 1
        count_b[y] = count_b.get(y, 0) + 1
    pe = sum(c * count_b.get(lab, 0) for lab, c in count_a.items()) / (n * n)
    if pe >= 1.0:
        return None
    return (po - pe) / (1 - pe)


def _average_ranks(x: Any) -> Any:
    """1-based ranks with ties given their average rank (``scipy.stats.rankdata``'s default)."""
    import numpy as np

    order = np.argsort(x, kind="mergesort")
    _, first, counts = np.unique(x[order], return_index=True, return_counts=True)
    ranks = np.empty(x.size, dtype=float)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return ranks


def auroc(scores: Sequence[float], labels: Sequence[int | bool]) -> float | None:
    """Area under the ROC curve: P(score of a positive > a negative) + ½ P(tie).

    Computed as the Mann–Whitney U of the positives over n_pos·n_neg, with tied scores given
    their average rank. None when one class is missing.
    """
    import numpy as np

    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels).astype(bool)
    if s.shape != y.shape:
        raise ValueError(f"auroc needs one label per score: {s.size} vs {y.size}")
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return None
    u = float(_average_ranks(s)[y].sum()) - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def auroc_bootstrap(scores: Sequence[float], labels: Sequence[int | bool],
                    resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> Any:
    """AUROC of `resamples` stratified bootstrap resamples (positives and negatives apart).

    Each class is resampled at its own size, so every resample has both classes.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels).astype(bool)
    pos, neg = s[y], s[~y]
    boots = np.empty(resamples)
    for b in range(resamples):
        p = rng.choice(pos, pos.size)
        q = np.sort(rng.choice(neg, neg.size))
        # P(pos > neg) + ½ P(tie) by binary search in the sorted negatives
        less = np.searchsorted(q, p, side="left")
        leq = np.searchsorted(q, p, side="right")
        boots[b] = float((less + 0.5 * (leq - less)).sum() / (p.size * q.size))
    return boots


# ---------------------------------------------------------------------------------------------
# intervals for proportions
# ---------------------------------------------------------------------------------------------

def is_binary(values: Sequence[float | bool]) -> bool:
    """Whether every value is 0 or 1 (bools included): a sample of 0/1 outcomes."""
    return all(v == 0 or v == 1 for v in values)


def wilson_interval(successes: float, n: float, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927).

    `successes` and `n` may be non-integer (an effective sample size). Never of zero width for
    n > 0; at 0 or n successes one end is exactly 0 or 1.
    """
    if n <= 0:
        raise ValueError("Wilson interval needs n > 0")
    if not 0 <= successes <= n:
        raise ValueError(f"successes {successes} outside [0, {n}]")
    z = _z(level)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return lo, hi


def clopper_pearson_interval(successes: int, n: int,
                             level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper–Pearson) interval from beta quantiles; conservative, wider than Wilson."""
    from scipy.stats import beta

    if n <= 0:
        raise ValueError("Clopper–Pearson interval needs n > 0")
    alpha = 1 - level
    lo = 0.0 if successes == 0 else float(beta.ppf(alpha / 2, successes, n - successes + 1))
    hi = 1.0 if successes == n else float(beta.ppf(1 - alpha / 2, successes + 1, n - successes))
    return lo, hi


@dataclass(frozen=True, slots=True)
class ClusterProportion:
    """A proportion pooled over clusters, its Wilson interval at the effective sample size."""

    value: float
    n: int            # trials (e.g. instructions)
    clusters: int     # clusters with at least one trial (e.g. prompts)
    n_effective: float
    ci: tuple[float, float]
    se: float | None


def cluster_proportion(successes: Sequence[float] | Any, trials: Sequence[float] | Any,
                       level: float = 0.95) -> ClusterProportion | None:
    """Σsuccesses / Σtrials over clusters, with a design-effect Wilson interval.

    The ratio's variance is the usual linearised (Taylor) estimate over clusters,
    v = m/(m−1) · Σ(y_j − R·t_j)² / (Σt)²; the design effect is v over the same estimate for
    independent trials, R(1−R)/(N−1) (so one trial per cluster gives exactly 1), and the Wilson
    interval is taken at N / design effect trials (capped at N: a design effect below 1 is not
    credited), as Korn & Graubard (1998) do for survey proportions. When R is 0 or 1 (or one
    cluster only) there is no variance to estimate, and each cluster counts as one observation
    (the effective size if a cluster's trials always agree), so the interval does not shrink
    with trials that may all move together. None when there are no trials.
    """
    import numpy as np

    y = np.asarray(successes, dtype=float)
    t = np.asarray(trials, dtype=float)
    keep = t > 0
    y, t = y[keep], t[keep]
    total = float(t.sum())
    if total <= 0:
        return None
    m = int(t.size)
    r = float(y.sum() / total)
    se = None
    if m > 1:
        v = m / (m - 1) * float(((y - r * t) ** 2).sum()) / total ** 2
        se = math.sqrt(v)
    if se is not None and 0.0 < r < 1.0 and se > 0:
        deff = se ** 2 / (r * (1 - r) / (total - 1))
        n_eff = min(total, total / deff)
    elif se is not None and 0.0 < r < 1.0:
        n_eff = total  # every cluster at exactly the pooled rate: no extra variance
    else:
        n_eff = float(min(m, total))
    return ClusterProportion(value=r, n=int(round(total)), clusters=m, n_effective=n_eff,
                             ci=wilson_interval(r * n_eff, n_eff, level), se=se)


# ---------------------------------------------------------------------------------------------
# bootstrap
# ---------------------------------------------------------------------------------------------

def resample_weights(n: int, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> Any:
    """A (resamples × n) matrix of bootstrap counts: row b says how often each item is drawn.

    Multiplying it with per-item sufficient statistics gives every resample's corpus
    statistics in one matrix product, which is why 1,000 resamples cost milliseconds.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples)


def bootstrap_replicates(statistic: Callable[[Any], Any], n: int,
                         resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> Any:
    """`statistic(weights)` for the (resamples × n) count matrix: one value per resample.

    `statistic` maps a count matrix to a vector (e.g. ``lambda w: w @ x / n`` for a mean); the
    full-data value is ``statistic(numpy.ones((1, n)))[0]``.
    """
    import numpy as np

    return np.asarray(statistic(resample_weights(n, resamples, seed)), dtype=float)


def percentile_interval(replicates: Any, *, n: int | None = None,
                        level: float = 0.95) -> tuple[float, float] | None:
    """The central `level` percentile interval of the finite replicates (NaN ones dropped).

    None when no replicate is finite, and when `n` (the number of observations behind them) is
    given and below ``MIN_N_ZERO_WIDTH`` while the interval has zero width: at such sizes
    identical resamples only say that the few observations were alike.
    """
    import numpy as np

    reps = np.asarray(replicates, dtype=float)
    reps = reps[np.isfinite(reps)]
    if reps.size == 0:
        return None
    tail = round(50 * (1 - level), 12)  # exactly 2.5 for 0.95
    lo, hi = np.percentile(reps, [tail, 100 - tail])
    if n is not None and n < MIN_N_ZERO_WIDTH and hi - lo <= 0:
        return None
    return float(lo), float(hi)


# ---------------------------------------------------------------------------------------------
# paired tests and multiplicity
# ---------------------------------------------------------------------------------------------

def mcnemar_exact(a: Sequence[bool | float], b: Sequence[bool | float]) -> float:
    """Two-sided exact McNemar p-value for paired 0/1 outcomes (e.g. two systems' correctness).

    Only discordant pairs count: with k = #(a right, b wrong) and l = #(a wrong, b right) the
    p-value is the two-sided binomial test of min(k, l) out of k + l at ½ (1 when k + l = 0).
    """
    if len(a) != len(b):
        raise ValueError(f"paired test needs paired outcomes: {len(a)} vs {len(b)}")
    if not (is_binary(a) and is_binary(b)):
        raise ValueError("McNemar's test needs 0/1 outcomes")
    k = sum(1 for x, y in zip(a, b) if x and not y)
    l_ = sum(1 for x, y in zip(a, b) if y and not x)
    d = k + l_
    if d == 0:
        return 1.0
    tail = sum(math.comb(d, i) for i in range(min(k, l_) + 1)) / 2 ** d
    return min(1.0, 2 * tail)


def sign_flip_test(x: Sequence[float], y: Sequence[float], resamples: int = 10000,
                   seed: int | None = 12345, exact: bool | None = None) -> float:
    """Two-sided paired permutation test of mean(x) = mean(y) by random sign flips.

    Under the null each pair's difference is as likely to have either sign; the p-value is the
    share of sign assignments whose |mean difference| is at least the observed one. ``exact``:
    enumerate all 2^n assignments (default when 2^n ≤ `resamples`), else draw `resamples` of
    them and return (hits + 1) / (resamples + 1). For 0/1 outcomes this is a permutation test
    of paired accuracies (exact McNemar's is the conditional alternative).
    """
    import numpy as np

    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xs.shape != ys.shape:
        raise ValueError(f"paired test needs paired values: {xs.size} vs {ys.size}")
    d = xs - ys
    n = int(d.size)
    if n == 0:
        return float("nan")
    real = abs(float(d.mean()))
    tol = 1e-12 * max(1.0, real)
    if exact is None:
        exact = n <= 30 and 2 ** n <= resamples
    if exact:
        if n > 24:
            raise ValueError(f"exact sign-flip enumeration of 2^{n} assignments is too large")
        codes = np.arange(2 ** n, dtype=np.int64)[:, None] >> np.arange(n)
        signs = np.where(codes & 1, -1.0, 1.0)
        stats = np.abs(signs @ d) / n
        return float(np.mean(stats >= real - tol))
    rng = np.random.default_rng(seed)
    pos = rng.integers(2, size=(resamples, n), dtype=bool)
    stats = np.abs(np.where(pos, 1.0, -1.0) @ d) / n
    return float((np.sum(stats >= real - tol) + 1) / (resamples + 1))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order (Holm 1979).

    Sorted ascending, p_(i) becomes max_{j ≤ i} min(1, (m − j + 1) · p_(j)); rejecting every
    hypothesis whose adjusted p-value is below α controls the family-wise error rate at α.
    """
    ps = [float(p) for p in pvalues]
    if any(not (0.0 <= p <= 1.0) for p in ps):
        raise ValueError("Holm's correction needs p-values in [0, 1] (NaN included)")
    m = len(ps)
    order = sorted(range(m), key=lambda i: ps[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        adjusted[i] = running
    return adjusted
