"""Per-sample values behind a summary metric, read from sample records (for the boards' paired
tests, `evalkit compare`, `evalkit view` and the exports).

A metric is paired-testable and viewable per sample when its summary entry declares where the
records keep its per-sample values (``kind``, ``scale``, ``per_sample_key``, written from the
task's `evalkit.metrics.Metric`): sacrebleu statistics, a mean's per-sample values, or a
pooled ratio's per-sample lists. The values must reproduce the summary's value (to 1e-6
relative), so records out of step with their summary are never used.

Fallback, for entries written before metrics were declared (no ``kind``): the metric's own
name, a board-declared key or `evalkit.leaderboard.config.KNOWN_SAMPLE_KEYS`, or one of the
derivations below from what tasks stored (detected language, instruction verdicts, oracle
verdicts, judge verdicts), each accepted only if its mean × 1 or × 100 reproduces the summary.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from evalkit.records import RunSummary, SampleRecord


@dataclass(frozen=True)
class SampleValues:
    """A metric's per-sample values for one variant, aligned by sorted sample id.

    kind "mt": `values` is (n × k) sacrebleu sufficient statistics; "mean": (n,) floats
    (NaN = excluded) whose mean × `scale` is the metric; "ratio": the metric is
    Σ values / Σ `den` (instruction-level rates pooled over prompts).
    """

    metric: str
    kind: str
    ids: tuple[str, ...]
    values: Any
    scale: float = 1.0
    den: Any = None
    source: str = ""

    def per_item(self) -> list[float | None]:
        """Each sample's own value on the metric's scale (None where excluded / undefined)."""
        import numpy as np

        if self.kind == "mt":
            return [None] * len(self.ids)
        v = np.asarray(self.values, dtype=float)
        if self.kind == "ratio":
            den = np.asarray(self.den, dtype=float)
            with np.errstate(invalid="ignore", divide="ignore"):
                v = v / den
        else:
            v = v * self.scale
        return [None if math.isnan(x) else float(x) for x in v]


def _close(got: float, want: float) -> bool:
    return abs(got - want) <= 1e-6 * max(1.0, abs(want))


def _lang_hit(drift: bool) -> Callable[[dict[str, Any], RunSummary], float | None]:
    def fn(sc: dict[str, Any], s: RunSummary) -> float | None:
        if "lang" not in sc:
            return None
        if drift:
            from evalkit.langid import drift_languages

            return float(sc["lang"] in drift_languages(s.language))
        return float(sc["lang"] == s.language)
    return fn


def _mean_of(key: str, sub: str) -> Callable[[dict[str, Any], RunSummary], float | None]:
    def fn(sc: dict[str, Any], s: RunSummary) -> float | None:
        xs = (sc.get(key) or {}).get(sub) if isinstance(sc.get(key), dict) else None
        if not isinstance(xs, list) or not xs:
            return None
        return sum(float(x) for x in xs) / len(xs)
    return fn


def _agreement(a: str, b: str) -> Callable[[dict[str, Any], RunSummary], float | None]:
    def fn(sc: dict[str, Any], s: RunSummary) -> float | None:
        pa = (sc.get(a) or {}).get("passed") if isinstance(sc.get(a), dict) else None
        pb = (sc.get(b) or {}).get("passed") if isinstance(sc.get(b), dict) else None
        if not isinstance(pa, list) or not isinstance(pb, list) or len(pa) != len(pb) or not pa:
            return None
        return sum(float(x == y) for x, y in zip(pa, pb)) / len(pa)
    return fn


def _mean_rule(metric: str) -> Callable[[dict[str, Any], RunSummary], float | None] | None:
    """A per-sample value derived from what the task stores, when one is known."""
    if metric == "target_lang_rate":
        return _lang_hit(False)
    if metric == "off_target_drift_rate":
        return _lang_hit(True)
    if metric == "empty_rate":
        return lambda sc, s: float(bool(sc["empty"])) if "empty" in sc else None
    if metric == "judge_unparseable_rate":
        return lambda sc, s: float(sc["verdict"] == "unparseable") if "verdict" in sc else None
    if metric == "accuracy_and_wellformed":
        return lambda sc, s: (float(bool(sc["correct"]) and bool(sc["passed"]))
                              if "correct" in sc and "passed" in sc else None)
    head, _, param = metric.partition(":")
    if param and head == "parse_success":
        return _mean_of(param, "passed")
    if param and head == "mean_reward":
        return _mean_of(param, "reward")
    if param and head == "oracle_agreement" and "|" in param:
        return _agreement(*param.split("|", 1))
    return None


def sample_values(metric: str, summary: RunSummary, records: Sequence[SampleRecord] | None,
                  declared_key: str | None = None) -> tuple[SampleValues | None, str]:
    """Per-sample values behind `summary`'s `metric`, or (None, why not).

    `declared_key` is a board's per-sample key for the metric, used only when the summary's
    entry declares none.
    """
    from evalkit.leaderboard.stats import per_sample

    if not records:
        return None, "no sample records"
    entry = summary.metrics.get(metric, {})
    value = entry.get("value")
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None, "no value"
    if "kind" not in entry:
        return _undeclared(metric, summary, records, declared_key, float(value))
    if entry["kind"] == "ratio":
        return _ratio(metric, summary, records, entry.get("per_sample_key"), float(value))
    ps, why = per_sample(metric, summary, records, declared_key)
    if ps is None:
        return None, why
    source = entry.get("per_sample_key") or declared_key or ""
    return SampleValues(metric, ps.kind, ps.ids, ps.values, ps.scale, source=source), ""


def _sorted_ids(summary: RunSummary, records: Sequence[SampleRecord]
                ) -> tuple[list[SampleRecord], tuple[str, ...]] | None:
    """Records by sample id and their ids; None when they are not the summary's sample set."""
    from evalkit.types import sha256_text

    recs = sorted(records, key=lambda r: r.sample_id)
    ids = tuple(r.sample_id for r in recs)
    if sha256_text("\n".join(ids)) != summary.sample_ids_sha256:
        return None
    return recs, ids


