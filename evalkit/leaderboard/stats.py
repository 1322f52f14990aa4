"""Statistics for boards, all from saved records: per-sample values, paired tests, rank score.

* Paired tests (model vs baseline on the same samples). For sacrebleu metrics they replay
  sacrebleu's own ``paired_bs`` / ``paired_ar`` (``sacrebleu.significance``) on the per-sentence
  sufficient statistics the FLORES task stores: same RNG calls, same statistic, same p-value
  formula, so with the same seed (12345, ``SACREBLEU_SEED``'s default) the p-values are
  sacrebleu's own, bit for bit (a test checks it), without re-tokenising any hypothesis. For
  metrics that are a mean of per-sample values (0/1 rates, accuracies, real-valued scores) the
  same two tests run on the per-sample values.
* Replicates: one set of bootstrap resampling weights per task, shared by every row, so each
  row gets ``resamples`` paired replicates of each metric; they give the deltas' CIs and the
  rank score's CI.
* Rank score as EuroEval computes it (its leaderboard script, reconstructed): per task, models
  sorted best first; walking down, the rank grows by the score gap to the last "anchor" divided
  by the standard deviation of the task's scores whenever a model is significantly worse than
  the anchor (one-sided, at alpha), which then becomes the anchor; the board's rank score is the
  mean over tasks (1 = best). EuroEval tests with Welch's t over its 10 bootstrap iterations;
  evalkit uses the paired bootstrap replicates. The CI re-ranks every replicate with the
  full-data significance decisions and takes the 2.5/97.5 % percentiles.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evalkit.mt_metrics import SPECS, make_metric
from evalkit.records import RunSummary, SampleRecord
from evalkit.stats import sign_flip_test

MT_METRICS = frozenset(SPECS)


@dataclass(frozen=True)
class PerSample:
    """A metric's per-sample values for one row, aligned by sorted sample id.

    kind "mt": `values` is (n × k) integer sufficient statistics of sacrebleu metric `metric`;
    kind "mean": `values` is (n,) floats (NaN = excluded) whose mean × `scale` is the metric.
    """

    metric: str
    kind: str
    ids: tuple[str, ...]
    values: Any
    scale: float = 1.0


@dataclass(frozen=True)
class TestResult:
    """A paired test of a row against its baseline on one metric."""

    delta: float
    p_value: float
    method: str


def per_sample(metric: str, summary: RunSummary, records: Sequence[SampleRecord] | None,
               key: str | None = None) -> tuple[PerSample | None, str]:
    """Per-sample values behind `metric`, or (None, why not).

    The summary's metric entry declares where they are (``kind``, ``scale``,
    ``per_sample_key``, written from the task's `evalkit.metrics.Metric`): a sacrebleu score's
    statistics, or the 0/1 or real values whose mean × scale is the metric. `key` (a board's
    declared key) is used only when the entry declares none. Either way the values must
    reproduce the summary's value, so records out of step with it are never tested.

    Entries written before metrics were declared (no ``kind``) fall back to the old rule
    (`_undeclared`): a per-sample key is accepted when its mean × 1 or × 100 reproduces the
    summary.
    """
    import numpy as np

    from evalkit.types import sha256_text

    if not records:
        return None, "no sample records"
    recs = sorted(records, key=lambda r: r.sample_id)
    ids = tuple(r.sample_id for r in recs)
    entry = summary.metrics.get(metric, {})
    value = entry.get("value")
    if value is None:
        return None, "no value"
    if sha256_text("\n".join(ids)) != summary.sample_ids_sha256:
        return None, "sample records are not the summary's sample set (out of sync)"
    if "kind" not in entry:
        return _undeclared(metric, value, recs, ids, key)
    kind, declared = entry["kind"], entry.get("per_sample_key")
    if kind == "corpus":
        if metric in MT_METRICS and declared and all(declared in r.scores for r in recs):
            return _mt_values(metric, value, recs, ids, declared)
        return None, "a corpus-level metric (no per-sample values)"
    if kind not in ("proportion", "mean"):
        return None, f"a {kind} metric, not a mean of per-sample values"
    use = declared or key
    if not use:
        return None, "no per-sample values recorded"
    xs = _numbers(recs, use)
    if xs is None:
        return None, f"no per-sample values under {use!r}"
    scale = float(entry.get("scale") or 1.0)
    if not _close(float(np.nanmean(xs)) * scale, value):
        return None, f"per-sample {use!r} does not reproduce the summary (out of sync)"
    return PerSample(metric, "mean", ids, xs, scale), ""


def _close(got: float, want: float) -> bool:
    return abs(got - want) <= 1e-6 * max(1.0, abs(want))


def _numbers(recs: Sequence[SampleRecord], key: str) -> Any | None:
    """The numeric values under `key` (NaN where None), or None when there are none."""
    import numpy as np

    raw = [r.scores.get(key) for r in recs]
    if not all(v is None or isinstance(v, (bool, int, float)) for v in raw) or \
            all(v is None for v in raw):
        return None
    return np.asarray([np.nan if v is None else float(v) for v in raw])


def _mt_values(metric: str, value: float, recs: Sequence[SampleRecord], ids: tuple[str, ...],
               key: str) -> tuple[PerSample | None, str]:
    import numpy as np

    stats = np.asarray([r.scores[key] for r in recs], dtype=np.int64)
    got = corpus_score(metric, stats)
    if not _close(got, value):
        return None, f"sample records give {got:.4f}, summary {value:.4f} (out of sync)"
    return PerSample(metric, "mt", ids, stats), ""


def _undeclared(metric: str, value: float, recs: Sequence[SampleRecord], ids: tuple[str, ...],
                key: str | None) -> tuple[PerSample | None, str]:
    """Fallback for summaries without metric declarations (older records, plugin tasks that
    report bare values): sacrebleu metrics use ``<metric>_stats``; another key is accepted
    only if its mean × 1 or × 100 reproduces the summary's value."""
    import numpy as np

    stats_key = f"{metric}_stats"
    if metric in MT_METRICS and all(stats_key in r.scores for r in recs):
        return _mt_values(metric, value, recs, ids, stats_key)
    xs = _numbers(recs, key or metric)
    if xs is None:
        return None, "no per-sample values"
    mean = float(np.nanmean(xs))
    for scale in (1.0, 100.0):
        if _close(mean * scale, value):
            return PerSample(metric, "mean", ids, xs, scale), ""
    return None, "not a mean of per-sample values"


