"""Preference pairs from oracle-scored candidates (pure functions, no model, no I/O).

SAGA keeps a pair iff ``score(chosen) − score(rejected) ≥ min_delta`` and ``score(chosen) ≥
min_chosen``. Which candidates of one prompt get paired is not published; the strategies here are
named so a report can say which one ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Pair", "PairStats", "mine_pairs", "pair_stats"]

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Pair:
    """One preference pair: continuations of `prompt` and their oracle scores."""

    prompt_id: int
    prompt: str
    chosen: str
    rejected: str
    chosen_score: float
    rejected_score: float

    @property
    def delta(self) -> float:
        """score(chosen) − score(rejected)."""
        return self.chosen_score - self.rejected_score

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON row (the `pairs.jsonl` line)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class PairStats:
    """What SAGA reports about its pairs, plus where candidates were lost."""

    n_pairs: int
    n_prompts: int
    n_prompts_with_pairs: int
    n_candidates: int
    mean_chosen: float | None
    mean_rejected: float | None
    mean_delta: float | None
    share_candidates_passing_min_chosen: float
    mean_candidate_score: float | None

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form (`pair_stats.json`)."""
        return asdict(self)


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def mine_pairs(prompts: Sequence[str], candidates: Sequence[Sequence[str]],
               scores: Sequence[Sequence[float]], *, min_delta: float = 0.25,
               min_chosen: float = 0.20, strategy: str = "disjoint",
               max_per_prompt: int | None = None) -> list[Pair]:
    """Mine preference pairs for each prompt.

    Args:
        prompts: prompt texts.
        candidates: per prompt, its candidate continuations.
        scores: per prompt, one oracle score per candidate (aligned with `candidates`).
        min_delta: minimal score(chosen) − score(rejected).
        min_chosen: minimal score(chosen).
        strategy: ``disjoint`` (i-th best with i-th worst, each candidate at most once),
            ``best_worst`` (one pair per prompt) or ``all`` (every qualifying ordered pair).
        max_per_prompt: optional cap on pairs per prompt (largest Δ first).

    Returns:
        Pairs in prompt order; within a prompt, larger Δ first. Candidates with the same text
        are merged first (a duplicate cannot be both chosen and rejected).
    """
    if strategy not in ("disjoint", "best_worst", "all"):
        raise ValueError(f"unknown pairing strategy {strategy!r}")
    if not (len(prompts) == len(candidates) == len(scores)):
        raise ValueError("prompts, candidates and scores must have the same length")
    out: list[Pair] = []
    for pid, (prompt, cands, scs) in enumerate(zip(prompts, candidates, scores)):
        if len(cands) != len(scs):
            raise ValueError(f"prompt {pid}: {len(cands)} candidates but {len(scs)} scores")
        uniq: dict[str, float] = {}
        for c, s in zip(cands, scs):
            uniq.setdefault(c, float(s))
        ranked = sorted(uniq.items(), key=lambda cs: (-cs[1], cs[0]))  # stable on ties
        found: list[Pair] = []
        if strategy == "all":
            for i, (c, sc) in enumerate(ranked):
                for r, sr in ranked[i + 1:]:
                    found.append(Pair(pid, prompt, c, r, sc, sr))
        else:
            k = 1 if strategy == "best_worst" else len(ranked) // 2
            for i in range(k):
                (c, sc), (r, sr) = ranked[i], ranked[len(ranked) - 1 - i]
                found.append(Pair(pid, prompt, c, r, sc, sr))
        # thresholds are inclusive; the tolerance keeps 0.20 − (−0.05) ≥ 0.25 true in floats
        found = [p for p in found
                 if p.chosen_score >= min_chosen - _EPS and p.delta >= min_delta - _EPS]
        found.sort(key=lambda p: -p.delta)
        out += found[:max_per_prompt] if max_per_prompt else found
    return out


def pair_stats(pairs: Sequence[Pair], scores: Sequence[Sequence[float]],
               min_chosen: float = 0.20) -> PairStats:
    """Count and mean chosen/rejected/Δ (SAGA's reported statistics) and candidate coverage."""
    flat = [s for row in scores for s in row]
    return PairStats(
        n_pairs=len(pairs),
        n_prompts=len(scores),
        n_prompts_with_pairs=len({p.prompt_id for p in pairs}),
        n_candidates=len(flat),
        mean_chosen=_mean([p.chosen_score for p in pairs]),
        mean_rejected=_mean([p.rejected_score for p in pairs]),
        mean_delta=_mean([p.delta for p in pairs]),
        share_candidates_passing_min_chosen=(sum(s >= min_chosen for s in flat) / len(flat)
                                             if flat else 0.0),
        mean_candidate_score=_mean(flat),
    )
