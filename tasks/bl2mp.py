"""``bl2mp:eus``: BL2MP Basque learner minimal pairs.

Accuracy = share of pairs with summed log P(good) > log P(bad) (ties count as wrong, as in
lm-eval's BLiMP tasks), overall, per error type and per CEFR level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from evalkit.errors import BadInput
from evalkit.metrics import Metric
from evalkit.tasks.loglik_utils import check_name, loglik_output, pair_wins
from evalkit.types import LoglikRequest, Output, Sample, ScoredTask, ScoringContext

BL2MP_FILE = "bl2mp/bl2mp.jsonl"


@dataclass(frozen=True)
class Bl2mpTask:
    """BL2MP: Basque learner minimal pairs, summed log-prob comparison."""

    name: str = "bl2mp:eus"
    version: str = "1"
    language: str = "eus_Latn"
    description: str = "BL2MP Basque minimal pairs: accuracy of log P(good) > log P(bad)"

    def samples(self, data: Any) -> list[Sample]:
        """All 1,800 pairs, ids in file order."""
        rows = data.read_jsonl(BL2MP_FILE, hub_hint="orai-nlp/bl2mp")
        out = []
        for i, r in enumerate(rows):
            missing = {"sentence_good", "sentence_bad", "type", "level"} - set(r)
            if missing:
                raise BadInput(f"{BL2MP_FILE} line {i + 1}: missing {sorted(missing)}")
            out.append(Sample(id=f"bl2mp-{i:04d}", data=r, reference="good"))
        return out

    def requests(self, sample: Sample, chat: bool) -> list[LoglikRequest]:
        """Good sentence, then bad sentence, each after a BOS."""
        return [LoglikRequest("", sample.data["sentence_good"]),
                LoglikRequest("", sample.data["sentence_bad"])]

    def score(self, samples: Sequence[Sample], outputs: Sequence[Sequence[Output]],
              ctx: ScoringContext) -> ScoredTask:
        """Accuracy with CI; per error type and CEFR level."""
        good = [loglik_output(o, 0).logprob for o in outputs]
        bad = [loglik_output(o, 1).logprob for o in outputs]
        wins = pair_wins(good, bad)
        accuracy = Metric("accuracy", "proportion", per_sample_key="correct")
        metrics = {accuracy.name: accuracy.mean(wins, seed=ctx.seed)}
        for field in ("type", "level"):
            groups: dict[str, list[float]] = {}
            for s, w in zip(samples, wins):
                groups.setdefault(str(s.data[field]), []).append(w)
            for key, ws in sorted(groups.items()):
                sub = Metric(f"accuracy[{field}={key}]", "proportion")  # a subset: no key
                metrics[sub.name] = sub.mean(ws, seed=ctx.seed)
        per = [{"lp_good": g, "lp_bad": b, "correct": bool(w), "type": s.data["type"],
                "level": s.data["level"]} for s, g, b, w in zip(samples, good, bad, wins)]
        return ScoredTask(per, metrics, {"comparison": "summed token log-probs, ties wrong"})


def make_bl2mp_task(name: str) -> Bl2mpTask:
    """Factory for ``bl2mp:eus``."""
    check_name(name, "bl2mp", "eus")
    return Bl2mpTask()
