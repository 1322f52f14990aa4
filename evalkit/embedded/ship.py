"""Writing a recipe build into the package as the shipped ``default`` checkpoint.

``python -m evalkit.embedded --ship`` builds the recipe (or takes ``--from DIR``, an existing
build of the current recipe), stores the weights as float16 safetensors (half the size; the
config keeps ``float32``, so loaders upcast them, exactly, to fp32), copies the tokenizer and
configs, and writes ``manifest.json``: the recipe fingerprint, the training data's file hashes
and corpus digest, and the sha256 of every shipped file. ``MODEL_CARD.md`` is kept as written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from evalkit.data import sha256_file
from evalkit.embedded import recipe as R
from evalkit.embedded.build import MANIFEST, SHIPPED_DIR, DefaultModelError
from evalkit.paths import atomic_dir

_COPY = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
         "chat_template.jinja", "special_tokens_map.json", "build_info.json")
_KEEP = ("MODEL_CARD.md",)


def ship(build_dir: Path, dest: Path = SHIPPED_DIR) -> dict[str, Any]:
    """Write `build_dir` (a full recipe build) to `dest` with fp16 weights; returns the manifest."""
    from safetensors.torch import load_file, save_file

    info = json.loads((build_dir / "build_info.json").read_text())
    if info.get("recipe_fingerprint") != R.fingerprint() or not info.get("recipe_exact"):
        raise DefaultModelError(f"{build_dir} is not a full build of the current recipe "
                                "(recipe_fingerprint / recipe_exact in its build_info.json); "
                                "build it with python -m evalkit.embedded")
    with atomic_dir(dest) as tmp:
        for name in _COPY:
            if (build_dir / name).is_file():
                shutil.copy2(build_dir / name, tmp / name)
        for name in _KEEP:
            if (dest / name).is_file():
                shutil.copy2(dest / name, tmp / name)
        tensors = load_file(str(build_dir / "model.safetensors"))
        save_file({k: v.half().contiguous() for k, v in tensors.items()},
                  str(tmp / "model.safetensors"), metadata={"format": "pt"})
        files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir())
                 if p.is_file() and p.name not in _KEEP}
        manifest = {
            "recipe_version": R.RECIPE_VERSION,
            "recipe_fingerprint": R.fingerprint(),
            "corpus_digest": info["corpus_digest"],
            "data_files": info["data_files"],
            "weights": {"stored": "float16", "loaded_as": "float32",
                        "source_sha256": sha256_file(build_dir / "model.safetensors")},
            "files": files,
            "rebuild": "python -m evalkit.embedded --ship",
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest
