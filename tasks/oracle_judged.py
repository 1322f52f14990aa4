"""Helpers shared by the oracle-judged generation tasks (``nb_parse``, ``summ``, ``rc``).

The oracle is a scoring option: ``--option oracle=stanza-nob`` (default, SAGA's held-out
evaluator), ``spacy-nob`` or ``fake``; ``first_sentence=true`` switches the well-formedness rule
(`evalkit.oracles.rule`) to first-sentence mode and ``parse_score_over=passing`` averages q over
passing outputs only. nb_parse's list form ``oracles=a,b`` is accepted by summ and rc: they then
judge with ``stanza-nob`` if listed, else the first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.errors import BadInput
from evalkit.metrics import Metric
from evalkit.stats import bootstrap_replicates, percentile_interval
from evalkit.types import Generation, MetricValue, Output

FLORES_NOB = "flores200/devtest/nob_Latn.devtest"
DEFAULT_ORACLE = "stanza-nob"
#: what the records name as the judging rule
RULE_NAME = "SAGA well-formedness rule (reconstructed; evalkit.oracles.rule)"


def read_flores_nob(data: Any) -> list[str]:
    """The FLORES-200 devtest Bokmål lines (the passages of summ and rc)."""
    return data.read_lines(FLORES_NOB, hub_hint="openlanguagedata/flores_plus")


def first_sentence_mode(options: Any) -> bool:
    """Whether the scoring options ask for first-sentence mode."""
    return str(options.get("first_sentence", "false")).lower() in ("1", "true", "yes")


#: parse success and parse score of one output per sample (summ, rc), declared
PARSE_SUCCESS = Metric("parse_success", "proportion", per_sample_key="passed")
PARSE_SCORE = Metric("parse_score", "corpus")


def parse_metrics(passed: Sequence[bool], q: Sequence[float], seed: int = 0,
                  over: str = "all", resamples: int = 1000) -> dict[str, MetricValue]:
    """PS (share of passes, Wilson CI) and parse score = PS × mean q (bootstrap CI).

    The parse-score CI resamples items jointly, so the PS and q factors move together. The
    values carry the `PARSE_SUCCESS` / `PARSE_SCORE` declarations (per-sample key ``passed``,
    the key `verdict_row` writes).
    """
    import numpy as np

    if over not in ("all", "passing"):
        raise BadInput(f"parse_score_over must be 'all' or 'passing', not {over!r}")
    ps = PARSE_SUCCESS.mean([float(p) for p in passed], seed=seed)
    n = len(passed)
    if n == 0:
        return {"parse_success": ps, "parse_score": PARSE_SCORE.declare(MetricValue(None, 0))}
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
            "parse_score": PARSE_SCORE.declare(MetricValue(
                value=value, n=n, ci=ci,
                ci_method=f"bootstrap-percentile-{resamples}" if ci else None,
                note=f"PS × mean q (q over {over} outputs)"))}


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
    first = first_sentence_mode(options)
    verdicts = judge(oracle, list(texts), RuleConfig(first_sentence_only=first), progress=progress)
    prov = {"oracle": name, "oracle_model": getattr(oracle, "name", name),
            "oracle_hash": getattr(oracle, "model_hash", ""), "rule": RULE_NAME,
            "mode": "first-sentence" if first else "strict (all sentences)"}
    return verdicts, prov


def first_text(outs: Sequence[Output]) -> str:
    """The stripped first text of a sample's first generation ("" when there is none)."""
    o = outs[0] if outs else None
    return o.texts[0].strip() if isinstance(o, Generation) and o.texts else ""


def verdict_row(v: Any) -> dict[str, Any]:
    """A verdict as a per-sample record row."""
    return {"passed": bool(v.passed), "q": float(v.q), "reward": float(v.reward),
            "failed_checks": list(v.failed_checks), "n_sentences": int(v.n_sentences)}


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
