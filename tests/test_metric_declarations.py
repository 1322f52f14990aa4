"""Every built-in task declares its metrics (`evalkit.metrics.Metric`), and the declared
per-sample values are exactly what the undeclared fallback recovered from the same records, so
boards, `evalkit compare` and the viewer test and show the same numbers as before.

Each task is scored on canned outputs, its records round-trip through JSON as on disk, and
`sample_values` runs twice: on the summary as written, and on a copy with the declarations
removed (the fallback that older records take).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evalkit.types import Generation, LoglikResult, Sample, ScoringContext

# metrics the fallback could not recover although the records hold their per-sample values
NEWLY_TESTABLE = {("summ:nob", "parse_success")}


def _records(task: Any, samples: list[Sample], scored: Any) -> tuple[Any, list[Any]]:
    from evalkit.records import RunSummary, SampleRecord
    from evalkit.types import sha256_text

    ids = sorted(s.id for s in samples)
    summary = RunSummary(
        run_id="r", created_at="2026-01-01T00:00:00", task=task.name, task_version="1",
        language=task.language, model="m", model_hash="h", backend="scripted",
        metrics={k: m.to_json() for k, m in scored.metrics.items()}, n_samples=len(samples),
        sample_ids_sha256=sha256_text("\n".join(ids)), chat_template={}, seed=0,
        data_hashes={}, versions={})
    recs = [SampleRecord(run_id="r", task=task.name, task_version="1", sample_id=s.id,
                         model="m", model_hash="h", prompts=["p"], prompt_sha256="x",
                         outputs=[], scores=sc) for s, sc in zip(samples, scored.per_sample)]
    summary = RunSummary.model_validate_json(summary.model_dump_json())
    return summary, [SampleRecord.model_validate_json(r.model_dump_json()) for r in recs]


def _undeclared(summary: Any) -> Any:
    drop = {"kind", "scale", "per_sample_key"}
    metrics = {k: {f: v for f, v in m.items() if f not in drop} for k, m in summary.metrics.items()}
    return summary.model_copy(update={"metrics": metrics})


def _same(a: Any, b: Any) -> bool:
    if a.kind != b.kind or a.scale != b.scale or a.ids != b.ids:
        return False
    if not np.array_equal(np.asarray(a.values, dtype=float), np.asarray(b.values, dtype=float),
                          equal_nan=True):
        return False
    return a.den is None and b.den is None or np.array_equal(a.den, b.den)


def _check(task: Any, samples: list[Sample], outputs: list[list[Any]],
           ctx: ScoringContext | None = None) -> dict[str, Any]:
    from evalkit.leaderboard.values import sample_values

    scored = task.score(samples, outputs, ctx or ScoringContext())
    summary, recs = _records(task, samples, scored)
    old_summary = _undeclared(summary)
    found = {}
    for name, entry in summary.metrics.items():
        assert entry.get("kind") in ("proportion", "mean", "ratio", "corpus"), (name, entry)
        assert "per_sample_key" in entry and entry.get("scale") is not None, (name, entry)
        new, why_new = sample_values(name, summary, recs)
        old, _ = sample_values(name, old_summary, recs)
        if old is not None:
            assert new is not None, f"{task.name} {name}: the fallback found values: {why_new}"
            assert _same(new, old), f"{task.name} {name}: declared values differ"
        elif new is not None:
            assert (task.name, name) in NEWLY_TESTABLE, f"{task.name} {name} newly testable"
        found[name] = new
    return found


def _gen(*texts: str) -> list[Generation]:
    return [Generation((t,)) for t in texts]


def test_flores_known_and_unknown_target(data_dir: Path) -> None:
    from evalkit.data import DataLayer
    from evalkit.registry import load_task

    data = DataLayer(data_dir)
    for name in ("flores:eng_Latn-eus_Latn:devtest", "flores:eng_Latn-srd_Latn:dev"):
        task = load_task(name)
        samples = task.samples(data)[:40]
        outs = [_gen("" if i % 9 == 0 else s.data["source"] if i % 4 == 0 else
                     " ".join(s.reference.split()[: 3 + i % 7])) for i, s in enumerate(samples)]
        found = _check(task, samples, outs)
        assert found["bleu"] is not None and found["bleu"].kind == "mt"
        assert found["empty_rate"] is not None
        assert found["target_lang_rate" if "eus" in name else "off_target_drift_rate"]


def test_ifeval_prompt_and_instruction_level(data_dir: Path) -> None:
    from evalkit.data import DataLayer
    from evalkit.registry import load_task

    task = load_task("ifeval:en")
    samples = task.samples(DataLayer(data_dir))[:30]
    outs = [_gen("this is a short answer without commas" if i % 2 else
                 "THIS, IS A LOUD ANSWER.\n\nWith two paragraphs.") for i in range(len(samples))]
    found = _check(task, samples, outs)
    assert found["inst_level_strict_acc"] is not None
    assert found["inst_level_strict_acc"].kind == "ratio"
    assert found["prompt_level_loose_acc"] is not None


@pytest.mark.parametrize("name", ["safety:en", "xstest:en", "ifjudge:eu:builtin"])
def test_judged_tasks(data_dir: Path, name: str) -> None:
    from evalkit.data import DataLayer
    from evalkit.registry import load_task

    task = load_task(name)
    samples = task.samples(DataLayer(data_dir))[:30]
    replies = ["I'm sorry, but I can't help with that request.",
               "Sure, here is how to do it: first gather the materials.",
               "Sentitzen dut, baina ezin dizut horretan lagundu.", ""]
    outs = [_gen(replies[i % len(replies)]) for i in range(len(samples))]
    if name.startswith("ifjudge"):  # an LLM judge's verdicts: scripted, some unparseable
        from evalkit.backends.scripted import ScriptedBackend

        verdicts = ["VERDICT: FOLLOWS\nREASON: ok", "VERDICT: FAILS\nREASON: no", "hmm"]
        ctx = ScoringContext(judge=ScriptedBackend(
            lambda req, k: verdicts[len(req.prompt) % 3]))
    else:
        ctx = ScoringContext(options={"judge": "rule"})
    found = _check(task, samples, outs, ctx)
    assert found["lang_rate"] is not None
    assert found["judge_unparseable_rate"] is not None


def test_oracle_judged_tasks(data_dir: Path) -> None:
    from evalkit.data import DataLayer
    from evalkit.oracles.fake import FakeOracle
    from evalkit.registry import load_task

    class Other(FakeOracle):
        name = "fake-other"

    data = DataLayer(data_dir)
    good, bad = "Han leser boka i dag.", "Boka i dag"
    task = load_task("nb_parse:12")
    samples = task.samples(data)
    outs = [_gen(*[" leser boka." if (i + j) % 3 else " og så" for j in range(3)])
            for i in range(len(samples))]
    two = ScoringContext(options={"oracles": [FakeOracle(), Other(bad=["Han leser boka."])]})
    found = _check(task, samples, outs, two)
    assert found["parse_success:fake"] is not None
    assert found["oracle_agreement:fake|fake-other"] is not None
    for name in ("summ:nob", "rc:nob"):
        task = load_task(name)
        samples = task.samples(data)[:20]
        outs = [_gen(good if i % 3 else bad) for i in range(len(samples))]
        found = _check(task, samples, outs, ScoringContext(options={"oracle": "fake"}))
        assert found["aps" if name == "rc:nob" else "parse_success"] is not None


def test_loglik_tasks(data_dir: Path) -> None:
    from evalkit.data import DataLayer
    from evalkit.registry import load_task

    data = DataLayer(data_dir)
    for name in ("ppl:nob", "scala:nob", "bl2mp:eus"):
        task = load_task(name)
        samples = task.samples(data)[:40]
        outs = []
        for s in samples:
            reqs = task.requests(s, False)
            outs.append([LoglikResult(-0.7 * len(r.continuation) - (k % 2) * 3.0,
                                      max(1, len(r.continuation) // 4), False)
                         for k, r in enumerate(reqs)])
        found = _check(task, samples, outs)
        if name == "bl2mp:eus":
            assert found["accuracy"] is not None
        if name == "ppl:nob":
            assert all(v is None for v in found.values())  # corpus-level only
