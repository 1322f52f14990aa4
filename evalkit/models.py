"""Resolving models and adapters to an identity: local dirs first, then the hub.

The identity (a content hash for local checkpoints, ``id@commit`` for hub snapshots) goes into
every cache key and record, so results of two different checkpoints never mix, and a re-saved
identical checkpoint keeps its cached generations.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.data import sha256_file
from evalkit.errors import BadInput, ModelNotFound
from evalkit.paths import cache_dir  # re-exported: tasks and backends import it from here

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json", ".model", ".txt", ".jinja", ".py")


def _file_sha(path: Path, memo: dict[str, Any]) -> str:
    st = path.stat()
    k = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    if k not in memo:
        memo[k] = sha256_file(path)
    return memo[k]


def dir_hash(path: Path) -> str:
    """sha256 over (relative name, sha256) of a checkpoint dir's files; memoised by mtime."""
    memo_path = cache_dir() / "file_hashes.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    n = len(memo)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES):
        if f.name in {"build_info.json", "evalkit_merge.json"}:
            continue  # provenance notes, not weights
        h.update(f.relative_to(path).as_posix().encode())
        h.update(_file_sha(f, memo).encode())
    if len(memo) != n:
        try:
            memo_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo_path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(memo))
            tmp.replace(memo_path)
        except OSError:
            pass
    return h.hexdigest()


@dataclass(frozen=True)
class ModelRef:
    """A resolved base model."""

    name: str  # as the user gave it
    path: str  # local directory to load from
    hash: str
    revision: str | None = None

    @property
    def slug(self) -> str:
        """Short filesystem-safe name."""
        base = Path(self.name.rstrip("/")).name or "model"
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in base)


@dataclass(frozen=True)
class AdapterRef:
    """A resolved LoRA adapter."""

    name: str
    path: str
    hash: str
    rank: int
    base_model: str | None
    config: dict[str, Any]

    @property
    def slug(self) -> str:
        """Short filesystem-safe name."""
        base = Path(self.name.rstrip("/")).name or "adapter"
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in base)


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or os.sep in name.strip("/").split("/", 1)[-1] \
        or Path(name).exists()


def _hub_snapshot(repo_id: str, revision: str | None, what: str) -> tuple[str, str]:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover
        raise ModelNotFound(f"{what} {repo_id!r} is not a local directory and huggingface_hub "
                            "is not installed") from exc
    try:
        path = snapshot_download(repo_id, revision=revision, local_files_only=True)
    except Exception:  # noqa: BLE001
        try:
            path = snapshot_download(repo_id, revision=revision)
        except Exception as exc:  # noqa: BLE001
            raise ModelNotFound(
                f"{what} {repo_id!r} is neither a local directory nor reachable on the hub "
                f"({type(exc).__name__}); pass a local checkpoint directory or check the id "
                "and network") from None
    commit = Path(path).name
    return path, f"{repo_id}@{commit}"


def resolve_model(name: str, revision: str | None = None,
                  data_dir: Path | None = None) -> ModelRef:
    """Resolve a named model (``default``, ...: :mod:`evalkit.named_models`), a local dir, or
    a hub id. ``data_dir`` is the mirror a named model may need to be built from."""
    from evalkit.named_models import resolve_named

    named = resolve_named(name, data_dir)
    if named is not None:
        return ModelRef(name=name, path=str(named), hash=dir_hash(named))
    p = Path(name).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise ModelNotFound(f"model directory {name} has no config.json; point at a "
                                "Hugging Face checkpoint directory (config.json + weights)")
        return ModelRef(name=name, path=str(p.resolve()), hash=dir_hash(p))
    if p.exists() or _looks_like_path(name) or name.count("/") > 1:
        raise ModelNotFound(f"model path {name} does not exist; pass an existing checkpoint "
                            "directory, a hub id like org/name, or 'default'")
    path, ident = _hub_snapshot(name, revision, "model")
    return ModelRef(name=name, path=path, hash=ident, revision=revision)


def resolve_adapter(name: str) -> AdapterRef:
    """Resolve a LoRA adapter dir (adapter_config.json + weights) or hub id."""
    p = Path(name).expanduser()
    if p.exists() or _looks_like_path(name) or name.count("/") > 1:
        if not p.is_dir():
            raise ModelNotFound(f"adapter path {name} does not exist; pass a PEFT adapter "
                                "directory or a hub id")
        path, ident = str(p.resolve()), None
    else:
        path, ident = _hub_snapshot(name, None, "adapter")
    cfg_path = Path(path) / "adapter_config.json"
    if not cfg_path.is_file():
        raise BadInput(f"malformed adapter dir {name}: no adapter_config.json; save adapters "
                       "with peft's save_pretrained")
    try:
        cfg = json.loads(cfg_path.read_text())
        rank = int(cfg.get("r", 0))
    except (ValueError, TypeError) as exc:
        raise BadInput(f"malformed adapter dir {name}: adapter_config.json is not valid "
                       f"({exc}); re-save the adapter with peft") from None
    if not any((Path(path) / f).is_file() for f in
               ("adapter_model.safetensors", "adapter_model.bin")):
        raise BadInput(f"malformed adapter dir {name}: no adapter_model.safetensors/.bin; "
                       "re-save the adapter with peft")
    return AdapterRef(name=name, path=path, hash=ident or dir_hash(Path(path)), rank=rank,
                      base_model=cfg.get("base_model_name_or_path"), config=cfg)
