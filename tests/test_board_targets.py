"""Which boards a run refreshes: every configured board holding one of its tasks, and the
catch-all board whenever one of its tasks is on no configured board."""

from __future__ import annotations

from pathlib import Path

from evalkit.records import RunSummary


def _write(out: Path, task: str) -> RunSummary:
    s = RunSummary(run_id="m-1@1", created_at="2026-01-01T00:00:00", task=task, task_version="1",
                   language="x", model="m", model_hash="h", backend="hf",
                   metrics={"chrf": {"value": 1.0, "n": 2}}, n_samples=2,
                   sample_ids_sha256="s", chat_template={}, seed=0, data_hashes={},
                   versions={})
    d = out / "m-1"
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "summary.jsonl", "a", encoding="utf-8") as fh:
        fh.write(s.model_dump_json() + "\n")
    return s


def test_uncovered_tasks_reach_the_catch_all_board(tmp_path: Path,
                                                   monkeypatch: object) -> None:
    from evalkit.leaderboard import update_for_run

    monkeypatch.delenv("EVALKIT_LEADERBOARDS", raising=False)  # type: ignore[attr-defined]
    out = tmp_path / "runs"
    on_board = _write(out, "flores:eng_Latn-eus_Latn:devtest")  # on the bundled basque board
    pages = update_for_run(out, [on_board])
    assert [p.parent.name for p in pages] == ["basque"]
    off_board = _write(out, "nb_parse:20")  # on no configured board
    pages = update_for_run(out, [on_board, off_board])
    assert sorted(p.parent.name for p in pages) == ["all", "basque"]
    assert "nb_parse:20" in (out / "leaderboards" / "all" / "board.md").read_text()
