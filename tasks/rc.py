"""``rc:nob``: RC APS of SAGA's table, the share of reading-comprehension answers the oracle finds
well-formed.

``rc:nob`` uses the hand-written question set in ``tasks/data/rc_nob/`` (passages read from the
mirror's FLORES devtest Bokmål file by line id); with gold answers it also reports accuracy and
accuracy ∧ well-formed. ``rc:nob:belebele`` runs Belebele ``nob_Latn`` (mirror
``belebele/nob_Latn.jsonl`` if present, else the hub) with its four options in the prompt; an
answer is correct when the gold option is its unique best match. Decoding is greedy; the answer
is judged alone, without the prompt. Oracle options: see `evalkit.tasks.oracle_judged`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.errors import BadInput
from evalkit.metrics import Metric
from evalkit.tasks.oracle_judged import (
    FLORES_NOB,
    check_oracle,
    file_sha256,
    first_text,
    judge_texts,
    parse_metrics,
    read_flores_nob,
    verdict_row,
)
from evalkit.types import GenParams, Output, Sample, ScoredTask, ScoringContext

RC_FILE = Path(__file__).resolve().parent / "data" / "rc_nob" / "questions.jsonl"
BELEBELE_MIRROR = "belebele/nob_Latn.jsonl"
RC_GEN = GenParams(max_new_tokens=60, temperature=0.0, stop=("\n",))
APS = Metric("aps", "proportion", per_sample_key="passed")
ACCURACY = Metric("accuracy", "proportion", per_sample_key="correct")
ACCURACY_WF = Metric("accuracy_and_wellformed", "proportion",
                     per_sample_key="correct_and_wellformed")


def normalize_tokens(text: str) -> list[str]:
    """Case-folded word tokens (NFKC; anything not a letter or digit separates words)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return [t for t in re.split(r"[\W_]+", text) if t]


def contains_answer(answer: str, golds: Sequence[str]) -> bool:
    """Whether one gold answer occurs in `answer` as a contiguous whole-word sequence."""
    toks = normalize_tokens(answer)
    for g in golds:
        gt = normalize_tokens(g)
        if gt and any(toks[i:i + len(gt)] == gt for i in range(len(toks) - len(gt) + 1)):
            return True
    return False


def best_option(answer: str, options: Sequence[str]) -> int | None:
    """Index of the option with the highest token F1 against `answer`; None on a tie or no
    overlap."""
    toks = normalize_tokens(answer)
    scores = []
    for opt in options:
        ot = normalize_tokens(opt)
        common = sum(min(toks.count(t), ot.count(t)) for t in set(ot))
        scores.append(0.0 if not common else 2 * common / (len(toks) + len(ot)))
    top = max(scores, default=0.0)
    if top <= 0.0 or scores.count(top) > 1:
        return None
    return scores.index(top)


def rc_prompt(passage: str, question: str, options: Sequence[str] = ()) -> str:
    """The reading-comprehension prompt; asks for a full-sentence answer (what APS judges)."""
    opts = "".join(f"{i}) {o}\n" for i, o in enumerate(options, 1))
    opts = f"Svaralternativer:\n{opts}" if opts else ""
    return ("Les teksten og svar på spørsmålet med én hel setning på norsk bokmål.\n\n"
            f"Tekst: {passage}\n\nSpørsmål: {question}\n{opts}Svar:")


def load_rc_questions(path: Path = RC_FILE) -> list[dict[str, Any]]:
    """The hand-written questions (validated)."""
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    for r in rows:
        if not {"id", "lines", "question", "answers"} <= set(r) or not r["answers"]:
            raise BadInput(f"{path}: question {r.get('id', '?')} lacks id/lines/question/answers")
    return rows