def corpus_score(metric: str, stats: Any) -> float:
    """sacrebleu's corpus score from per-sentence statistics (its `_aggregate_and_compute`)."""
    return float(make_metric(metric)._aggregate_and_compute(stats.tolist()).score)


def _p_value(stats: Any, real: float, strict: bool = True) -> float:
    """(count + 1) / (trials + 1); strict ">" is sacrebleu's `_compute_p_value`.

    With ">" two identical systems get p = 1/(trials+1), so a zero delta is never called
    significant by the board (see `board.build_board`); the per-sample tests use ">=", the
    usual Monte-Carlo p-value, which gives identical systems p = 1.
    """
    import numpy as np

    hits = np.sum(stats > real) if strict else np.sum(stats >= real - 1e-12)
    return float((hits + 1) / (len(stats) + 1))


def bs_p_value(reps_sys: Any, reps_base: Any, real: float) -> float:
    """sacrebleu's paired-bootstrap p-value from the two systems' resampled scores."""
    diffs = abs(reps_sys - reps_base)
    return _p_value(diffs - diffs.mean(), real)


def bootstrap_counts(n: int, samples: int, seed: int | None) -> Any:
    """sacrebleu's paired-bs draws (`rng.choice(n, (samples, n))`) as a count matrix.

    Row b counts how often each segment is drawn in resample b, so ``counts @ stats`` gives
    every resample's summed statistics in one product (the same sums as sacrebleu's indexing).
    The last two seeded matrices are kept (read-only): a board draws the same one for its
    replicates and again for each per-sample test of a task.
    """
    import numpy as np

    key = (n, samples, seed)
    if seed is not None and key in _COUNTS:
        return _COUNTS[key]
    rng = np.random.default_rng(seed)
    idxs = rng.choice(n, size=(samples, n), replace=True)
    flat = (idxs + np.arange(samples)[:, None] * n).ravel()
    counts = np.bincount(flat, minlength=samples * n).reshape(samples, n)
    if seed is not None:
        counts.flags.writeable = False
        _COUNTS[key] = counts
        while len(_COUNTS) > 2:
            del _COUNTS[next(iter(_COUNTS))]
    return counts


