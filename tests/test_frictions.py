"""Small things a newcomer meets first: ISO codes in FLORES names, boards by name from any
directory, an aligned task list, board descriptions that cite only the repository."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from evalkit.backends.scripted import ScriptedBackend
from evalkit.errors import BadInput
from evalkit.runner import RunConfig, read_summaries, run

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name,canonical", [
    ("flores:en-eu", "flores:eng_Latn-eus_Latn:devtest"),
    ("flores:eng-nob", "flores:eng_Latn-nob_Latn:devtest"),
    ("flores:no-en:dev", "flores:nob_Latn-eng_Latn:dev"),
    ("flores:nb-nn", "flores:nob_Latn-nno_Latn:devtest"),
    ("flores:eu-eng_Latn", "flores:eus_Latn-eng_Latn:devtest"),
    ("flores:eng_Latn-eus_Latn:devtest", "flores:eng_Latn-eus_Latn:devtest"),
    ("ntrex:en-nb", "ntrex:eng_Latn-nob_Latn"),
])
def test_flores_accepts_iso_codes(name: str, canonical: str) -> None:
    from evalkit.tasks.flores import make_ntrex_task, make_task

    factory = make_ntrex_task if name.startswith("ntrex") else make_task
    assert factory(name).name == canonical


@pytest.mark.parametrize("name,needle", [("flores:xx-eu", "'xx'"), ("flores:en-euu", "'euu'"),
                                         ("flores:en", "e.g.")])
def test_flores_bad_codes_are_one_line_errors(name: str, needle: str) -> None:
    from evalkit.tasks.flores import make_task

    with pytest.raises(BadInput, match=needle):
        make_task(name)


def test_iso_and_flores_spellings_share_records(tiny_model: Path, tmp_path: Path,
                                                data_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    backend = ScriptedBackend(default="Kaixo mundua.")
    monkeypatch.setattr("evalkit.runner.make_backend", lambda *a, **k: backend)
    cfg = dict(model=str(tiny_model), limit=3, out=tmp_path, backend="scripted",
               update_leaderboards=False)
    (first,) = run(RunConfig(tasks=["flores:en-eu"], **cfg))
    (second,) = run(RunConfig(tasks=["flores:eng_Latn-eus_Latn"], **cfg))
    assert first.task == second.task == "flores:eng_Latn-eus_Latn:devtest"
    assert backend.calls == 3  # the second spelling found the first one's generations
    run_dir = next(p for p in tmp_path.iterdir() if (p / "summary.jsonl").exists())
    assert [s.task for s in read_summaries(run_dir)] == [first.task]


def test_leaderboard_config_by_name_from_any_directory(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from evalkit.leaderboard.config import find_config, load_config

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EVALKIT_LEADERBOARDS", raising=False)
    assert find_config("basque") == REPO / "leaderboards" / "basque.toml"
    assert find_config("sardinian.toml") == REPO / "leaderboards" / "sardinian.toml"
    assert load_config(find_config("norwegian")).name == "norwegian"
    mine = tmp_path / "boards"
    mine.mkdir()
    (mine / "basque.toml").write_text("title = 'mine'\n[[tasks]]\ntask = 'flores:en-eu'\n")
    monkeypatch.setenv("EVALKIT_LEADERBOARDS", str(mine))
    assert load_config(find_config("basque")).title == "mine"  # the user's dirs come first
    assert load_config(find_config("basque")).task_names == ["flores:eng_Latn-eus_Latn:devtest"]
    with pytest.raises(BadInput, match="boards: .*basque.*sardinian"):
        find_config("basqe")


def test_leaderboard_cli_takes_a_board_name(tiny_model: Path, tmp_path: Path, data_dir: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from evalkit.cli import app

    monkeypatch.setattr("evalkit.runner.make_backend",
                        lambda *a, **k: ScriptedBackend(default="Kaixo."))
    runs = tmp_path / "runs"
    run(RunConfig(model=str(tiny_model), tasks=["flores:en-eu"], limit=3, out=runs,
                  backend="scripted", update_leaderboards=False))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    res = CliRunner().invoke(app, ["leaderboard", str(runs), "--config", "basque",
                                   "--no-plots"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("basque: 1 models")
    assert (runs / "leaderboards" / "basque" / "board.csv").is_file()


def test_task_list_is_aligned() -> None:
    import subprocess

    out = subprocess.run([sys.executable, "-m", "evalkit.cli", "tasks"], capture_output=True,
                         text=True, check=True, env={"COLUMNS": "100", "PATH": ""}).stdout
    lines = [ln for ln in out.splitlines() if ln.strip() and ln != "suites:"]
    starts = {len(ln) - len(ln.split(maxsplit=1)[1]) for ln in lines if not ln.startswith(" ")}
    assert len(starts) == 1, out  # every description starts in the same column
    (col,) = starts
    assert all(ln[:col].strip() == "" for ln in lines if ln.startswith(" ")), out  # wrapped
    assert max(len(ln) for ln in lines) <= 100
    assert any(ln.startswith("basque-full") for ln in lines)


def test_board_descriptions_cite_only_the_repository() -> None:
    from evalkit.leaderboard.config import load_config

    for f in sorted((REPO / "leaderboards").glob("*.toml")):
        cfg = load_config(f)
        text = f"{cfg.title} {cfg.description}"
        assert "§" not in text and "shared/" not in text, f.name
        for ref in re.findall(r"[\w./-]+\.(?:md|py|toml)\b", text):
            assert (REPO / ref).exists(), f"{f.name} cites {ref}, which is not in the repo"
