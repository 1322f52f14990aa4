"""Streamed safetensors I/O: read any row range of one tensor, write shards tensor by tensor.

The safetensors format is an 8-byte little-endian header length, a JSON header
``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`` and the raw
row-major bytes. Because every offset is known from the header, a merge can

* read a *row range* of a tensor with one positioned read (no mmap: the resident memory of the
  process is then what it really holds, which is what the benchmark measures), and
* write the output header first (shapes and dtypes are known before any arithmetic) and then
  append each tensor's bytes as they are computed — no shard is ever assembled in memory.

torch is imported inside functions only.
"""

from __future__ import annotations

import io
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.errors import BadInput

if TYPE_CHECKING:
    import torch

# safetensors dtype code → (torch dtype name, bytes per element)
DTYPES: dict[str, tuple[str, int]] = {
    "F64": ("float64", 8), "F32": ("float32", 4), "F16": ("float16", 2),
    "BF16": ("bfloat16", 2), "F8_E4M3": ("float8_e4m3fn", 1), "F8_E5M2": ("float8_e5m2", 1),
    "I64": ("int64", 8), "I32": ("int32", 4), "I16": ("int16", 2), "I8": ("int8", 1),
    "U8": ("uint8", 1), "BOOL": ("bool", 1),
}
FLOAT_CODES = {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"}
CODE_OF = {name: code for code, (name, _) in DTYPES.items()}
INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"
_MAX_HEADER = 100 << 20  # the safetensors library's own limit


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor lives: file, dtype code, shape and absolute byte range."""

    name: str
    file: Path
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int

    @property
    def numel(self) -> int:
        """Number of elements."""
        n = 1
        for s in self.shape:
            n *= s
        return n

    @property
    def row_bytes(self) -> int:
        """Bytes per leading-dimension row (the whole tensor for 0-d tensors)."""
        rows = self.shape[0] if self.shape else 1
        return (self.end - self.start) // max(rows, 1)


def read_header(path: Path) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Parse one ``.safetensors`` header; checks that every byte range lies inside the file."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) < 8:
            raise BadInput(f"{path} is not a safetensors file (shorter than 8 bytes); "
                           "re-save the checkpoint")
        (n,) = struct.unpack("<Q", raw)
        if n > _MAX_HEADER or 8 + n > size:
            raise BadInput(f"{path} has a corrupt safetensors header (length {n} in a "
                           f"{size}-byte file); re-save or re-download the checkpoint")
        try:
            header = json.loads(fh.read(n))
        except ValueError:
            raise BadInput(f"{path} has an unreadable safetensors header; re-save the "
                           "checkpoint") from None
    meta = header.pop("__metadata__", None) or {}
    out: dict[str, TensorInfo] = {}
    for name, h in header.items():
        code = h.get("dtype")
        if code not in DTYPES:
            raise BadInput(f"{path}: tensor {name} has dtype {code!r}, which evalkit merge "
                           f"does not handle (known: {', '.join(DTYPES)})")
        b, e = h["data_offsets"]
        info = TensorInfo(name, path, code, tuple(int(s) for s in h["shape"]), 8 + n + b,
                          8 + n + e)
        if info.end > size or info.end - info.start != info.numel * DTYPES[code][1]:
            raise BadInput(f"{path} is truncated or corrupt (tensor {name} lies outside the "
                           "file or has the wrong byte length); re-save the checkpoint")
        out[name] = info
    return out, meta


def index_checkpoint(model_dir: Path, label: str) -> dict[str, TensorInfo]:
    """Every tensor of a HF checkpoint directory (single file or sharded with an index)."""
    model_dir = Path(model_dir)
    index = model_dir / INDEX_NAME
    if index.is_file():
        try:
            weight_map: dict[str, str] = json.loads(index.read_text())["weight_map"]
        except (ValueError, KeyError, TypeError):
            raise BadInput(f"{label}: {index} is not a valid safetensors index (no weight_map)"
                           "; re-save the checkpoint") from None
        files = sorted(set(weight_map.values()))
        missing = [f for f in files if not (model_dir / f).is_file()]
        if missing:
            raise BadInput(f"{label}: shard {missing[0]} listed in {INDEX_NAME} is missing from "
                           f"{model_dir} ({len(missing)} of {len(files)} shards missing); "
                           "copy or re-download the full checkpoint")
    else:
        files = sorted(p.name for p in model_dir.glob("*.safetensors")
                       if not p.name.startswith("adapter_"))
        if not files:
            bins = sorted(p.name for p in model_dir.glob("*.bin"))
            hint = (f" (found {bins[0]}: convert it with `model.save_pretrained(dir, "
                    "safe_serialization=True)`)" if bins else "")
            raise BadInput(f"{label}: no *.safetensors weights in {model_dir}{hint}; evalkit "
                           "merge streams safetensors checkpoints only")
        weight_map = {}
    out: dict[str, TensorInfo] = {}
    for f in files:
        tensors, _ = read_header(model_dir / f)
        for name, info in tensors.items():
            if name in out:
                raise BadInput(f"{label}: tensor {name} is stored twice ({out[name].file.name} "
                               f"and {f}); re-save the checkpoint")
            if weight_map and weight_map.get(name) != f:
                continue  # a stale copy the index does not point to
            out[name] = info
    if weight_map:
        absent = sorted(set(weight_map) - set(out))
        if absent:
            raise BadInput(f"{label}: {INDEX_NAME} lists {absent[0]} but no shard holds it "
                           f"({len(absent)} missing); re-save the checkpoint")
    return out


class TensorReader:
    """Positioned reads of tensor row ranges; one open file handle per shard."""

    def __init__(self) -> None:
        self._files: dict[Path, io.FileIO] = {}

    def read(self, info: TensorInfo, row0: int = 0, row1: int | None = None) -> torch.Tensor:
        """Rows ``[row0, row1)`` of `info` as a fresh tensor that the caller owns."""
        import torch

        rows = info.shape[0] if info.shape else 1
        row1 = rows if row1 is None else row1
        nbytes = (row1 - row0) * info.row_bytes
        buf = torch.empty(nbytes, dtype=torch.uint8)
        fh = self._files.get(info.file)
        if fh is None:
            fh = self._files[info.file] = open(info.file, "rb", buffering=0)  # noqa: SIM115
        fh.seek(info.start + row0 * info.row_bytes)
        view = buf.numpy().data
        got = 0
        while got < nbytes:  # readinto may return short counts on large reads
            n = fh.readinto(view[got:])
            if not n:
                raise BadInput(f"{info.file} ended early while reading {info.name}; the file "
                               "is truncated: re-save the checkpoint")
            got += n
        shape = ((row1 - row0), *info.shape[1:]) if info.shape else ()
        return buf.view(getattr(torch, DTYPES[info.dtype][0])).reshape(shape)

    def close(self) -> None:
        """Close every shard file."""
        for fh in self._files.values():
            fh.close()
        self._files.clear()


@dataclass(frozen=True)
class OutTensor:
    """One tensor of the output plan."""

    name: str
    dtype: str  # safetensors code
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        """Size in bytes."""
        n = DTYPES[self.dtype][1]
        for s in self.shape:
            n *= s
        return n


def plan_shards(tensors: list[OutTensor], max_bytes: int) -> list[list[OutTensor]]:
    """Split tensors (in order) into shards of at most `max_bytes` (a bigger tensor: alone)."""
    shards: list[list[OutTensor]] = [[]]
    size = 0
    for t in tensors:
        if shards[-1] and size + t.nbytes > max_bytes:
            shards.append([])
            size = 0
        shards[-1].append(t)
        size += t.nbytes
    return [s for s in shards if s]


def shard_names(n: int) -> list[str]:
    """HF's file names: ``model.safetensors`` or ``model-0000i-of-0000n.safetensors``."""
    if n == 1:
        return [SINGLE_NAME]
    return [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]


class ShardWriter:
    """Writes one safetensors file whose header is fixed up front; bytes arrive in order."""

    def __init__(self, path: Path, tensors: list[OutTensor],
                 metadata: dict[str, str] | None = None) -> None:
        header: dict[str, Any] = {"__metadata__": metadata or {"format": "pt"}}
        offset = 0
        for t in tensors:
            header[t.name] = {"dtype": t.dtype, "shape": list(t.shape),
                              "data_offsets": [offset, offset + t.nbytes]}
            offset += t.nbytes
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)  # data starts 8-byte aligned, as the library writes it
        self.path = Path(path)
        self._expected = offset
        self._written = 0
        self._fh = open(self.path, "wb")  # noqa: SIM115
        self._fh.write(struct.pack("<Q", len(raw)) + raw)

    def write(self, chunk: torch.Tensor) -> None:
        """Append the bytes of the next tensor (or next row range of it)."""
        import torch

        data = chunk.contiguous().reshape(-1).view(torch.uint8).numpy()
        self._fh.write(data.data)
        self._written += data.nbytes

    def close(self) -> None:
        """Flush to disk; fails if fewer/more bytes arrived than the header promised."""
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        if self._written != self._expected:
            raise RuntimeError(f"{self.path}: wrote {self._written} bytes, header promised "
                               f"{self._expected}")
