"""Board statistics: per-sample paired tests, sacrebleu equality, rank score, value checks."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from evalkit.leaderboard.stats import mean_paired_test, mt_paired_test, per_sample, rank_scores
from evalkit.records import RunSummary, SampleRecord


def test_ar_matches_exact_sign_flip_enumeration() -> None:
    rng = np.random.default_rng(3)
    a = rng.random(10)
    b = a + rng.normal(0.08, 0.15, 10)
    d = b - a
    real = abs(d.mean())
    flips = np.array(list(itertools.product((1.0, -1.0), repeat=10)))
    exact = float(np.mean(np.abs(flips @ d) / 10 >= real - 1e-12))
    res = mean_paired_test(b, a, "ar", 20000, seed=1)
    assert 0.01 < exact < 0.5  # a case where the p-value is informative
    assert res.p_value == pytest.approx(exact, abs=0.012)
    assert res.delta == pytest.approx(d.mean())


def test_mean_tests_on_identical_and_clearly_different_systems() -> None:
    x = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0] * 10)
    for test in ("bs", "ar"):
        same = mean_paired_test(x, x.copy(), test, 500)
        assert same.delta == 0 and same.p_value == 1.0
        better = mean_paired_test(np.ones(60), x, test, 500)
        assert better.p_value < 0.01 and better.delta == pytest.approx(1 - x.mean())
    # NaN (excluded) samples drop out of both sides
    y = x.copy()
    y[:6] = np.nan
    assert mean_paired_test(y, x, "bs", 200).delta == 0.0


def test_mt_paired_test_equals_sacrebleu_on_synthetic_systems() -> None:
    from sacrebleu.metrics import BLEU, CHRF
    from sacrebleu.significance import PairedTest

    from evalkit import mt_metrics

    rnd = random.Random(0)
    words = "the cat sat on a mat dog ran far away into the old house by river".split()
    refs = [" ".join(rnd.choices(words, k=12)) for _ in range(30)]

    def noisy(r: str, p: float) -> str:
        return " ".join(w if rnd.random() > p else rnd.choice(words) for w in r.split())

    base, sys_ = [noisy(r, 0.35) for r in refs], [noisy(r, 0.31) for r in refs]
    for test, n in (("bs", 1000), ("ar", 3000)):
        for name, metric, key in (("bleu", BLEU(), "BLEU"), ("chrf", CHRF(), "chrF2")):
            _, scores = PairedTest([("b", base), ("s", sys_)], {name: metric}, [refs],
                                   test_type=test, n_samples=n)()
            sa = mt_metrics.corpus(name, sys_, refs).stats.astype(np.int64)
            sb = mt_metrics.corpus(name, base, refs).stats.astype(np.int64)
            got = mt_paired_test(name, sa, sb, test, n)
            assert got.p_value == scores[key][1].p_value
            assert got.delta == pytest.approx(scores[key][1].score - scores[key][0].score)
    with pytest.raises(ValueError, match="same segments"):
        mt_paired_test("bleu", sa[:5], sb, "bs", 10)


def _summary(metrics: dict, n: int = 5) -> RunSummary:
    from evalkit.types import sha256_text

    ids = sorted(f"s{i:02d}" for i in range(n))
    return RunSummary(run_id="r", created_at="2026-01-01T00:00:00", task="t", task_version="1",
                      language="x", model="m", model_hash="h", backend="scripted",
                      metrics=metrics, n_samples=n, sample_ids_sha256=sha256_text("\n".join(ids)),
                      chat_template={}, seed=0, data_hashes={}, versions={})


def _records(values: list, key: str = "acc") -> list[SampleRecord]:
    return [SampleRecord(run_id="r", task="t", task_version="1", sample_id=f"s{i:02d}",
                         model="m", model_hash="h", prompts=["p"], prompt_sha256="x",
                         outputs=[], scores={key: v}) for i, v in enumerate(values)]


def test_per_sample_values_must_reproduce_the_summary() -> None:
    vals = [1.0, 0.0, 1.0, None, 1.0]
    ok, why = per_sample("acc", _summary({"acc": {"value": 0.75, "n": 4}}), _records(vals))
    assert ok is not None and ok.scale == 1.0 and np.isnan(ok.values[3])
    pct, _ = per_sample("acc", _summary({"acc": {"value": 75.0, "n": 4}}), _records(vals))
    assert pct is not None and pct.scale == 100.0
    bad, why = per_sample("acc", _summary({"acc": {"value": 0.9, "n": 4}}), _records(vals))
    assert bad is None and why == "not a mean of per-sample values"
    other, _ = per_sample("gated", _summary({"gated": {"value": 0.75, "n": 4}}),
                          _records(vals), key="acc")
    assert other is not None
    none, why = per_sample("acc", _summary({"acc": {"value": 0.75}}), None)
    assert none is None and why == "no sample records"
    stale, why = per_sample("acc", _summary({"acc": {"value": 0.75, "n": 4}}, n=6),
                            _records(vals))
    assert stale is None and "out of sync" in why


def test_declared_metrics_are_read_not_guessed() -> None:
    vals = [1.0, 0.0, 1.0, None, 1.0]

    def entry(value: float, **decl: object) -> dict:
        return {"acc": {"value": value, "n": 4, **decl}}

    pct, _ = per_sample("acc", _summary(entry(75.0, kind="proportion", scale=100.0,
                                               per_sample_key="hit")), _records(vals, "hit"))
    assert pct is not None and pct.scale == 100.0 and np.isnan(pct.values[3])
    # declared without per-sample values: a same-named key that happens to fit is not used
    none, why = per_sample("acc", _summary(entry(0.75, kind="proportion", scale=1.0,
                                                per_sample_key=None)), _records(vals))
    assert none is None and why == "no per-sample values recorded"
    corpus, why = per_sample("acc", _summary(entry(0.75, kind="corpus", scale=1.0,
                                                  per_sample_key=None)), _records(vals))
    assert corpus is None and "corpus" in why
    # a declared key must still reproduce the value (records out of step with the summary)
    stale, why = per_sample("acc", _summary(entry(0.5, kind="proportion", scale=1.0,
                                                 per_sample_key="acc")), _records(vals))
    assert stale is None and "out of sync" in why
    # a board's key serves a declared metric only when the entry names none
    board, _ = per_sample("acc", _summary(entry(0.75, kind="mean", scale=1.0,
                                               per_sample_key=None)), _records(vals, "x"), "x")
    assert board is not None and board.scale == 1.0


def test_rank_scores_follow_euroeval() -> None:
    rng = np.random.default_rng(0)
    reps = {"A": 80 + rng.normal(0, 0.5, 1000), "B": 70 + rng.normal(0, 0.5, 1000),
            "B2": 70 + rng.normal(0, 0.5, 1000), "C": 40 + rng.normal(0, 0.5, 1000)}
    points = {"A": 80.0, "B": 70.0, "B2": 70.2, "C": 40.0}
    std = np.std(list(points.values()))
    out = rank_scores({"t": points}, {"t": reps}, {"t": True})
    assert out["A"].value == 1.0
    # B2 and B are not significantly different: same rank, one step below A
    assert out["B2"].value == pytest.approx(1 + (80.0 - 70.2) / std)
    assert out["B"].value == out["B2"].value
    assert out["C"].value == pytest.approx(out["B"].value + (70.2 - 40.0) / std)  # anchor B2
    for r in out.values():
        assert r.ci[0] <= r.value + 1e-9 and r.ci[1] >= r.value - 1e-9
    # lower is better (perplexity): the order flips
    low = rank_scores({"t": points}, {"t": reps}, {"t": False})
    assert low["C"].value == 1.0 and low["A"].value > low["B"].value
    # averaged over tasks
    two = rank_scores({"t": points, "u": {"A": 1.0, "C": 1.0}},
                      {"t": reps, "u": {"A": np.ones(1000), "C": np.ones(1000)}},
                      {"t": True, "u": True})
    assert two["C"].value == pytest.approx((out["C"].value + 1.0) / 2) and two["C"].n_tasks == 2
