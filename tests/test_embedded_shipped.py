"""The shipped default model (evalkit/embedded/model/) against the recipe's record.

The manifest records the recipe fingerprint, the training data's file hashes, the assembled
corpus digest and every shipped file's sha256. If any of them drifts (a recipe constant, the
corpus code, the mirror, a weight file) these tests fail until the model is rebuilt with
``python -m evalkit.embedded --ship``. tests/test_embedded.py proves the recipe still runs (a
shortened build).
"""

from __future__ import annotations

import functools
import io
import json
import shutil
from pathlib import Path

import pytest

from evalkit import embedded as E
from evalkit.data import sha256_file
from evalkit.embedded import build as B
from evalkit.embedded import recipe as R

SHIP = E.SHIPPED_DIR
MANIFEST = json.loads((SHIP / "manifest.json").read_text())
TINY = dict(steps=2, limit=40, vocab_size=500, batch_size=2, seq_len=32)


def test_shipped_files_match_the_record() -> None:
    files = MANIFEST["files"]
    on_disk = {p.name for p in SHIP.iterdir() if p.is_file()} - {"manifest.json", "MODEL_CARD.md"}
    assert set(files) == on_disk
    for name, sha in files.items():
        assert sha256_file(SHIP / name) == sha, f"{name} differs from manifest.json"
    assert {"model.safetensors", "config.json", "tokenizer.json", "build_info.json",
            "generation_config.json"} <= set(files)
    assert B.shipped_problem() is None


def test_shipped_model_is_the_current_recipe() -> None:
    info = json.loads((SHIP / "build_info.json").read_text())
    assert MANIFEST["recipe_fingerprint"] == R.fingerprint() == info["recipe_fingerprint"]
    assert MANIFEST["recipe_version"] == R.RECIPE_VERSION
    assert info["recipe_exact"] and info["training"]["steps"] == R.DEFAULT_STEPS
    assert info["recipe"] == json.loads(json.dumps(R.recipe()))


def test_shipped_model_was_trained_on_this_mirror(data_dir: Path) -> None:
    corpus = E.load_corpus(data_dir)
    assert corpus.files == MANIFEST["data_files"]
    assert corpus.digest() == MANIFEST["corpus_digest"]


def test_weights_are_fp16_and_load_as_exact_fp32() -> None:
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    stored = load_file(str(SHIP / "model.safetensors"))
    assert {t.dtype for t in stored.values()} == {torch.float16}
    assert json.loads((SHIP / "config.json").read_text())["dtype"] == "float32"
    for dtype in (None, "auto"):
        kw = {} if dtype is None else {"dtype": dtype}
        model = AutoModelForCausalLM.from_pretrained(SHIP, **kw)
        sd = model.state_dict()
        assert all(torch.equal(sd[k], v.float()) for k, v in stored.items())
        assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert MANIFEST["weights"] == {"stored": "float16", "loaded_as": "float32",
                                   "source_sha256": MANIFEST["weights"]["source_sha256"]}


def test_default_is_the_shipped_model_without_a_build(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from evalkit.models import resolve_model

    monkeypatch.setenv("EVALKIT_CACHE", str(tmp_path))
    monkeypatch.setenv("EVALKIT_DATA_DIR", str(tmp_path / "no-mirror"))  # never read
    assert E.ensure_default_model() == SHIP
    ref = resolve_model("default", data_dir=tmp_path / "no-mirror")
    assert Path(ref.path) == SHIP and ref.name == "default"
    assert not (tmp_path / "models").exists()


def test_a_stale_or_damaged_shipped_model_is_rebuilt(tmp_path: Path, data_dir: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "shipped"
    shutil.copytree(SHIP, copy)
    assert B.shipped_problem(copy) is None
    tok = copy / "tokenizer.json"
    tok.write_bytes(tok.read_bytes().replace(b'"<pad>"', b'"<PAD>"', 1))
    assert "tokenizer.json differs" in B.shipped_problem(copy)
    (copy / "config.json").unlink()
    assert "config.json is missing" in B.shipped_problem(copy)
    # a recipe change makes the shipped model stale: ensure builds into the cache, and says why
    monkeypatch.setattr(R, "LEARNING_RATE", R.LEARNING_RATE * 2)
    assert B.shipped_problem() == "it was built with another recipe"
    monkeypatch.setattr(B, "build_default_model",
                        functools.partial(B.build_default_model, **TINY))
    log = io.StringIO()
    path = E.ensure_default_model(data_dir, cache_dir=tmp_path / "cache",
                                  log=E.BuildLog(log, every=0))
    assert path == E.default_model_dir(tmp_path / "cache") != SHIP
    assert "cannot be used (it was built with another recipe)" in log.getvalue()
    assert json.loads((path / "build_info.json").read_text())["recipe_fingerprint"] == (
        R.fingerprint())
