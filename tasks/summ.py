"""``summ:nob``: Summ PS / Summ score of SAGA's table (reconstructed).

The model summarises Norwegian multi-sentence passages, the FLORES-200 devtest Bokmål sentences
grouped by source article (``flores200/metadata_devtest.tsv``; articles of ≥ 3 sentences). Each
summary is judged alone (without the prompt) by the parse oracle with the well-formedness rule
(`evalkit.oracles.rule`): PS = share of summaries passing, score = PS × mean q. Decoding is
greedy (deterministic, so one seed suffices). Oracle options: see `evalkit.tasks.oracle_judged`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from evalkit.errors import BadInput
from evalkit.metrics import Metric
from evalkit.tasks.oracle_judged import (
    FLORES_NOB,
    check_oracle,
    first_text,
    judge_texts,
    parse_metrics,
    read_flores_nob,
    verdict_row,
)
from evalkit.types import GenParams, Output, Sample, ScoredTask, ScoringContext

FLORES_META = "flores200/metadata_devtest.tsv"
SUMM_GEN = GenParams(max_new_tokens=80, temperature=0.0, stop=("\n",))
EMPTY = Metric("empty_rate", "proportion", higher_is_better=False)  # records keep no flag


def article_ranges(urls: Sequence[str]) -> list[tuple[int, int]]:
    """Inclusive (first, last) line ranges of consecutive lines sharing a source URL."""
    out: list[tuple[int, int]] = []
    for i, u in enumerate(urls):
        if out and urls[out[-1][0]] == u and out[-1][1] == i - 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def load_articles(data: Any) -> tuple[list[str], list[tuple[int, int]]]:
    """FLORES devtest Bokmål lines and their article ranges (from the metadata TSV)."""
    lines = read_flores_nob(data)
    rows = data.read_lines(FLORES_META)[1:]
    urls = [r.split("\t", 1)[0] for r in rows if r.strip()]
    if len(urls) != len(lines):
        raise BadInput(f"{FLORES_META} has {len(urls)} rows but {FLORES_NOB} {len(lines)} "
                       "lines; the mirror's FLORES files do not belong together")
    return lines, article_ranges(urls)


def summary_prompt(passage: str) -> str:
    """The summarisation prompt (Bokmål instruction; the same text as a chat user turn)."""
    return ("Oppsummer teksten med én eller to hele setninger på norsk bokmål.\n\n"
            f"Tekst: {passage}\n\nOppsummering:")


@dataclass(frozen=True)
class SummaryTask:
    """Summ PS / Summ score over FLORES devtest Bokmål articles."""

    name: str = "summ:nob"
    version: str = "1"
    language: str = "nob_Latn"
    description: str = "Summary parse success (SAGA Summ PS, Summ score), FLORES devtest articles"
    min_sentences: int = 3
    gen: GenParams = field(default=SUMM_GEN)

    def check_options(self, options: Any) -> None:
        """Pre-flight: the oracle named in the options can be loaded."""
        check_oracle(options)

    def samples(self, data: Any) -> list[Sample]:
        """One sample per article with at least `min_sentences` lines."""
        lines, ranges = load_articles(data)
        return [Sample(id=f"flores-devtest-{a:04d}-{b:04d}",
                       data={"passage": " ".join(lines[a:b + 1]), "lines": [a, b]})
                for a, b in ranges if b - a + 1 >= self.min_sentences]

    def requests(self, sample: Sample, chat: bool) -> list[tuple[str, GenParams]]:
        """One greedy summary."""
        return [(summary_prompt(sample.data["passage"]), self.gen)]

    def score(self, samples: Sequence[Sample], outputs: Sequence[Sequence[Output]],
              ctx: ScoringContext) -> ScoredTask:
        """Parse success and parse score of the summaries."""
        texts = [first_text(o) for o in outputs]
        verdicts, prov = judge_texts(texts, ctx.options, progress=ctx.progress)
        over = str(ctx.options.get("parse_score_over", "all"))
        metrics = parse_metrics([v.passed for v in verdicts], [v.q for v in verdicts],
                                ctx.seed, over)
        metrics[EMPTY.name] = EMPTY.mean([float(not t) for t in texts], seed=ctx.seed)
        return ScoredTask([verdict_row(v) for v in verdicts], metrics,
                          {**prov, "source": f"{FLORES_NOB} grouped by {FLORES_META}",
                           "reconstructed": True})


def make_summ_task(name: str) -> SummaryTask:
    """Factory for ``summ:nob``."""
    if name != "summ:nob":
        raise BadInput(f"task {name!r}: only summ:nob exists")
    return SummaryTask()
