"""The language identifier: models loaded in the background for a run's scripts, results as
the full identifier's."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

from evalkit import langid


def test_needed_languages_share_the_scripts() -> None:
    latin = langid.needed_languages(["nob_Latn"])
    assert "nob_Latn" in latin and "eng_Latn" in latin and "dan_Latn" in latin
    assert "zho_Hans" not in latin and "arb_Arab" not in latin
    assert langid.needed_languages(["kor_Hang"]) == ["kor_Hang"]
    assert set(langid.needed_languages(["eus_Latn", "tha_Thai"])) == set(latin) | {"tha_Thai"}


def test_prepared_identifier_equals_the_plain_one(data_dir: Path) -> None:
    """A background preload changes timing only: same answers as loading on demand, mixed
    scripts included (those load on demand)."""
    texts = gzip.decompress((data_dir / "flores200/devtest/nob_Latn.devtest.gz").read_bytes()
                            ).decode().splitlines()[:40]
    texts += ["Kaixo, zer moduz zaude gaur?", "这是一个句子。", "안녕하세요 반갑습니다", "", "123"]
    code = (
        "import json, sys\n"
        "from evalkit import langid\n"
        "texts = json.loads(sys.stdin.read())\n"
        "if sys.argv[1] == 'prepare':\n"
        "    langid.prepare(['nob_Latn'])\n"
        "print(json.dumps(langid.identify(texts)))\n")
    import json

    outs = []
    for mode in ("plain", "prepare"):
        res = subprocess.run([sys.executable, "-c", code, mode], input=json.dumps(texts),
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr[-2000:]
        outs.append(json.loads(res.stdout))
    assert outs[0] == outs[1]
    assert outs[0][-5:] == ["eus_Latn", "zho_Hans", "kor_Hang", None, None]


def test_prepared_run_identifies_in_the_child_and_survives_its_death() -> None:
    """After prepare() the answers come from the child process (this process never imports
    lingua); if the child dies, identify() answers in-process, with the same answers."""
    code = (
        "import sys\n"
        "from evalkit import langid\n"
        "texts = ['Dette er en norsk setning om været i dag.',\n"
        "         'The weather is very nice today and we are going to the beach.', 'Kaixo!']\n"
        "langid.prepare(['nob_Latn'])\n"
        "a = langid.identify(texts)\n"
        "assert 'lingua' not in sys.modules, 'identified in-process'\n"
        "langid._worker.proc.kill(); langid._worker.proc.wait()\n"
        "b = langid.identify(texts)\n"
        "assert 'lingua' in sys.modules and langid._worker is None\n"
        "assert a == b == ['nob_Latn', 'eng_Latn', 'eus_Latn'], (a, b)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
