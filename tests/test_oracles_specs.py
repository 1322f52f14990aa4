"""Oracle specs: registered names and ``spacy:<model>`` / ``stanza:<model>`` (official models).

No official Norwegian model can be downloaded here, so the official Stanza layout is a stand-in
(labelled): ``$STANZA_RESOURCES_DIR/nb/{pos,depparse}/*.pt`` linked to the shipped NDT models,
which exercises the same resolution code an installed ``stanza.download('nb')`` goes through.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit.errors import BadInput
from evalkit.oracles.specs import load_oracle

SENTENCES = ["Jeg liker kaffe.", "Og så videre", "Hun har lest boka."]


@pytest.fixture()
def official_stanza_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from evalkit.oracles.stanza_oracle import DEFAULT_STANZA_MODEL

    for proc, src in (("pos", "tagger.pt"), ("depparse", "parser.pt")):
        (tmp_path / "nb" / proc).mkdir(parents=True)
        os.symlink(DEFAULT_STANZA_MODEL / src, tmp_path / "nb" / proc / f"nb_stand-in_{proc}.pt")
    monkeypatch.setenv("STANZA_RESOURCES_DIR", str(tmp_path))
    return tmp_path


def test_stanza_official_spec_resolves_the_installed_layout(official_stanza_layout: Path) -> None:
    from evalkit.oracles.rule import judge
    from evalkit.oracles.stanza_oracle import hash_model_dir_files

    official = load_oracle("stanza:nb", {"scheme": "ndt"})  # stand-in models carry NDT labels
    shipped = load_oracle("stanza-nob")
    assert official.name == "stanza-nb" and official.model_path == official_stanza_layout / "nb"
    found = [official_stanza_layout / "nb" / p / f"nb_stand-in_{p}.pt"
             for p in ("pos", "depparse")]
    assert official.model_hash == hash_model_dir_files(found)  # the layout's files were loaded
    assert [v.passed for v in judge(official, SENTENCES)] == \
        [v.passed for v in judge(shipped, SENTENCES)] == [True, False, True]
    assert load_oracle("stanza:nb").scheme == "ud"  # official models are UD-labelled by default


def test_nb_parse_accepts_an_official_model_spec(official_stanza_layout: Path) -> None:
    from evalkit.tasks.nb_parse import ParseSuccessTask
    from evalkit.types import Generation, Sample, ScoringContext

    task = ParseSuccessTask(n_prompts=1, seeds=(0,))
    res = task.score([Sample("a", {"prefix": "Jeg liker"})], [[Generation((" kaffe.",))]],
                     ScoringContext(options={"oracles": "stanza-nob,stanza:nb"}))
    assert res.metrics["parse_success:stanza-nob"].value == 1.0
    # keyed by the oracle id (no second colon); the stand-in's NDT labels read as UD (the official
    # default) give no subject, so the official-layout oracle fails the sentence
    assert res.metrics["parse_success:stanza-nb"].value == 0.0
    assert "oracle_agreement:stanza-nob|stanza-nb" in res.metrics


def test_spacy_spec_takes_a_model_directory() -> None:
    from evalkit.oracles.rule import judge
    from evalkit.oracles.spacy_oracle import DEFAULT_SPACY_MODEL

    by_dir = load_oracle(f"spacy:{DEFAULT_SPACY_MODEL}")
    assert by_dir.model_hash == load_oracle("spacy").model_hash
    assert [v.passed for v in judge(by_dir, SENTENCES)] == [True, False, True]


@pytest.mark.parametrize(("spec", "needle"), [
    ("stanza:nb", "no official Stanza 'nb' model"),       # nothing installed
    ("spacy:nb_core_news_sm", "cannot load its model"),  # package not installed
    ("udpipe:nb", "unknown oracle kind 'udpipe'"),
])
def test_bad_specs_are_one_line_errors(spec: str, needle: str, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANZA_RESOURCES_DIR", str(tmp_path))
    with pytest.raises(BadInput, match=needle) as err:
        load_oracle(spec)
    assert "\n" not in str(err.value)


def test_cli_bad_oracle_spec_exits_2_without_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "STANZA_RESOURCES_DIR": str(tmp_path)}
    res = subprocess.run([sys.executable, "-m", "evalkit.cli", "oracle", "judge", "--oracle",
                          "stanza:nb", "Hunden sover."], capture_output=True, text=True, env=env)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "Traceback" not in res.stderr and "no official Stanza 'nb' model" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_check_spec_vets_without_loading(official_stanza_layout: Path) -> None:
    from evalkit.errors import EvalkitError
    from evalkit.oracles.spacy_oracle import DEFAULT_SPACY_MODEL
    from evalkit.oracles.specs import check_spec

    for ok in ("spacy-nob", "stanza-nob", "fake", "spacy", "stanza:nb",
               f"spacy:{DEFAULT_SPACY_MODEL}", object()):
        check_spec(ok)
    for bad, needle in (("stanza:/no/such/dir", "no model directory"),
                        ("spacy:nb_core_news_sm", "no installed spaCy package"),
                        ("udpipe:nb", "unknown oracle kind"), ("stanza-nbo", "unknown oracle")):
        with pytest.raises(EvalkitError, match=needle):
            check_spec(bad)


def test_run_fails_on_a_bad_oracle_before_generating(tiny_model: Path, tmp_path: Path) -> None:
    env = {**os.environ, "STANZA_RESOURCES_DIR": str(tmp_path / "empty")}
    out = tmp_path / "run"
    for task, opt in (("nb_parse:2", "oracles=spacy-nob,stanza:nb"),
                      ("rc:nob", "oracle=stanza:nb")):
        res = subprocess.run([sys.executable, "-m", "evalkit.cli", "run", str(tiny_model),
                              "--tasks", task, "--option", opt, "--out", str(out)],
                             capture_output=True, text=True, env=env)
        assert res.returncode == 2, res.stderr[-2000:]
        lines = [x for x in res.stderr.splitlines() if x.strip()]
        assert len(lines) == 1 and "no official Stanza 'nb' model" in lines[0], res.stderr
        gens = out / "cache" / "generations.jsonl"
        assert not gens.exists() or gens.stat().st_size == 0  # nothing generated, nothing lost