_COUNTS: dict[tuple[int, int, int | None], Any] = {}


def mt_paired_test(metric: str, sys_stats: Any, base_stats: Any, test: str = "bs",
                   samples: int | None = None, seed: int | None = 12345) -> TestResult:
    """sacrebleu's paired bootstrap ("bs") or approximate randomisation ("ar") test.

    Replays `sacrebleu.significance._paired_bs_test` / `_paired_ar_test` on stored statistics:
    the same draws (a count matrix instead of fancy indexing, same sums), the same float32 /
    int64 inputs to the metric, the same p-value.
    """
    import numpy as np

    if sys_stats.shape != base_stats.shape:
        raise ValueError("paired test needs the same segments on both sides")
    m = make_metric(metric)
    sys_score = m._aggregate_and_compute(sys_stats.tolist()).score
    base_score = m._aggregate_and_compute(base_stats.tolist()).score
    real = abs(base_score - sys_score)
    n = sys_stats.shape[0]
    if test == "bs":
        samples = samples or 1000
        counts = bootstrap_counts(n, samples, seed)
        p = bs_p_value(replicates(PerSample(metric, "mt", (), sys_stats), counts),
                       replicates(PerSample(metric, "mt", (), base_stats), counts), real)
    elif test == "ar":
        samples = samples or 10000
        rng = np.random.default_rng(seed)
        pos = rng.integers(2, size=(samples, n), dtype=bool)
        bl, sy = base_stats.astype(np.int64), sys_stats.astype(np.int64)
        shuf_a = pos @ bl + (~pos) @ sy
        shuf_b = (~pos) @ bl + pos @ sy
        agg = m._aggregate_and_compute
        a = np.array([agg(x).score for x in shuf_a[:, None]])
        b = np.array([agg(x).score for x in shuf_b[:, None]])
        p = _p_value(np.abs(a - b), real)
    else:
        raise ValueError(f"unknown test {test!r}")
    return TestResult(float(sys_score - base_score), p, f"sacrebleu-paired-{test}-{samples}")


def mean_paired_test(x_sys: Any, x_base: Any, test: str = "bs", samples: int | None = None,
                     seed: int | None = 12345, scale: float = 1.0) -> TestResult:
    """The same two tests on per-sample values whose mean is the metric (NaN pairs dropped)."""
    import numpy as np

    keep = ~(np.isnan(x_sys) | np.isnan(x_base))
    xs, xb = x_sys[keep] * scale, x_base[keep] * scale
    n = int(xs.size)
    if n == 0:
        return TestResult(float("nan"), float("nan"), "none: no paired samples")
    real = abs(xs.mean() - xb.mean())
    if test == "bs":
        samples = samples or 1000
        counts = bootstrap_counts(n, samples, seed).astype(np.float64)
        diffs = np.abs(counts @ xs - counts @ xb) / n
        p = _p_value(diffs - diffs.mean(), real, strict=False)
    elif test == "ar":
        samples = samples or 10000
        # swapping a pair flips the sign of its difference: the sign-flip permutation test
        p = sign_flip_test(xs, xb, samples, seed, exact=False)
    else:
        raise ValueError(f"unknown test {test!r}")
    return TestResult(float(xs.mean() - xb.mean()), p, f"paired-{test}-{samples}")


def paired_test(a: PerSample, b: PerSample, test: str, samples: int | None,
                seed: int | None) -> TestResult | None:
    """Test row `a` against baseline `b`; None when their samples differ."""
    if a.ids != b.ids or a.kind != b.kind:
        return None
    if a.kind == "mt":
        return mt_paired_test(a.metric, a.values, b.values, test, samples, seed)
    return mean_paired_test(a.values, b.values, test, samples, seed, a.scale)


