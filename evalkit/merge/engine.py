"""The streamed merge: validate every input, then write the checkpoint tensor by tensor.

Memory: tensors are processed in row chunks of at most ``chunk_bytes`` (fp32) per model, read
with positioned reads (no mmap) and written straight into a shard whose header was written
first. At any moment the process holds one chunk of the base, one accumulator, one chunk of the
model being added and one output chunk — never a whole model, and never more than one tensor of
each model (less, for tensors larger than a chunk). Row chunking does not change any value:
the arithmetic is element-wise.

Atomicity: everything is written into a hidden temporary sibling of ``out`` and renamed into
place only after the last byte and the record are on disk; any failure (bad input found late,
disk full, Ctrl-C) removes the temporary directory, so ``out`` is either absent, the previous
checkpoint (with ``force``), or complete.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.errors import BadInput, EvalkitError
from evalkit.merge.checks import (
    check_configs,
    check_tensors,
    check_tokenizers,
    is_tied,
    load_config,
)
from evalkit.merge.recipes import MergeSpec
from evalkit.merge.st_io import (
    CODE_OF,
    DTYPES,
    FLOAT_CODES,
    INDEX_NAME,
    OutTensor,
    ShardWriter,
    TensorInfo,
    TensorReader,
    index_checkpoint,
    plan_shards,
    shard_names,
)

if TYPE_CHECKING:
    import torch

RECORD_NAME = "evalkit_merge.json"
DEFAULT_SHARD_BYTES = 5 * 10**9  # transformers' save_pretrained default ("5GB")
DEFAULT_CHUNK_BYTES = 64 << 20
DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")
# files copied from the tokenizer source (weights, model cards and provenance notes are not)
_SIDE_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "added_tokens.json", "tokenizer.model", "vocab.json",
               "merges.txt", "vocab.txt", "spiece.model", "chat_template.jinja",
               "chat_template.json", "preprocessor_config.json")

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class MergeResult:
    """Where the checkpoint went and what ``evalkit_merge.json`` says about it."""

    path: Path
    record: dict[str, Any]


def _resolve(role: str, name: str) -> tuple[Path, str]:
    from evalkit.models import resolve_model

    try:
        ref = resolve_model(name)
    except EvalkitError as exc:
        raise type(exc)(f"--{role}: {exc}") from None
    return Path(ref.path), ref.hash


def _check_out(out: Path, dirs: dict[str, Path], force: bool) -> None:
    resolved = out.resolve()
    for role, d in dirs.items():
        d = d.resolve()
        if resolved == d or d in resolved.parents or resolved in d.parents:
            raise BadInput(f"--out {out} overlaps the {role} model directory {d}; write the "
                           "merge somewhere else")
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {out} is a file, not a folder; choose a folder for the merged "
                       "checkpoint")
    if out.exists() and not force:
        raise BadInput(f"--out {out} already exists; pass --force to replace it or choose "
                       "another directory")


def _out_code(info: TensorInfo, dtype: str) -> str:
    if dtype == "auto" or info.dtype not in FLOAT_CODES:
        return info.dtype
    return CODE_OF[dtype]


def _row_chunks(info: TensorInfo, chunk_bytes: int) -> list[tuple[int, int]]:
    rows = info.shape[0] if info.shape else 1
    per_row = max(1, info.numel // max(rows, 1)) * 4  # fp32 working copy
    step = max(1, chunk_bytes // per_row)
    return [(r, min(r + step, rows)) for r in range(0, rows, step)]


def combine(spec: MergeSpec, infos: dict[str, TensorInfo], reader: TensorReader, row0: int,
            row1: int, out_dtype: torch.dtype) -> torch.Tensor:
    """``W_anchor + Σ w_i·(W_i − W_base)`` for rows ``[row0, row1)`` of one tensor.

    Float tensors are computed in float32 (float64 if any input is float64), deltas summed in
    spec order, then added to the anchor and cast to `out_dtype`. Non-float tensors (buffers,
    rarely stored) are copied from the anchor unchanged.
    """
    import torch

    anchor = infos[spec.anchor]
    if anchor.dtype not in FLOAT_CODES:
        return reader.read(anchor, row0, row1)
    cdt = torch.float64 if any(i.dtype == "F64" for i in infos.values()) else torch.float32
    base = reader.read(infos[spec.base], row0, row1).to(cdt)
    acc: torch.Tensor | None = None
    for role, w in spec.deltas:
        d = reader.read(infos[role], row0, row1).to(cdt)  # a fresh buffer: safe to modify
        d.sub_(base).mul_(w)
        acc = d if acc is None else acc.add_(d)
    if spec.anchor == spec.base:
        out = base + acc if acc is not None else base
    else:
        del base
        out = reader.read(anchor, row0, row1).to(cdt)
        if acc is not None:
            out.add_(acc)
    return out.to(out_dtype)


def _write_side_files(src: Path, dst: Path, out_dtype_name: str | None) -> list[str]:
    copied = []
    for name in _SIDE_FILES:
        p = src / name
        if not p.is_file():
            continue
        if name == "config.json" and out_dtype_name:
            cfg = json.loads(p.read_text(encoding="utf-8"))
            keys = [k for k in ("torch_dtype", "dtype") if k in cfg] or ["torch_dtype"]
            for k in keys:
                cfg[k] = out_dtype_name
            (dst / name).write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n",
                                    encoding="utf-8")
        else:
            shutil.copyfile(p, dst / name)
        copied.append(name)
    for p in sorted(src.glob("*.py")):  # remote-code models reference these from config.json
        shutil.copyfile(p, dst / p.name)
        copied.append(p.name)
    return copied


def _install(tmp: Path, out: Path) -> None:
    if out.exists():  # --force: swap in, then drop the old one
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, out)


def merge(spec: MergeSpec, out: Path | str, *, dtype: str = "auto", force: bool = False,
          allow_config_diff: bool = False, shard_bytes: int = DEFAULT_SHARD_BYTES,
          chunk_bytes: int = DEFAULT_CHUNK_BYTES, progress: Progress | None = None
          ) -> MergeResult:
    """Merge per `spec` into the HF checkpoint directory `out`; see the module docstring."""
    import torch

    t0 = time.perf_counter()
    if dtype not in DTYPE_CHOICES:
        raise BadInput(f"--dtype must be one of {', '.join(DTYPE_CHOICES)}, got {dtype!r}")
    out = Path(out).expanduser()
    resolved = {role: _resolve(role, name) for role, name in spec.inputs.items()}
    dirs = {role: p for role, (p, _) in resolved.items()}
    _check_out(out, dirs, force)
    configs = {role: load_config(d, role) for role, d in dirs.items()}
    tolerated = check_configs(configs, allow_config_diff)
    by_dir: dict[Path, dict[str, TensorInfo]] = {}
    tensors: dict[str, dict[str, TensorInfo]] = {}
    for role, d in dirs.items():  # a checkpoint named in two roles is indexed once
        if d not in by_dir:
            by_dir[d] = index_checkpoint(d, role)
        tensors[role] = by_dir[d]
    tied = is_tied(configs, tensors)
    names = check_tensors(tensors, tied)
    check_tokenizers(dirs)

    anchor = tensors[spec.anchor]
    plan = [OutTensor(n, _out_code(anchor[n], dtype), anchor[n].shape) for n in names]
    shards = plan_shards(plan, shard_bytes)
    files = shard_names(len(shards))
    total = sum(t.nbytes for t in plan)
    float_bytes: dict[str, int] = {}
    for t in plan:
        if t.dtype in FLOAT_CODES:
            float_bytes[t.dtype] = float_bytes.get(t.dtype, 0) + t.nbytes
    main_dtype = DTYPES[max(float_bytes, key=float_bytes.__getitem__)][0] if float_bytes else None

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the checkpoint is an ordinary directory
    reader = TensorReader()
    try:
        done = 0
        for fname, shard in zip(files, shards):
            writer = ShardWriter(tmp / fname, shard)
            for t in shard:
                infos = {role: tensors[role][t.name] for role in dirs}
                tdt = getattr(torch, DTYPES[t.dtype][0])
                for row0, row1 in _row_chunks(infos[spec.anchor], chunk_bytes):
                    writer.write(combine(spec, infos, reader, row0, row1, tdt))
                done += t.nbytes
                if progress:
                    progress("merging", done, total)
            writer.close()
        if len(files) > 1:
            index = {"metadata": {"total_size": total},
                     "weight_map": {t.name: f for f, s in zip(files, shards) for t in s}}
            (tmp / INDEX_NAME).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        copied = _write_side_files(dirs[spec.tokenizer_from], tmp, main_dtype)
        record = {
            "schema_version": 1,
            "recipe": spec.recipe,
            "formula": spec.formula(),
            "alpha": spec.alpha,
            "anchor": spec.anchor,
            "base": spec.base,
            "deltas": [{"role": r, "weight": w} for r, w in spec.deltas],
            "inputs": {role: {"name": spec.inputs[role], "path": str(dirs[role]), "hash": h}
                       for role, (_, h) in resolved.items()},
            "tokenizer_from": spec.tokenizer_from,
            "config_from": spec.tokenizer_from,
            "copied_files": copied,
            "dtype": dtype,
            "compute_dtype": "float32 (float64 if an input is float64)",
            "tied_embeddings": tied,
            "config_differences_allowed": tolerated,
            "n_tensors": len(plan),
            "n_parameters": sum(math.prod(t.shape) for t in plan),
            "weight_files": files,
            "weight_bytes": total,
            "extra": spec.extra,
            "evalkit_version": _version(),
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "seconds": round(time.perf_counter() - t0, 3),
        }
        (tmp / RECORD_NAME).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n",
                                       encoding="utf-8")
        _install(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        reader.close()
    return MergeResult(out, record)


def read_record(path: Path) -> dict[str, Any] | None:
    """``evalkit_merge.json`` of a merged checkpoint, or None."""
    p = Path(path) / RECORD_NAME
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("evalkit")
    except PackageNotFoundError:
        return "unknown"
