"""Resolving models and adapters to an identity: local dirs first, then the hub.

The identity (a content hash for local checkpoints, ``id@commit`` for hub snapshots) goes into
every cache key and record, so results of two different checkpoints never mix, and a re-saved
identical checkpoint keeps its cached generations.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, replace
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
    """A resolved LoRA adapter.

    ``hash`` is its identity (sha256 of its files, or ``id@commit`` on the hub); ``label`` is
    the readable name shown in tables and boards (the user's ``NAME=`` or the shortest path
    suffix that tells this run's adapters apart). Inside backends an adapter is addressed by
    :attr:`backend_id`, derived from the hash, so two adapters can never share a slot.
    """

    name: str
    path: str
    hash: str
    rank: int
    base_model: str | None
    config: dict[str, Any]
    label: str = ""

    @property
    def backend_id(self) -> str:
        """The adapter's name inside a backend: content-derived, never a directory name."""
        return "lora-" + hashlib.sha256(self.hash.encode()).hexdigest()[:16]

    @property
    def display(self) -> str:
        """The label, or the name as given when no label was assigned."""
        return self.label or self.name

    @property
    def slug(self) -> str:
        """Filesystem-safe form of the label (run directories add a content hash to it)."""
        return _safe(self.display.strip("/")) or "adapter"


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80]


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
        check_model_dir(p, name)
        return ModelRef(name=name, path=str(p.resolve()), hash=dir_hash(p))
    if p.exists() or _looks_like_path(name) or name.count("/") > 1:
        raise ModelNotFound(f"model path {name} does not exist; pass an existing checkpoint "
                            "directory, a hub id like org/name, or 'default'")
    path, ident = _hub_snapshot(name, revision, "model")
    return ModelRef(name=name, path=path, hash=ident, revision=revision)


_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model",
                    "sentencepiece.bpe.model", "vocab.txt")


def _read_json_object(path: Path, what: str, fix: str) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadInput(f"{what}: {path.name} is not valid JSON ({type(exc).__name__}); "
                       f"{fix}") from None
    if not isinstance(obj, dict):
        raise BadInput(f"{what}: {path.name} holds a JSON {type(obj).__name__}, not an object; "
                       f"{fix}")
    return obj


