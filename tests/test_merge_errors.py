"""Bad merge inputs: one-line errors naming what differs, exit 2, no half-written checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from evalkit.errors import BadInput, EvalkitError, ModelNotFound  # noqa: E402
from evalkit.merge import (
    diploma,  # noqa: E402
    engine,  # noqa: E402
)
from evalkit.merge.engine import merge  # noqa: E402


@pytest.fixture(scope="module")
def fam(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from evalkit.testing import build_tiny_model

    root = tmp_path_factory.mktemp("fam")
    models = {r: build_tiny_model(root / r, seed=s)
              for r, s in (("base", 0), ("cpt", 1), ("instruct", 2))}
    models["wide"] = build_tiny_model(root / "wide", hidden=96, heads=3, seed=3)
    return models


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _leftovers(out: Path) -> list[Path]:
    return [out] if out.exists() else list(out.parent.glob(f".{out.name}.tmp-*"))


def _fails(fam: dict[str, Path], out: Path, exc: type[EvalkitError], *needles: str,
           **roles: Path) -> str:
    paths = {r: str(fam[r]) for r in ("base", "cpt", "instruct")}
    paths.update({r: str(p) for r, p in roles.items()})
    with pytest.raises(exc) as info:
        merge(diploma(paths["base"], paths["cpt"], paths["instruct"], 1.0), out)
    msg = str(info.value)
    assert "\n" not in msg
    for n in needles:
        assert n in msg, msg
    assert _leftovers(out) == []
    return msg


def test_missing_model_dir(fam: dict[str, Path], tmp_path: Path) -> None:
    _fails(fam, tmp_path / "o", ModelNotFound, "--cpt", "does not exist", cpt=tmp_path / "nope")


def test_no_weights_and_bin_only(fam: dict[str, Path], tmp_path: Path) -> None:
    d = _copy(fam["cpt"], tmp_path / "cpt")
    (d / "model.safetensors").rename(d / "pytorch_model.bin")
    _fails(fam, tmp_path / "o", BadInput, "cpt:", "no *.safetensors", "pytorch_model.bin", cpt=d)


def test_missing_shard_and_truncated_file(fam: dict[str, Path], tmp_path: Path) -> None:
    sharded = tmp_path / "sharded"
    merge(diploma(str(fam["base"]), str(fam["base"]), str(fam["base"]), 0.0), sharded,
          shard_bytes=100_000)
    next(sharded.glob("model-00002-of-*.safetensors")).unlink()
    _fails(fam, tmp_path / "o", BadInput, "instruct:", "shard", "missing", instruct=sharded)
    cut = _copy(fam["base"], tmp_path / "cut")
    with open(cut / "model.safetensors", "r+b") as fh:
        fh.truncate(os.path.getsize(cut / "model.safetensors") - 1000)
    _fails(fam, tmp_path / "o", BadInput, "truncated", base=cut)


def test_different_sizes(fam: dict[str, Path], tmp_path: Path) -> None:
    _fails(fam, tmp_path / "o", BadInput, "configs differ", "hidden_size", "instruct=96",
           "--allow-config-diff", instruct=fam["wide"])
    with pytest.raises(BadInput) as info:
        merge(diploma(str(fam["base"]), str(fam["cpt"]), str(fam["wide"]), 1.0),
              tmp_path / "o", allow_config_diff=True)
    assert "shape of model.embed_tokens.weight differs" in str(info.value)
    assert "instruct=[" in str(info.value) and ", 96]" in str(info.value)
    assert _leftovers(tmp_path / "o") == []


def test_same_config_different_tensor_shape(fam: dict[str, Path], tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    d = _copy(fam["cpt"], tmp_path / "cpt")
    sd = load_file(d / "model.safetensors")
    k = "model.layers.0.mlp.up_proj.weight"
    sd[k] = sd[k][:-1].contiguous()
    save_file(sd, d / "model.safetensors", metadata={"format": "pt"})
    _fails(fam, tmp_path / "o", BadInput, f"shape of {k} differs", "cpt=[127, 64]", cpt=d)


def test_different_vocabulary(fam: dict[str, Path], tmp_path: Path) -> None:
    d = _copy(fam["instruct"], tmp_path / "instruct")
    doc = json.loads((d / "tokenizer.json").read_text())
    vocab = doc["model"]["vocab"]
    a, b = sorted(vocab, key=vocab.get)[300:302]
    vocab[a], vocab[b] = vocab[b], vocab[a]
    (d / "tokenizer.json").write_text(json.dumps(doc))
    _fails(fam, tmp_path / "o", BadInput, "tokenizer vocabularies differ", "in base, 30",
           instruct=d)
    (d / "tokenizer.json").unlink()
    _fails(fam, tmp_path / "o", BadInput, "instruct", "no tokenizer files", instruct=d)


def test_different_tie_layout(fam: dict[str, Path], tmp_path: Path) -> None:
    d = _copy(fam["cpt"], tmp_path / "cpt")
    cfg = json.loads((d / "config.json").read_text())
    cfg["tie_word_embeddings"] = False
    (d / "config.json").write_text(json.dumps(cfg))
    _fails(fam, tmp_path / "o", BadInput, "tie_word_embeddings", "cpt=false", cpt=d)


def test_existing_out_and_failure_mid_write(fam: dict[str, Path], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "o"
    spec = diploma(str(fam["base"]), str(fam["cpt"]), str(fam["instruct"]), 0.5)
    merge(spec, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(BadInput, match="already exists; pass --force"):
        merge(spec, out)
    calls = {"n": 0}
    real = engine.combine

    def flaky(*a: object, **k: object) -> object:
        calls["n"] += 1
        if calls["n"] > 5:
            raise OSError("disk full (simulated)")
        return real(*a, **k)

    monkeypatch.setattr(engine, "combine", flaky)
    with pytest.raises(OSError):
        merge(diploma(str(fam["base"]), str(fam["cpt"]), str(fam["instruct"]), 2.0), out,
              force=True)
    # the previous checkpoint is untouched and no temporary directory is left behind
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert list(tmp_path.glob(".o.tmp-*")) == [] and list(tmp_path.glob(".o.old-*")) == []
    monkeypatch.setattr(engine, "combine", real)
    res = merge(diploma(str(fam["base"]), str(fam["cpt"]), str(fam["instruct"]), 2.0), out,
                force=True)
    assert res.record["alpha"] == 2.0 and list(tmp_path.glob(".o.*")) == []


def test_out_inside_an_input_is_refused(fam: dict[str, Path], tmp_path: Path) -> None:
    _fails(fam, fam["cpt"] / "merged", BadInput, "overlaps the cpt model directory")


@pytest.mark.parametrize("case", ["vocab", "missing"])
def test_cli_one_line_exit_2(fam: dict[str, Path], tmp_path: Path, case: str) -> None:
    cpt = str(tmp_path / "absent") if case == "missing" else str(fam["cpt"])
    instruct = fam["instruct"]
    if case == "vocab":
        instruct = _copy(fam["instruct"], tmp_path / "instruct")
        doc = json.loads((instruct / "tokenizer.json").read_text())
        doc["added_tokens"].append({**doc["added_tokens"][-1], "id": 9999, "content": "<x>"})
        (instruct / "tokenizer.json").write_text(json.dumps(doc))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "evalkit.cli", "merge", "diploma", "--base",
                           str(fam["base"]), "--cpt", cpt, "--instruct", str(instruct),
                           "--alpha", "0.5", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("evalkit: error:"), proc.stderr
    assert ("vocabularies differ" if case == "vocab" else "--cpt") in lines[0]
    assert _leftovers(out) == []


def test_cli_rejects_wrong_roles(tmp_path: Path) -> None:
    from evalkit.merge.cli import parse_size, spec_factory

    with pytest.raises(BadInput, match="missing --cpt"):
        spec_factory("diploma", "b", None, "i", None, [], [], None)
    with pytest.raises(BadInput, match="--lang not used by diploma"):
        spec_factory("diploma", "b", "c", "i", "l", [], [], None)
    with pytest.raises(BadInput, match="did you mean diploma"):
        spec_factory("diplom", "b", "c", "i", None, [], [], None)
    with pytest.raises(BadInput, match="2 --model but 1 --weight"):
        spec_factory("task-arithmetic", "b", None, None, None, ["m1", "m2"], [0.5], None)
    assert parse_size("5GB") == 5 * 10**9 and parse_size("2GiB") == 2 << 30
    assert parse_size("1000") == 1000
