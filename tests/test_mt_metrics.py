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
