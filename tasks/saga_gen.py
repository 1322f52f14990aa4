"""Oracle-judged generation tasks of SAGA's table: summaries and reading-comprehension answers.

* ``summ:nob`` — Summ PS / Summ score (reconstructed, protocols.md §3): the model summarises
  Norwegian multi-sentence passages, the FLORES-200 devtest Bokmål sentences grouped by source
  article (``flores200/metadata_devtest.tsv``; articles of ≥ 3 sentences). Each summary is
  judged by the parse oracle with the well-formedness rule (``evalkit.oracles.rule``): PS = share
  of summaries passing, score = PS × mean q.
* ``rc:nob`` — RC APS: share of reading-comprehension answers the oracle finds well-formed, over
  the hand-written question set in ``tasks/data/rc_nob/`` (passages read from the mirror by line
  id); with gold answers also accuracy and accuracy ∧ well-formed. ``rc:nob:belebele`` runs
  Belebele ``nob_Latn`` (mirror ``belebele/nob_Latn.jsonl`` if present, else the hub) with its
  four options in the prompt; an answer is correct when the gold option is its unique best match.

Decoding is greedy (deterministic, so one seed suffices); the answer is judged alone, without the
prompt. The oracle is a scoring option: ``--option oracle=stanza-nob`` (default, SAGA's held-out
evaluator), ``spacy-nob`` or ``fake``; ``first_sentence=true`` switches to first-sentence mode and
``parse_score_over=passing`` averages q over passing answers only. nb_parse's list form
``oracles=a,b`` is accepted: these tasks then judge with ``stanza-nob`` if listed, else the first.
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
from evalkit.metrics import mean_metric
from evalkit.stats import bootstrap_replicates, percentile_interval
from evalkit.types import (Generation, GenParams, MetricValue, Output, Sample, ScoredTask,
                           ScoringContext)

FLORES_NOB = "flores200/devtest/nob_Latn.devtest"
FLORES_META = "flores200/metadata_devtest.tsv"
RC_FILE = Path(__file__).resolve().parent / "data" / "rc_nob" / "questions.jsonl"
BELEBELE_MIRROR = "belebele/nob_Latn.jsonl"
DEFAULT_ORACLE = "stanza-nob"
SUMM_GEN = GenParams(max_new_tokens=80, temperature=0.0, stop=("\n",))
RC_GEN = GenParams(max_new_tokens=60, temperature=0.0, stop=("\n",))


# ---------------------------------------------------------------------------------------------
# passages
# ---------------------------------------------------------------------------------------------

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
    lines = data.read_lines(FLORES_NOB, hub_hint="openlanguagedata/flores_plus")
    rows = data.read_lines(FLORES_META)[1:]
    urls = [r.split("\t", 1)[0] for r in rows if r.strip()]
    if len(urls) != len(lines):
        raise BadInput(f"{FLORES_META} has {len(urls)} rows but {FLORES_NOB} {len(lines)} "
                       "lines; the mirror's FLORES files do not belong together")
    return lines, article_ranges(urls)


# ---------------------------------------------------------------------------------------------
# pure scoring helpers
# ---------------------------------------------------------------------------------------------

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
    """Index of the option with the highest token F1 against `answer`; None on a tie or no overlap."""
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


def parse_metrics(passed: Sequence[bool], q: Sequence[float], seed: int = 0,
                  over: str = "all", resamples: int = 1000) -> dict[str, MetricValue]:
    """PS (share of passes, Wilson CI) and parse score = PS × mean q (bootstrap CI).

    The parse-score CI resamples items jointly, so the PS and q factors move together.
    """
    import numpy as np

    if over not in ("all", "passing"):
        raise BadInput(f"parse_score_over must be 'all' or 'passing', not {over!r}")
    ps = mean_metric([float(p) for p in passed], kind="proportion", seed=seed)
    n = len(passed)
    if n == 0:
        return {"parse_success": ps, "parse_score": MetricValue(value=None, n=0)}
    p = np.asarray(passed, dtype=float)
    qq = np.asarray(q, dtype=float)
    mask = p if over == "passing" else np.ones(n)

    def score(w: Any) -> Any:
        ps_b = (w @ p) / n
        denom = w @ mask
        mq = np.where(denom > 0, (w @ (qq * mask)) / np.maximum(denom, 1e-12), 0.0)
        return ps_b * mq

    value = float(score(np.ones((1, n)))[0])
    ci = None
    if n > 1:
        ci = percentile_interval(bootstrap_replicates(score, n, resamples, seed), n=n)
    return {"parse_success": ps,
            "parse_score": MetricValue(value=value, n=n, ci=ci,
                                       ci_method=f"bootstrap-percentile-{resamples}" if ci else None,
                                       note=f"PS × mean q (q over {over} outputs)")}


# ---------------------------------------------------------------------------------------------
# oracle
# ---------------------------------------------------------------------------------------------

def oracle_spec(options: Any) -> Any:
    """The one oracle summ/rc judge with: ``oracle=``, or from nb_parse's ``oracles=`` list the
    held-out evaluator if listed, else the first."""
    spec = options.get("oracle", options.get("oracles", DEFAULT_ORACLE))
    if isinstance(spec, str) and "," in spec:
        spec = [x.strip() for x in spec.split(",") if x.strip()]
    if isinstance(spec, (list, tuple)):
        spec = DEFAULT_ORACLE if DEFAULT_ORACLE in spec else spec[0]
    return spec


def check_oracle(options: Any) -> None:
    """Pre-flight (before generation) for summ/rc: their oracle can be loaded."""
    from evalkit.oracles.specs import check_spec

    check_spec(oracle_spec(options))


def judge_texts(texts: Sequence[str], options: Any, progress: Any = None
                ) -> tuple[list[Any], dict[str, Any]]:
    """Judge texts with the oracle named in the scoring options; verdicts and provenance."""
    from evalkit.oracles.rule import RuleConfig, judge
    from evalkit.oracles.specs import task_oracle

    name, oracle = task_oracle(oracle_spec(options))  # name, kind:model or object
    first = str(options.get("first_sentence", "false")).lower() in ("1", "true", "yes")
    config = RuleConfig(first_sentence_only=first)
    verdicts = judge(oracle, list(texts), config, progress=progress)
    prov = {"oracle": name, "oracle_model": getattr(oracle, "name", name),
            "oracle_hash": getattr(oracle, "model_hash", ""),
            "rule": "protocols.md §3 (reconstructed)",
            "mode": "first-sentence" if first else "strict (all sentences)"}
    return verdicts, prov


def _text(outs: Sequence[Output]) -> str:
    o = outs[0] if outs else None
    return o.texts[0].strip() if isinstance(o, Generation) and o.texts else ""


def _verdict_row(v: Any) -> dict[str, Any]:
    return {"passed": bool(v.passed), "q": float(v.q), "reward": float(v.reward),
            "failed_checks": list(v.failed_checks), "n_sentences": int(v.n_sentences)}


# ---------------------------------------------------------------------------------------------
# summ:nob
# ---------------------------------------------------------------------------------------------

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
        texts = [_text(o) for o in outputs]
        verdicts, prov = judge_texts(texts, ctx.options, progress=ctx.progress)
        over = str(ctx.options.get("parse_score_over", "all"))
        metrics = parse_metrics([v.passed for v in verdicts], [v.q for v in verdicts],
                                ctx.seed, over)
        metrics["empty_rate"] = mean_metric([float(not t) for t in texts],
                                            higher_is_better=False, seed=ctx.seed)
        return ScoredTask([_verdict_row(v) for v in verdicts], metrics,
                          {**prov, "source": f"{FLORES_NOB} grouped by {FLORES_META}",
                           "reconstructed": True})


# ---------------------------------------------------------------------------------------------
# rc:nob
# ---------------------------------------------------------------------------------------------

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
        lines = data.read_lines(FLORES_NOB, hub_hint="openlanguagedata/flores_plus")
        data.hashes["tasks/data/rc_nob/questions.jsonl"] = _sha(RC_FILE)
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
        texts = [_text(o) for o in outputs]
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
        metrics = {
            "aps": pm["parse_success"],
            "accuracy": mean_metric([float(c) for c in correct], seed=ctx.seed),
            "accuracy_and_wellformed": mean_metric([float(c and p) for c, p in
                                                    zip(correct, passed)], seed=ctx.seed),
            "parse_score": pm["parse_score"],
        }
        per = [{**_verdict_row(v), "correct": c} for v, c in zip(verdicts, correct)]
        match = ("gold option is the unique best token-F1 match" if self.source == "belebele"
                 else "a gold answer occurs as a whole-word sequence")
        return ScoredTask(per, metrics, {**prov, "source": self.source, "accuracy_rule": match})


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_summ_task(name: str) -> SummaryTask:
    """Factory for ``summ:nob``."""
    if name != "summ:nob":
        raise BadInput(f"task {name!r}: only summ:nob exists")
    return SummaryTask()


def make_rc_task(name: str) -> ReadingTask:
    """Factory for ``rc:nob`` (hand-written, offline) and ``rc:nob:belebele``."""
    if name == "rc:nob":
        return ReadingTask()
    if name == "rc:nob:belebele":
        return ReadingTask(name=name, source="belebele",
                           description="RC APS and accuracy on Belebele nob_Latn")
    raise BadInput(f"task {name!r}: use rc:nob (hand-written, offline) or rc:nob:belebele")
