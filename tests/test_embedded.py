"""The embedded default model: a tiny build (few steps, data subset) and its guarantees.

The full recipe is never trained here (the shipped checkpoint is checked against it, see
tests/test_embedded_shipped.py); bench/bench_embedded.py trains it.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit import embedded as E
from evalkit.data import DataLayer
from evalkit.embedded.corpus import squash
from evalkit.errors import EvalkitError

TINY = dict(steps=3, limit=60, vocab_size=600, batch_size=2, seq_len=64)

NOB = "Honnørordene er «dristig formspråk» – og Øyvind så på æblegrøden kl. 21:30!"
EUS = "Familian, aldiz, ez da inolako hazkunderik antzematen euskararen erabileran."


@pytest.fixture(scope="module")
def data_dir() -> Path:
    try:
        return E.resolve_data_dir()
    except EvalkitError as exc:  # pragma: no cover - a checkout without the mirror
        pytest.skip(str(exc))


BUILD_LOG = io.StringIO()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, data_dir) -> Path:
    cache = tmp_path_factory.mktemp("cache")
    stages: list[str] = []
    path = E.ensure_default_model(
        data_dir, cache_dir=cache, progress=lambda stage, done, total: stages.append(stage),
        log=E.BuildLog(BUILD_LOG, every=0), **TINY
    )
    assert {"data", "tokenizer", "train", "eval", "save"} <= set(stages)
    return path


def test_build_prints_steps_loss_and_eta(tiny_model: Path):
    lines = BUILD_LOG.getvalue().splitlines()
    steps = [ln for ln in lines if " train step " in ln]
    assert len(steps) == TINY["steps"]
    assert re.search(r"train step 3/3 · loss \d+\.\d{3} · [\d,]+ tok/s · elapsed \dm\d\ds · "
                     r"ETA 0m00s", steps[-1]), steps[-1]
    assert re.search(r"step 1/3 .* ETA \dm\d\ds", steps[0])
    assert any("held-out perplexity" in ln for ln in lines)
    assert all(ln.startswith("[default model] ") for ln in lines)


def test_import_is_light():
    code = ("import sys, evalkit.embedded; "
            "print(any(m in sys.modules for m in ('torch','transformers','tokenizers')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cache_layout_and_build_info(tiny_model: Path):
    assert tiny_model.name == f"default-v{E.RECIPE_VERSION}"
    assert tiny_model.parent.name == "models"
    for name in ("config.json", "model.safetensors", "generation_config.json",
                 "tokenizer.json", "tokenizer_config.json", "build_info.json"):
        assert (tiny_model / name).is_file(), name
    info = json.loads((tiny_model / "build_info.json").read_text())
    assert info["training"]["steps"] == 3 and info["training"]["seed"] == E.DEFAULT_SEED
    assert info["training"]["tokens_seen"] == 3 * 2 * 64
    assert info["val"]["ppl"] > 1 and info["test"]["ppl"] > 1
    files = info["data_files"]
    assert any(k.startswith("ndt_nob/") for k in files)
    assert all(len(v) == 64 for v in files.values())
    # evaluation sets are never read for training
    assert not any("devtest" in k or k.startswith("ntrex") for k in files)
    assert {"torch", "transformers", "tokenizers"} <= set(info["versions"])
    # no temp dirs left beside the model
    assert [p.name for p in tiny_model.parent.iterdir() if p.is_dir()] == [tiny_model.name]


def test_second_call_uses_cache(tiny_model: Path, data_dir):
    before = (tiny_model / "model.safetensors").stat().st_mtime_ns
    again = E.ensure_default_model(data_dir, cache_dir=tiny_model.parent.parent, **TINY)
    assert again == tiny_model
    assert (tiny_model / "model.safetensors").stat().st_mtime_ns == before


def test_checkpoint_loads_and_tokenizer(tiny_model: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    cfg = model.config
    assert cfg.model_type == "llama"
    assert cfg.hidden_size // cfg.num_attention_heads >= 32
    assert getattr(cfg, "head_dim", 64) >= 32
    assert cfg.tie_word_embeddings
    ids = {tok.bos_token_id, tok.eos_token_id, tok.pad_token_id, tok.unk_token_id}
    assert None not in ids and len(ids) == 4
    assert cfg.bos_token_id == tok.bos_token_id and cfg.eos_token_id == tok.eos_token_id
    assert cfg.pad_token_id == tok.pad_token_id
    for text in (NOB, EUS, "English sentence: Hello.\nNorwegian Bokmål sentence: Hei."):
        enc = tok(text)["input_ids"]
        assert enc[0] == tok.bos_token_id
        assert tok.decode(enc, skip_special_tokens=True) == text
        assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    with torch.no_grad():
        out = model.generate(**tok(["Jeg ser"], return_tensors="pt"), max_new_tokens=4,
                             do_sample=False)
    assert out.shape[1] <= len(tok("Jeg ser")["input_ids"]) + 4
    gen = model.generation_config
    eos = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
    assert tok.eos_token_id in eos and tok.convert_tokens_to_ids(E.IM_END) in eos


def test_chat_template(tiny_model: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    msgs = [{"role": "user", "content": "English sentence: Hello.\nNorwegian Bokmål sentence:"}]
    text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<s><|im_start|>user\nEnglish sentence: Hello.\nNorwegian Bokmål sentence:<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    assert ids[1] == tok.convert_tokens_to_ids(E.IM_START)
    assert tok.convert_tokens_to_ids(E.IM_END) in ids


def test_interrupted_build_leaves_no_model(tmp_path: Path, data_dir):
    def boom(stage: str, done: int, total: int) -> None:
        if stage == "train" and done == 2:
            raise KeyboardInterrupt("simulated kill")

    with pytest.raises(KeyboardInterrupt):
        E.ensure_default_model(data_dir, cache_dir=tmp_path, progress=boom, quiet=True, **TINY)
    models = tmp_path / "models"
    assert not E.default_model_dir(tmp_path).exists()
    assert [p for p in models.iterdir() if p.is_dir()] == []


def test_explicit_out_dir_refuses_to_overwrite(tmp_path: Path, data_dir):
    out = tmp_path / "m"
    out.mkdir()
    with pytest.raises(EvalkitError):
        E.build_default_model(out, data_dir, **TINY)


def test_missing_data_is_a_clear_error(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("EVALKIT_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(EvalkitError, match="EVALKIT_DATA_DIR"):
        E.resolve_data_dir()
    with pytest.raises(EvalkitError, match="--data-dir"):
        E.ensure_default_model(cache_dir=tmp_path / "cache", quiet=True, **TINY)
    # an explicit --data-dir wins over the environment
    with pytest.raises(EvalkitError, match="nowhere-else"):
        E.ensure_default_model(tmp_path / "nowhere-else", cache_dir=tmp_path / "cache",
                               quiet=True, **TINY)
    assert not (tmp_path / "cache" / "models" / f"default-v{E.RECIPE_VERSION}").exists()


def test_corpus_holds_out_evaluation_text(data_dir):
    c = E.load_corpus(data_dir)
    train = {squash(t) for _, t in c.docs}
    held = [squash(t) for t in c.val_texts + c.test_texts]
    assert not train.intersection(held)
    assert c.stats["ndt_sentences"] > 10_000 and c.stats["ndt_dropped_heldout"] > 4_000
    # Bokmål stays the largest monolingual share; no FLORES devtest / NTREX sentence appears
    assert c.stats["ndt_sentences"] > c.stats["eus_sentences"]
    blob = "\n".join(t for _, t in c.docs) + "\n".join(a for _, a in c.chat_docs)
    devtest = DataLayer(data_dir).read_lines("flores200/devtest/nob_Latn.devtest")[:50]
    assert not any(line in blob for line in devtest if len(line) > 40)
    sources = {s for s, _ in c.docs}
    assert sources == {"ndt_nob", "ud_eus_train", "flores_dev", "tatoeba"}


def test_flores_prompt_format():
    assert E.flores_prompt("eng_Latn", "nob_Latn", "Hi.", "Hei.") == (
        "English sentence: Hi.\nNorwegian Bokmål sentence: Hei."
    )
    assert E.flores_prompt("eus_Latn", "eng_Latn", "Kaixo.") == (
        "Basque sentence: Kaixo.\nEnglish sentence:"
    )


def test_detokenize():
    assert E.detokenize(["Han", "sa", ":", "«", "Hei", "»", "(", "ja", ")", "."]) == (
        "Han sa: «Hei» (ja)."
    )
    assert E.detokenize(["Det", "er", '"', "bra", '"', ",", "og", "/", "eller", "|"]) == (
        'Det er "bra", og/eller'
    )


@pytest.mark.parametrize("preset,expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_every_entry_point_waits_passively(preset, expected):
    """The OpenMP setting is made when evalkit is imported (before torch), for the CLI too; a
    value the user set is kept."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if preset:
        env["OMP_WAIT_POLICY"] = preset
    code = ("import os, sys, evalkit.cli; assert 'torch' not in sys.modules; "
            "print(os.environ['OMP_WAIT_POLICY'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    assert out.stdout.strip() == expected