def check_safetensors(path: Path, what: str, fix: str) -> None:
    """Fail with one line when a safetensors file is truncated or not safetensors at all.

    Reads only the header (8-byte length + JSON) and compares the largest tensor end offset
    with the file size, so a 10 GB checkpoint is checked in microseconds.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            raw = fh.read(8)
            n = int.from_bytes(raw, "little") if len(raw) == 8 else -1
            if 0 < n <= 100_000_000 and n > size - 8:
                raise BadInput(f"{what}: {path.name} is truncated ({size} bytes, its header "
                               f"alone needs {8 + n}); {fix}")
            if n <= 0 or n > 100_000_000:
                raise ValueError("bad header length")
            header = json.loads(fh.read(n))
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        raise BadInput(f"{what}: {path.name} is not a readable safetensors file; "
                       f"{fix}") from None
    if 8 + n + max(ends, default=0) > size:  # header fine, data cut short
        raise BadInput(f"{what}: {path.name} is truncated ({size} bytes, the header promises "
                       f"{8 + n + max(ends)}); {fix}")


def check_model_dir(p: Path, name: str) -> None:
    """Vet a local checkpoint directory before any model loads (one-line errors)."""
    what = f"model directory {name}"
    fix = "point at a complete Hugging Face checkpoint (config.json, weights, tokenizer)"
    if not (p / "config.json").is_file():
        raise ModelNotFound(f"{what} has no config.json; {fix}")
    cfg = _read_json_object(p / "config.json", what, fix)
    if not isinstance(cfg.get("model_type"), str):
        raise BadInput(f"{what}: config.json has no model_type; {fix}")
    weights = sorted(p.glob("*.safetensors")) + sorted(p.glob("*.bin"))
    index = [p / f for f in ("model.safetensors.index.json", "pytorch_model.bin.index.json")
             if (p / f).is_file()]
    if not weights and not index:
        raise BadInput(f"{what} has no weights (*.safetensors or *.bin); {fix}")
    for f in weights:
        if f.suffix == ".safetensors":
            check_safetensors(f, what, fix)
    if not any((p / f).is_file() for f in _TOKENIZER_FILES):
        raise BadInput(f"{what} has no tokenizer files ({', '.join(_TOKENIZER_FILES[:3])}, ...); "
                       "save the tokenizer next to the weights (tokenizer.save_pretrained)")


def parse_adapter_spec(spec: str) -> tuple[str | None, str]:
    """``NAME=PATH`` → (NAME, PATH); a plain path or hub id → (None, spec).

    A left side counts as a label only when it holds no path separator and the whole spec is
    not itself an existing path (directories may contain ``=``).
    """
    if "=" in spec and not Path(spec).expanduser().exists():
        label, _, path = spec.partition("=")
        if label and "/" not in label and os.sep not in label and path:
            return label.strip(), path
    return None, spec


def resolve_adapter(name: str, label: str | None = None) -> AdapterRef:
    """Resolve a LoRA adapter dir (adapter_config.json + weights) or hub id."""
    p = Path(name).expanduser()
    if p.exists() or _looks_like_path(name) or name.count("/") > 1:
        if not p.is_dir():
            raise ModelNotFound(f"adapter path {name} does not exist; pass a PEFT adapter "
                                "directory or a hub id")
        path, ident = str(p.resolve()), None
    else:
        path, ident = _hub_snapshot(name, None, "adapter")
    what = f"malformed adapter dir {name}"
    fix = "re-save the adapter with peft's save_pretrained"
    cfg_path = Path(path) / "adapter_config.json"
    if not cfg_path.is_file():
        raise BadInput(f"{what}: no adapter_config.json; {fix}")
    cfg = _read_json_object(cfg_path, what, fix)
    try:
        rank = int(cfg.get("r", 0))
    except (ValueError, TypeError):
        raise BadInput(f"{what}: adapter_config.json has a non-integer r; {fix}") from None
    weights = [Path(path) / f for f in ("adapter_model.safetensors", "adapter_model.bin")
               if (Path(path) / f).is_file()]
    if not weights:
        raise BadInput(f"{what}: no adapter_model.safetensors/.bin; {fix}")
    if weights[0].suffix == ".safetensors":
        check_safetensors(weights[0], what, fix)
    base = cfg.get("base_model_name_or_path")
    return AdapterRef(name=name, path=path, hash=ident or dir_hash(Path(path)), rank=rank,
                      base_model=base if isinstance(base, str) else None, config=cfg,
                      label=label or "")


def distinguishing_labels(names: list[str]) -> list[str]:
    """The shortest path suffixes that tell `names` apart (``round1/adapter``, ``round2/adapter``).

    Names that are equal as given stay equal (the caller refuses them).
    """
    parts = [[x for x in n.replace("\\", "/").rstrip("/").split("/") if x not in ("", ".")]
             or [n] for n in names]
    out: list[str] = []
    for i, p in enumerate(parts):
        k = 1
        while k < len(p) and any(j != i and parts[j][-k:] == p[-k:] and parts[j] != p
                                 for j in range(len(parts))):
            k += 1
        out.append("/".join(p[-k:]))
    return out


def resolve_adapters(specs: list[str]) -> list[AdapterRef]:
    """Resolve every ``--adapter`` of a run and give each a label no other adapter shares.

    Two specs with the same weights (same content hash, e.g. one reached through a symlink)
    are refused: they would be the same row twice. Labels come from ``NAME=PATH`` or else
    the shortest distinguishing path suffix; a label clash between different weights is
    refused as well.
    """
    parsed = [parse_adapter_spec(s) for s in specs]
    refs = [resolve_adapter(path, label) for label, path in parsed]
    _refuse_twice(refs, lambda r: r.hash, lambda a, b: (
        f"adapters {a.name} and {b.name} are the same weights (content hash {a.hash[:12]}); "
        "pass each adapter once"))
    auto = distinguishing_labels([r.name for r in refs])
    refs = [r if r.label else replace(r, label=_hub_or(r, a)) for r, a in zip(refs, auto)]
    _refuse_twice(refs, lambda r: r.label, lambda a, b: (
        f"adapters {a.name} and {b.name} would both be labelled {a.label!r}; name them with "
        "--adapter NAME=PATH"))
    return refs


def _hub_or(ref: AdapterRef, suffix: str) -> str:
    """Hub adapters keep their whole id as label; local ones the distinguishing suffix."""
    return ref.name if "@" in ref.hash and not Path(ref.name).expanduser().exists() else suffix


def _refuse_twice(refs: list[AdapterRef], key: Any, message: Any) -> None:
    seen: dict[str, AdapterRef] = {}
    for r in refs:
        k = key(r)
        if k in seen:
            raise BadInput(message(seen[k], r))
        seen[k] = r


@dataclass(frozen=True)
class Variant:
    """One thing evaluated: the base model, or the base model with one adapter (or merged)."""

    model: ModelRef
    adapter: AdapterRef | None
    merged: bool = False

    @property
    def backend_adapter(self) -> str | None:
        """The name requests use for this variant's adapter inside a backend (content-derived)."""
        return None if self.adapter is None or self.merged else self.adapter.backend_id

    @property
    def label(self) -> str:
        """Readable name for tables: ``model + adapter label`` (``(merged)`` when merged)."""
        text = self.model.name + (f" + {self.adapter.display}" if self.adapter else "")
        return text + (" (merged)" if self.merged else "")

    @property
    def slug(self) -> str:
        """Directory name of this variant's records: readable part + content hash."""
        tag = self.model.slug + (f"+{self.adapter.slug}" if self.adapter else "")
        if self.merged:
            tag += "-merged"
        ident = hashlib.sha256(json.dumps(
            [self.model.hash, self.adapter.hash if self.adapter else None, self.merged]
        ).encode()).hexdigest()[:10]
        return f"{tag}-{ident}"
