"""Progress that moves: the runner reports every finished sequence (not whole batches), with
generated tokens, and the plain-line display shows rates and an ETA."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_runner_reports_each_finished_sequence(tiny_model: Path, tmp_path: Path,
                                               data_dir: Path) -> None:
    from evalkit.runner import RunConfig, run

    seen: list[tuple[str, int, int, int | None]] = []

    def progress(label: str, done: int, total: int, tokens: int | None = None) -> None:
        seen.append((label, done, total, tokens))

    run(RunConfig(model=str(tiny_model), tasks=["flores:eng_Latn-nob_Latn"], limit=10,
                  out=tmp_path / "o", data_dir=data_dir, max_new_tokens=6,
                  backend_options={"batch_size": 10}), progress=progress)
    stages = [s[0] for s in seen]
    assert stages.index("reading task data") < stages.index(
        next(s for s in stages if s.startswith("loading "))) < stages.index("generating")
    gen = [s for s in seen if s[0] == "generating"]
    # one batch of 10, yet the count advances one finished sequence at a time
    assert [s[1] for s in gen] == list(range(11))
    assert all(s[2] == 10 for s in gen)
    tokens = [s[3] for s in gen[1:]]
    assert all(t is not None and t > 0 for t in tokens) and tokens == sorted(tokens)


def test_plain_lines_show_rates_and_eta(capsys: pytest.CaptureFixture[str]) -> None:
    from evalkit.progress import Progress

    with Progress(live=False) as bar:
        bar.update("generating", 0, 4)
        bar.update("generating", 2, 4, tokens=20)  # within 10 s of the last line: not printed
        bar.update("generating", 4, 4, tokens=40)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("evalkit: generating 0/4 (0.0/s, ETA -:--)")
    assert len(lines) == 2 and lines[1].startswith("evalkit: generating 4/4 (")
    assert "tok/s" in lines[1] and lines[1].endswith("ETA 0:00)")
