"""Translation metrics equal sacrebleu's own; bootstrap CIs and paired tests behave."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from evalkit import mt_metrics


def _lines(data_dir: Path, rel: str, n: int) -> list[str]:
    return gzip.decompress((data_dir / rel).read_bytes()).decode().splitlines()[:n]


@pytest.fixture(scope="module")
def hyps_refs(data_dir: Path) -> tuple[list[str], list[str]]:
    refs = _lines(data_dir, "flores200/devtest/nob_Latn.devtest.gz", 200)
    # a degraded "system": every other reference with words dropped, some empty, some English
    eng = _lines(data_dir, "flores200/devtest/eng_Latn.devtest.gz", 200)
    hyps = [r.split()[::2] and " ".join(r.split()[::2]) if i % 3 == 0 else
            ("" if i % 7 == 0 else (eng[i] if i % 5 == 0 else r)) for i, r in enumerate(refs)]
    return hyps, refs


@pytest.mark.parametrize("name,kwargs", [("bleu", {}), ("chrf", {"word_order": 0}),
                                         ("chrf++", {"word_order": 2})])
def test_scores_equal_sacrebleu(hyps_refs: tuple[list[str], list[str]], name: str,
                                kwargs: dict[str, int]) -> None:
    import sacrebleu

    hyps, refs = hyps_refs
    value, stats = mt_metrics.corpus_metric(name, hyps, refs, resamples=200)
    ref_metric = sacrebleu.BLEU() if name == "bleu" else sacrebleu.CHRF(**kwargs)
    expected = ref_metric.corpus_score(hyps, [refs])
    assert value.value == pytest.approx(expected.score, abs=1e-9)
    assert value.signature == str(ref_metric.get_signature())
    # the sufficient statistics reproduce the corpus score exactly
    assert mt_metrics.score_from_stats(name, stats.sum(0)) == pytest.approx(expected.score)
    lo, hi = value.ci
    assert lo <= value.value <= hi and hi - lo > 0


def test_bootstrap_is_seeded(hyps_refs: tuple[list[str], list[str]]) -> None:
    hyps, refs = hyps_refs
    a, _ = mt_metrics.corpus_metric("chrf", hyps, refs, resamples=100, seed=3)
    b, _ = mt_metrics.corpus_metric("chrf", hyps, refs, resamples=100, seed=3)
    c, _ = mt_metrics.corpus_metric("chrf", hyps, refs, resamples=100, seed=4)
    assert a.ci == b.ci and a.ci != c.ci


def test_paired_bootstrap_detects_a_real_difference(hyps_refs: tuple[list[str], list[str]]
                                                    ) -> None:
    hyps, refs = hyps_refs
    good = mt_metrics.corpus("bleu", refs[:150] + hyps[150:], refs)
    bad = mt_metrics.corpus("bleu", hyps, refs)
    res = mt_metrics.paired_bootstrap("bleu", good.stats, bad.stats, resamples=300)
    assert res["delta"] == pytest.approx(good.score - bad.score)
    assert res["p_value"] < 0.01
    same = mt_metrics.paired_bootstrap("bleu", bad.stats, bad.stats, resamples=300)
    assert same["delta"] == 0 and same["p_value"] == 1.0


def test_empty_hypotheses_are_scored_not_crashing() -> None:
    v, _ = mt_metrics.corpus_metric("chrf++", ["", ""], ["a b c", "d e f"], resamples=50)
    assert v.value == 0.0


def _edge_rows(name: str, rows: int = 400, seed: int = 5):
    """Random summed statistics that reach every branch of sacrebleu's score formulas: zero
    matches at some orders, orders without n-grams (BLEU stops there), empty systems, systems
    shorter and longer than the references, all-zero rows."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if name == "bleu":
        total = rng.integers(0, 6, size=(rows, 4)) * rng.integers(0, 2, size=(rows, 4))
        correct = np.minimum(total, rng.integers(0, 4, size=(rows, 4)))
        sys_len = total[:, 0] + rng.integers(0, 3, size=rows)
        sys_len[::17] = 0
        ref_len = rng.integers(0, 12, size=rows)
        m = np.column_stack([sys_len, ref_len, correct, total])
    else:
        order = 6 if name == "chrf" else 8
        hyp = rng.integers(0, 5, size=(rows, order)) * rng.integers(0, 2, size=(rows, order))
        ref = rng.integers(0, 5, size=(rows, order)) * rng.integers(0, 2, size=(rows, order))
        match = np.minimum(np.minimum(hyp, ref), rng.integers(0, 4, size=(rows, order)))
        m = np.stack([hyp, ref, match], axis=2).reshape(rows, 3 * order)
    m[::23] = 0
    return m


@pytest.mark.parametrize("name", ["bleu", "chrf", "chrf++"])
def test_vectorised_scores_equal_sacrebleu_per_resample(hyps_refs: tuple[list[str], list[str]],
                                                        name: str) -> None:
    """All 1,000 resamples scored at once equal sacrebleu's own formula on each resample."""
    import numpy as np

    from evalkit.stats import resample_weights

    hyps, refs = hyps_refs
    stats = mt_metrics.corpus(name, hyps, refs).stats
    sums = np.vstack([resample_weights(stats.shape[0], 1000, 0) @ stats, _edge_rows(name)])
    got = mt_metrics.scores_from_stats(name, sums)
    compute = mt_metrics.make_metric(name)._compute_score_from_stats
    want = np.asarray([compute([int(x) for x in row]).score for row in sums])
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= 1e-9
    if name != "bleu":  # no transcendental functions: bit for bit
        assert np.array_equal(got, want)
    # the CI of a run is built from exactly these scores
    boot = mt_metrics.bootstrap_scores(name, stats, 1000, 0)
    assert np.max(np.abs(boot - want[:1000])) <= 1e-9


@pytest.mark.parametrize("smooth", ["floor", "none"])
def test_vectorised_bleu_other_smoothing(smooth: str) -> None:
    import numpy as np
    from sacrebleu.metrics import BLEU

    m = _edge_rows("bleu", seed=11)
    got = mt_metrics._bleu_scores(m.astype(float), 4, smooth, None)
    compute = BLEU(smooth_method=smooth)._compute_score_from_stats
    want = np.asarray([compute([int(x) for x in row]).score for row in m])
    assert np.max(np.abs(got - want)) <= 1e-9


def test_vectorised_chrf_eps_smoothing() -> None:
    import numpy as np
    from sacrebleu.metrics import CHRF

    m = _edge_rows("chrf++", seed=13)
    got = mt_metrics._chrf_scores(m.astype(float), 8, 2, True)
    compute = CHRF(word_order=2, eps_smoothing=True)._compute_score_from_stats
    want = np.asarray([compute([int(x) for x in row]).score for row in m])
    assert np.array_equal(got, want)


def test_corpus_statistics_are_read_once() -> None:
    """The corpus score comes from the same single pass as the per-sentence statistics."""
    from unittest import mock

    import sacrebleu.metrics as sm

    calls = []
    real = sm.BLEU._extract_corpus_statistics

    def spy(self, *a, **k):
        calls.append(1)
        return real(self, *a, **k)

    with mock.patch.object(sm.BLEU, "_extract_corpus_statistics", spy):
        mt_metrics.corpus("bleu", ["a b c d"], ["a b c e"])
    assert len(calls) == 1