def _ratio(metric: str, summary: RunSummary, records: Sequence[SampleRecord], key: str | None,
           value: float) -> tuple[SampleValues | None, str]:
    """A rate pooled over per-sample lists of 0/1 outcomes (Σ passes / Σ items)."""
    import numpy as np

    if not key:
        return None, "no per-sample values recorded"
    got = _sorted_ids(summary, records)
    if got is None:
        return None, "sample records are not the summary's sample set (out of sync)"
    recs, ids = got
    raw = [r.scores.get(key) for r in recs]
    lists = [x for x in raw if isinstance(x, list)]
    if len(lists) != len(raw):
        return None, f"no per-sample lists under {key!r}"
    num = np.asarray([sum(float(v) for v in x) for x in lists])
    den = np.asarray([len(x) for x in lists], dtype=float)
    if den.sum() <= 0 or not _close(float(num.sum() / den.sum()), value):
        return None, f"per-sample {key!r} does not reproduce the summary (out of sync)"
    return SampleValues(metric, "ratio", ids, num, 1.0, den, source=f"{key} (items per sample)"), ""


def _undeclared(metric: str, summary: RunSummary, records: Sequence[SampleRecord],
                declared_key: str | None, value: float) -> tuple[SampleValues | None, str]:
    """Fallback for entries without a declaration: try keys, then known derivations."""
    import numpy as np

    from evalkit.leaderboard.config import sample_key_candidates
    from evalkit.leaderboard.stats import per_sample

    why = ""
    for key in sample_key_candidates(metric, declared_key):
        ps, why_k = per_sample(metric, summary, records, key)
        if ps is not None:
            return SampleValues(metric, ps.kind, ps.ids, ps.values, ps.scale,
                                source=f"{metric}_stats" if ps.kind == "mt" else key), ""
        why = why or why_k
        if "out of sync" in why_k:
            return None, why_k
    got = _sorted_ids(summary, records)
    if got is None:
        return None, "sample records are not the summary's sample set (out of sync)"
    recs, ids = got
    if metric in ("inst_level_strict_acc", "inst_level_loose_acc"):
        sv, _ = _ratio(metric, summary, recs, metric, value)
        if sv is not None:
            return SampleValues(metric, "ratio", ids, sv.values, 1.0, sv.den,
                                source=f"{metric} (instructions per prompt)"), ""
    rule = _mean_rule(metric)
    if rule is not None:
        xs = [rule(r.scores, summary) for r in recs]
        if any(x is not None for x in xs):
            arr = np.asarray([np.nan if x is None else x for x in xs], dtype=float)
            mean = float(np.nanmean(arr))
            for scale in (1.0, 100.0):
                if _close(mean * scale, value):
                    return SampleValues(metric, "mean", ids, arr, scale,
                                        source="derived from the records"), ""
            return None, "derived per-sample values do not reproduce the summary"
    return None, why or "no per-sample values"
