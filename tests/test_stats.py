"""evalkit.stats against the reference libraries (scipy, scikit-learn, statsmodels) on the same
data, and the small-n interval rules of evalkit.metrics."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest

from evalkit import stats
from evalkit.metrics import auroc_metric, mean_metric

scipy_stats = pytest.importorskip("scipy.stats")


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- κ and AUROC -----------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(8))
def test_kappa_equals_sklearn(seed: int) -> None:
    from sklearn.metrics import cohen_kappa_score

    rng = _rng(seed)
    n = int(rng.integers(5, 300))
    a = rng.random(n) < rng.random()
    b = np.where(rng.random(n) < 0.8, a, ~a)
    assert stats.cohen_kappa(a.tolist(), b.tolist()) == pytest.approx(cohen_kappa_score(a, b))
    labels = np.array(["refusal", "compliance", "partial", "redirect"])
    x = labels[rng.integers(0, 4, n)]
    y = np.where(rng.random(n) < 0.6, x, labels[rng.integers(0, 4, n)])
    assert stats.cohen_kappa(x.tolist(), y.tolist()) == pytest.approx(cohen_kappa_score(x, y))


def test_kappa_undefined_where_sklearn_is_nan() -> None:
    from sklearn.metrics import cohen_kappa_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert math.isnan(cohen_kappa_score([1, 1, 1], [1, 1, 1]))
    assert stats.cohen_kappa([True] * 3, [True] * 3) is None
    assert stats.cohen_kappa([], []) is None
    with pytest.raises(ValueError):
        stats.cohen_kappa([True], [True, False])


@pytest.mark.parametrize("seed", range(8))
def test_auroc_equals_sklearn_and_mann_whitney(seed: int) -> None:
    from sklearn.metrics import roc_auc_score

    rng = _rng(seed)
    n = int(rng.integers(4, 400))
    y = rng.random(n) < 0.4
    y[0], y[1] = True, False
    s = np.round(rng.normal(size=n) + y, 1)  # rounding makes ties
    expected = roc_auc_score(y, s)
    assert stats.auroc(s.tolist(), y.tolist()) == pytest.approx(expected, abs=1e-12)
    u = scipy_stats.mannwhitneyu(s[y], s[~y]).statistic
    assert stats.auroc(s, y) == pytest.approx(u / (y.sum() * (~y).sum()), abs=1e-12)
    np.testing.assert_allclose(stats._average_ranks(s), scipy_stats.rankdata(s))


def test_auroc_edge_cases() -> None:
    assert stats.auroc([0.3, 0.4], [1, 1]) is None
    assert stats.auroc([1.0, 1.0, 0.0, 0.0], [1, 1, 0, 0]) == 1.0
    assert stats.auroc([1.0, 0.0, 1.0, 0.0], [1, 1, 0, 0]) == 0.5


def test_auroc_bootstrap_matches_its_value_and_withholds_zero_width_small_n() -> None:
    rng = _rng(3)
    y = (rng.random(200) < 0.5).astype(int)
    s = rng.normal(size=200) + y
    reps = stats.auroc_bootstrap(s, y, resamples=400, seed=1)
    assert reps.shape == (400,) and abs(np.median(reps) - stats.auroc(s, y)) < 0.03
    m = auroc_metric(s.tolist(), y.tolist())
    assert m.ci[0] < m.value < m.ci[1] and m.ci_method == "stratified-bootstrap-1000"
    # perfectly separated, n = 3: every resample has AUROC 1 -> no zero-width interval
    tiny = auroc_metric([0.9, 0.8, 0.1], [1, 1, 0])
    assert tiny.value == 1.0 and tiny.ci is None and tiny.ci_method is None


# --- intervals for proportions ----------------------------------------------------------------

def test_wilson_and_clopper_pearson_equal_scipy() -> None:
    for n in list(range(1, 41)) + [97, 541]:
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            if not 0 <= k <= n:
                continue
            ref = scipy_stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
            lo, hi = stats.wilson_interval(k, n)
            assert (lo, hi) == pytest.approx((ref.low, ref.high), abs=1e-12)
            assert hi - lo > 0
            ref = scipy_stats.binomtest(k, n).proportion_ci(0.9, method="exact")
            assert stats.clopper_pearson_interval(k, n, 0.9) == pytest.approx(
                (ref.low, ref.high), abs=1e-9)


def test_wilson_equals_statsmodels() -> None:
    smp = pytest.importorskip("statsmodels.stats.proportion")
    for n, k in [(3, 0), (3, 3), (10, 7), (29, 1), (541, 400)]:
        lo, hi = smp.proportion_confint(k, n, alpha=0.05, method="wilson")
        assert stats.wilson_interval(k, n) == pytest.approx((lo, hi), abs=1e-12)


@pytest.mark.parametrize("values", [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [True], [False] * 29])
def test_all_equal_proportions_never_get_a_zero_width_interval(values: list[float]) -> None:
    m = mean_metric(values)
    lo, hi = m.ci
    assert m.ci_method == "wilson" and hi - lo > 0.05 and lo <= m.value <= hi
    assert m.ci == pytest.approx(stats.wilson_interval(sum(values), len(values)))


def test_mean_metric_kinds() -> None:
    # 0/1 data: Wilson, scaled with the values
    m = mean_metric([1, 0, 1, 1], scale=100)
    assert m.value == 75.0 and m.ci == pytest.approx(tuple(100 * x for x in
                                                         stats.wilson_interval(3, 4)))
    # the same data declared a plain mean keeps the bootstrap
    b = mean_metric([1, 0, 1, 1], kind="mean")
    assert b.ci_method == "bootstrap-percentile-1000"
    # continuous, all equal, n < 30: no interval rather than a zero-width one
    c = mean_metric([0.5, 0.5, 0.5])
    assert c.ci is None and c.ci_method is None and "all equal" in c.note
    # continuous, varied: the percentile bootstrap
    d = mean_metric([0.1, 0.5, 0.9, 0.3])
    assert d.ci_method == "bootstrap-percentile-1000" and d.ci[0] < d.value < d.ci[1]
    with pytest.raises(ValueError):
        mean_metric([0.5, 1.0], kind="proportion")


def test_cluster_proportion() -> None:
    # one trial per cluster: plain Wilson
    y = [1, 0, 1, 1, 1, 0, 1]
    cp = stats.cluster_proportion(y, [1] * 7)
    assert cp.n_effective == 7 and cp.ci == pytest.approx(stats.wilson_interval(5, 7))
    # all pass: as many observations as clusters, not as trials
    cp = stats.cluster_proportion([3, 3, 3], [3, 3, 3])
    assert cp.value == 1.0 and cp.ci == pytest.approx(stats.wilson_interval(3, 3))
    # linearised variance of the ratio, by hand
    yy, tt = np.array([2.0, 0.0, 3.0, 1.0]), np.array([3.0, 2.0, 3.0, 1.0])
    r = yy.sum() / tt.sum()
    v = 4 / 3 * ((yy - r * tt) ** 2).sum() / tt.sum() ** 2
    cp = stats.cluster_proportion(yy, tt)
    assert cp.se == pytest.approx(math.sqrt(v))
    assert cp.n_effective == pytest.approx(min(9.0, 9.0 * r * (1 - r) / (8 * v)))
    assert stats.cluster_proportion([0], [0]) is None


def test_cluster_proportion_covers_on_correlated_clusters() -> None:
    """Simulated prompts whose instructions share a prompt effect: coverage near 95 %, where
    Wilson on the pooled instructions (ignoring clusters) falls short."""
    rng = _rng(0)
    true, hits, naive = 0.7, 0, 0
    reps = 400
    mean_p = float(np.mean(np.clip(true + rng.normal(0, 0.25, 200_000), 0, 1)))
    for _ in range(reps):
        sizes = rng.integers(1, 4, 60)
        p = np.clip(true + rng.normal(0, 0.25, 60), 0, 1)  # prompt-level effect, mean ≈ true
        ys = rng.binomial(sizes, p)
        cp = stats.cluster_proportion(ys, sizes)
        hits += cp.ci[0] <= mean_p <= cp.ci[1]
        lo, hi = stats.wilson_interval(ys.sum(), sizes.sum())
        naive += lo <= mean_p <= hi
    assert hits / reps > 0.92 and hits > naive


# --- bootstrap helpers --------------------------------------------------------------------------

def test_percentile_interval() -> None:
    reps = _rng(1).normal(size=1000)
    assert stats.percentile_interval(reps) == tuple(np.percentile(reps, [2.5, 97.5]))
    assert stats.percentile_interval(np.r_[reps, np.nan]) == tuple(np.percentile(reps,
                                                                                 [2.5, 97.5]))
    assert stats.percentile_interval(np.ones(50), n=3) is None
    assert stats.percentile_interval(np.ones(50), n=30) == (1.0, 1.0)
    assert stats.percentile_interval([np.nan]) is None


def test_bootstrap_replicates_are_the_resampled_means() -> None:
    x = _rng(2).random(50)
    reps = stats.bootstrap_replicates(lambda w: w @ x / 50, 50, 200, seed=4)
    w = stats.resample_weights(50, 200, 4)
    assert np.array_equal(reps, w @ x / 50) and (w.sum(1) == 50).all()


# --- paired tests and multiplicity -----------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_mcnemar_exact_equals_statsmodels_and_binomtest(seed: int) -> None:
    rng = _rng(seed)
    n = int(rng.integers(5, 200))
    a = rng.random(n) < 0.6
    b = np.where(rng.random(n) < 0.7, a, rng.random(n) < 0.5)
    k, l_ = int((a & ~b).sum()), int((~a & b).sum())
    p = stats.mcnemar_exact(a.tolist(), b.tolist())
    if k + l_:
        assert p == pytest.approx(scipy_stats.binomtest(k, k + l_, 0.5).pvalue, rel=1e-12)
    sm = pytest.importorskip("statsmodels.stats.contingency_tables")
    table = [[int((a & b).sum()), k], [l_, int((~a & ~b).sum())]]
    assert p == pytest.approx(sm.mcnemar(table, exact=True).pvalue, rel=1e-12)


def test_mcnemar_no_discordant_pairs_and_bad_input() -> None:
    assert stats.mcnemar_exact([1, 0, 1], [1, 0, 1]) == 1.0
    with pytest.raises(ValueError):
        stats.mcnemar_exact([0.5], [1])


@pytest.mark.parametrize("seed", range(6))
def test_exact_sign_flip_equals_scipy_permutation_test(seed: int) -> None:
    rng = _rng(seed)
    n = int(rng.integers(4, 13))
    x = rng.random(n).round(1)
    y = (x + rng.normal(0.1, 0.2, n)).round(1)
    ref = scipy_stats.permutation_test((x, y), lambda u, v: np.mean(u - v),
                                       permutation_type="samples", n_resamples=10**6)
    assert stats.sign_flip_test(x, y, exact=True) == pytest.approx(ref.pvalue, rel=1e-9)
    # paired accuracies (0/1) too
    a = (rng.random(n) < 0.5).astype(float)
    b = (rng.random(n) < 0.5).astype(float)
    ref = scipy_stats.permutation_test((a, b), lambda u, v: np.mean(u - v),
                                       permutation_type="samples", n_resamples=10**6)
    assert stats.sign_flip_test(a, b, exact=True) == pytest.approx(ref.pvalue, rel=1e-9)


def test_monte_carlo_sign_flip_approaches_the_exact_value() -> None:
    rng = _rng(7)
    x = rng.random(14)
    y = x + rng.normal(0.1, 0.3, 14)
    exact = stats.sign_flip_test(x, y, exact=True)
    mc = stats.sign_flip_test(x, y, resamples=20000, seed=1, exact=False)
    assert abs(mc - exact) < 0.01
    assert stats.sign_flip_test(x, x, resamples=200, exact=False) == 1.0


def _holm_closed_testing(ps: list[float]) -> list[float]:
    """Holm by its definition: the closure of Bonferroni tests over all intersections."""
    m = len(ps)
    out = []
    for i in range(m):
        worst = 0.0
        for size in range(1, m + 1):
            for subset in itertools.combinations(range(m), size):
                if i in subset:
                    worst = max(worst, min(1.0, size * min(ps[j] for j in subset)))
        out.append(worst)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_holm_equals_statsmodels_and_closed_testing(seed: int) -> None:
    rng = _rng(seed)
    ps = rng.random(int(rng.integers(1, 8))) ** 3
    ps[0] = ps[-1]  # a tie
    adjusted = stats.holm(ps.tolist())
    assert adjusted == pytest.approx(_holm_closed_testing(ps.tolist()), abs=1e-15)
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    assert adjusted == pytest.approx(multitest.multipletests(ps, method="holm")[1].tolist(),
                                     abs=1e-15)


def test_holm_rejects_bad_pvalues() -> None:
    assert stats.holm([]) == []
    with pytest.raises(ValueError):
        stats.holm([0.1, float("nan")])
