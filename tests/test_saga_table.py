"""The SAGA suite end to end on a scripted backend, and the seven-column table."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.backends.scripted import ScriptedBackend
from evalkit.records import RunSummary


def _summary(task: str, adapter: str | None, metrics: dict) -> RunSummary:  # noqa: ANN001
    return RunSummary(run_id="r", created_at="t", task=task, task_version="1", language="nob_Latn",
                      model="m", model_hash="h", adapter=adapter, backend="hf", metrics=metrics,
                      n_samples=1, sample_ids_sha256="x", chat_template={}, seed=0,
                      data_hashes={}, versions={})


def test_table_layout_and_formatting() -> None:
    from evalkit.saga_table import render_saga_table, saga_rows

    s = [_summary("rc:nob", "A1", {"aps": {"value": 0.875}}),
         _summary("ppl:nob", None, {"perplexity": {"value": 30.14, "ci": [29.0, 31.5]}}),
         _summary("nb_parse", None, {"parse_success:spacy-nob": {"value": 0.9},
                                     "parse_success:stanza-nob": {"value": 0.83},
                                     "parse_score:fake": {"value": 0.392}}),
         _summary("scala:nob", None, {"auroc": {"value": 0.605, "ci": [0.58, 0.63]}}),
         _summary("summ:nob", None, {"parse_success": {"value": 0.63},
                                     "parse_score": {"value": 0.202}})]
    rows = saga_rows(s)
    assert [r[0] for r in rows] == ["base", "A1"]  # base first
    assert rows[0][1:] == ["30.1 [29.0, 31.5]", "83.0%", "0.392", "0.605 [0.580, 0.630]",
                           "63.0%", "0.202", "–"]
    assert rows[1][1:] == ["–"] * 6 + ["87.5%"]
    md = render_saga_table(s, with_ci=False)
    assert md.splitlines()[0].startswith("| model | PPL-Wiki")
    assert "| base | 30.1 | 83.0% |" in md


def test_saga_tasks_through_the_runner(tiny_model: Path, tmp_path: Path, data_dir: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from evalkit.runner import RunConfig, expand_task_names, rescore_run, run
    from evalkit.saga_table import saga_rows

    backend = ScriptedBackend(default="Hun liker kaffe.\nmer tekst")
    monkeypatch.setattr("evalkit.runner.make_backend", lambda *a, **k: backend)
    cfg = RunConfig(model=str(tiny_model), out=tmp_path, backend="scripted", limit=8,
                    tasks=expand_task_names(["bl2mp:eus"], ["saga"]),
                    task_options={"oracle": "fake"}, update_leaderboards=False)
    summaries = run(cfg)
    by = {s.task: s for s in summaries}
    assert by["summ:nob"].metrics["parse_success"]["value"] == 1.0
    assert by["rc:nob"].metrics["aps"]["value"] == 1.0
    assert by["rc:nob"].metrics["accuracy"]["value"] == 0.0
    assert by["scala:nob"].n_samples == 8 and "auroc" in by["scala:nob"].metrics
    assert any(k.startswith("built:scala-nob") for k in by["scala:nob"].data_hashes)
    assert by["ppl:nob"].metrics["perplexity"]["value"] > 1.0
    row = saga_rows(summaries)[0]
    # 8 of 8 passes: the Wilson interval, not the bootstrap's zero-width [100.0, 100.0]
    assert row[0] == "base" and row[5] == "100.0% [67.6, 100.0]" and row[7].startswith("100.0%")
    assert all(cell != "–" for cell in row)  # all seven columns filled, nb_parse's PS included
    run_dir = next(p for p in tmp_path.iterdir() if (p / "summary.jsonl").exists())
    again = {s.task: s for s in rescore_run(run_dir, task_options={"oracle": "fake"})}
    for name in by:
        assert again[name].metrics == by[name].metrics, name