@dataclass(frozen=True)
class ReadingTask:
    """RC APS (+ accuracy) over the hand-written set or Belebele nob_Latn."""

    name: str = "rc:nob"
    version: str = "1"
    language: str = "nob_Latn"
    description: str = "Reading-comprehension answer parse success (SAGA RC APS), hand-written"
    source: str = "handwritten"
    gen: GenParams = field(default=RC_GEN)

    def check_options(self, options: Any) -> None:
        """Pre-flight: the oracle named in the options can be loaded."""
        check_oracle(options)

    def samples(self, data: Any) -> list[Sample]:
        """Questions with their passages (read from the mirror) and gold answers."""
        if self.source == "belebele":
            return self._belebele(data)
        lines = read_flores_nob(data)
        data.hashes["tasks/data/rc_nob/questions.jsonl"] = file_sha256(RC_FILE)
        out = []
        for r in load_rc_questions():
            a, b = r["lines"]
            if not 0 <= a <= b < len(lines):
                raise BadInput(f"{RC_FILE}: {r['id']} names lines {a}-{b}, outside "
                               f"{FLORES_NOB} ({len(lines)} lines)")
            out.append(Sample(id=r["id"], data={"passage": " ".join(lines[a:b + 1]),
                                                "question": r["question"], "options": []},
                              reference={"answers": r["answers"]}))
        return out

    def _belebele(self, data: Any) -> list[Sample]:
        if data.exists(BELEBELE_MIRROR):
            rows = data.read_jsonl(BELEBELE_MIRROR)
        else:
            rows = data.hub_rows("facebook/belebele", None, "nob_Latn",
                                 mirror_path=BELEBELE_MIRROR)
        out = []
        for i, r in enumerate(rows):
            opts = [r[f"mc_answer{k}"] for k in range(1, 5)]
            gold = int(r["correct_answer_num"]) - 1
            out.append(Sample(id=f"belebele-{i:04d}",
                              data={"passage": r["flores_passage"], "question": r["question"],
                                    "options": opts},
                              reference={"answers": [opts[gold]], "gold_option": gold}))
        return out

    def requests(self, sample: Sample, chat: bool) -> list[tuple[str, GenParams]]:
        """One greedy answer."""
        d = sample.data
        return [(rc_prompt(d["passage"], d["question"], d["options"]), self.gen)]

    def score(self, samples: Sequence[Sample], outputs: Sequence[Sequence[Output]],
              ctx: ScoringContext) -> ScoredTask:
        """APS, accuracy, accuracy ∧ well-formed."""
        texts = [first_text(o) for o in outputs]
        verdicts, prov = judge_texts(texts, ctx.options, progress=ctx.progress)
        correct = []
        for s, t in zip(samples, texts):
            ref = s.reference or {}
            if "gold_option" in ref:
                correct.append(best_option(t, s.data["options"]) == ref["gold_option"])
            else:
                correct.append(contains_answer(t, ref.get("answers", [])))
        passed = [bool(v.passed) for v in verdicts]
        over = str(ctx.options.get("parse_score_over", "all"))
        pm = parse_metrics(passed, [v.q for v in verdicts], ctx.seed, over)
        both = [float(c and p) for c, p in zip(correct, passed)]
        metrics = {
            APS.name: APS.declare(pm["parse_success"]),
            ACCURACY.name: ACCURACY.mean([float(c) for c in correct], seed=ctx.seed),
            ACCURACY_WF.name: ACCURACY_WF.mean(both, seed=ctx.seed),
            "parse_score": pm["parse_score"],
        }
        per = [{**verdict_row(v), ACCURACY.sample_key: c, ACCURACY_WF.sample_key: cw}
               for v, c, cw in zip(verdicts, correct, both)]
        match = ("gold option is the unique best token-F1 match" if self.source == "belebele"
                 else "a gold answer occurs as a whole-word sequence")
        return ScoredTask(per, metrics, {**prov, "source": self.source, "accuracy_rule": match})


def make_rc_task(name: str) -> ReadingTask:
    """Factory for ``rc:nob`` (hand-written, offline) and ``rc:nob:belebele``."""
    if name == "rc:nob":
        return ReadingTask()
    if name == "rc:nob:belebele":
        return ReadingTask(name=name, source="belebele",
                           description="RC APS and accuracy on Belebele nob_Latn")
    raise BadInput(f"task {name!r}: use rc:nob (hand-written, offline) or rc:nob:belebele")