def replicates(ps: PerSample, weights: Any) -> Any:
    """Bootstrap replicates of the metric under (resamples × n) count `weights`.

    sacrebleu metrics: exact integer sums cast to float32, the input sacrebleu's own
    bootstrap gives `_compute_score_from_stats`, so with `bootstrap_counts` weights these are
    sacrebleu's resampled scores to the bit (the paired test reuses them).
    """
    import numpy as np

    if ps.kind == "mt":
        compute = make_metric(ps.metric)._compute_score_from_stats
        sums = (weights.astype(np.float64) @ ps.values).astype(np.float32)
        return np.array([compute(row).score for row in sums])
    ok = ~np.isnan(ps.values)
    num = weights @ np.where(ok, ps.values, 0.0)
    den = weights @ ok.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den * ps.scale


def normal_replicates(metric: Mapping[str, Any], resamples: int, seed: int) -> Any | None:
    """Unpaired replicates from a summary's SE (or CI width) when no per-sample values exist."""
    import numpy as np

    value = metric.get("value")
    if value is None:
        return None
    sd = metric.get("se")
    if sd is None and metric.get("ci"):
        lo, hi = metric["ci"]
        sd = (hi - lo) / (2 * 1.959964)
    if sd is None:
        return None
    return value + sd * np.random.default_rng(seed).standard_normal(resamples)


def _better(reps: Mapping[str, Any], a: str, b: str, sign: float, alpha: float) -> bool:
    """One-sided bootstrap test: is `a` significantly better than `b`?"""
    import numpy as np

    d = (reps[a] - reps[b]) * sign
    d = d[~np.isnan(d)]
    if d.size == 0:
        return False
    return (np.sum(d <= 0) + 1) / (d.size + 1) < alpha


def _rank_one(scores: Mapping[str, float], sign: float,
              better: Mapping[tuple[str, str], bool]) -> dict[str, float]:
    import numpy as np

    order = sorted(scores, key=lambda m: -sign * scores[m])
    std = float(np.std([scores[m] for m in order]))
    ranks: dict[str, float] = {}
    rank, anchor = 1.0, None
    for m in order:
        if anchor is not None and better[(anchor, m)]:
            if std > 0:
                rank += sign * (scores[anchor] - scores[m]) / std
            anchor = m
        elif anchor is None:
            anchor = m
        ranks[m] = rank
    return ranks


@dataclass(frozen=True)
class RankScore:
    """A row's rank score over the board's tasks (1 = best) with its 95 % CI."""

    value: float
    ci: tuple[float, float] | None
    n_tasks: int


def rank_scores(points: Mapping[str, Mapping[str, float]],
                reps: Mapping[str, Mapping[str, Any]],
                higher_is_better: Mapping[str, bool], alpha: float = 0.05
                ) -> dict[str, RankScore]:
    """EuroEval-style rank scores. `points[task][row]`, `reps[task][row]` (replicate arrays)."""
    import numpy as np

    per_row: dict[str, list[float]] = {}
    per_row_reps: dict[str, list[Any]] = {}
    for task, scores in points.items():
        rows = [r for r in scores if r in reps.get(task, {}) and not math.isnan(scores[r])]
        if not rows:
            continue
        sign = 1.0 if higher_is_better[task] else -1.0
        better = {(a, b): _better(reps[task], a, b, sign, alpha)
                  for a in rows for b in rows if a != b}
        point = _rank_one({r: scores[r] for r in rows}, sign, better)
        n_rep = len(next(iter(reps[task].values())))
        rep_ranks = np.empty((len(rows), n_rep))
        for b in range(n_rep):
            rb = _rank_one({r: float(reps[task][r][b]) for r in rows}, sign, better)
            rep_ranks[:, b] = [rb[r] for r in rows]
        for i, r in enumerate(rows):
            per_row.setdefault(r, []).append(point[r])
            per_row_reps.setdefault(r, []).append(rep_ranks[i])
    out: dict[str, RankScore] = {}
    for r, vals in per_row.items():
        mean_reps = np.nanmean(np.vstack(per_row_reps[r]), axis=0)
        lo, hi = np.nanpercentile(mean_reps, [2.5, 97.5])
        out[r] = RankScore(float(np.mean(vals)), (float(lo), float(hi)), len(vals))
    return out
