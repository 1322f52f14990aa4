"""On-disk cache of a board's resampled statistics, keyed by content, never by names or paths.

`evalkit run` refreshes every board its tasks belong to; without a cache each refresh re-reads
every run's sample records and recomputes every bootstrap. With it, a refresh recomputes only
what touches changed records:

* ``values-<key>.bin``: a row's per-sample values of one metric
  (`evalkit.leaderboard.values.SampleValues`, or why there are none). The key hashes the
  sample-record file's bytes (SHA-256), the whole run summary, the metric and the board's
  declared per-sample key. A hit skips parsing the records.
* ``reps-<key>.bin``: the bootstrap replicates of those values. The key hashes the values
  themselves (`values_digest`: metric, kind, scale, sample ids, the arrays' bytes) and the
  resampling (kind, n, resamples, seed).
* ``test-<key>.bin``: a paired test of a row against its baseline, keyed by both sides'
  value digests and the test's kind, resamples and seed.

``CODE_VERSION`` and the numpy and sacrebleu versions enter every key: bump it when what is
cached is computed differently.

Each file stores its own key and a SHA-256 of its contents; a file that does not load, names
another key or fails the digest (torn, stale, edited) is ignored and recomputed, never
trusted. Files are written through a temporary name and renamed (`evalkit.records`'s
atomic-write rule) by the board build, which holds ``<out>/.locks/boards.lock``. After a
successful build, entries it did not use are removed, so the cache holds one board's worth.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from evalkit.records import write_text_atomic

#: enters every key; bump when a cached quantity is computed differently
CODE_VERSION = "1"
CACHE_DIR = ".cache"


@functools.lru_cache(maxsize=1)
def _environment() -> str:
    """What else decides a cached value: this module's version and the libraries that draw
    the resamples (numpy) and score them (sacrebleu)."""
    import numpy
    import sacrebleu

    return f"{CODE_VERSION} numpy {numpy.__version__} sacrebleu {sacrebleu.__version__}"


def digest(parts: Iterable[Any]) -> str:
    """SHA-256 over a sequence of strings, numbers, None, bytes and numpy arrays.

    Each part is written with its type and length, so ``("ab", "c")`` and ``("a", "bc")``
    differ; arrays contribute dtype, shape and bytes.
    """
    import numpy as np

    h = hashlib.sha256(_environment().encode())
    for p in parts:
        if isinstance(p, np.ndarray):
            a = np.ascontiguousarray(p)
            head = f"A{a.dtype.str}{a.shape}".encode()
            body = a.tobytes()
        elif isinstance(p, bytes):
            head, body = b"B", p
        elif p is None:
            head, body = b"N", b""
        else:
            head, body = f"{type(p).__name__[0]}".encode(), repr(p).encode()
        h.update(head + len(body).to_bytes(8, "little") + body)
    return h.hexdigest()


def values_digest(sv: Any) -> str:
    """Content hash of a `SampleValues` (what its replicates and tests are keyed by)."""
    import numpy as np

    den = None if sv.den is None else np.asarray(sv.den)
    return digest(("values", sv.metric, sv.kind, float(sv.scale), "\n".join(sv.ids),
                   np.asarray(sv.values), den))


MAGIC = b"evalkit-stats-cache 1\n"


class StatsCache:
    """Content-keyed entries in one directory (root None: caching off).

    An entry is ``MAGIC``, the SHA-256 (hex, then a newline) of everything after it, the
    length of a JSON header (8 bytes), the header (its key, its plain values: strings and
    numbers, and its arrays' names, dtypes and shapes), then the arrays' raw bytes. Reading
    one is a file read, a hash and `numpy.frombuffer` (an ``.npz`` costs ten times more).
    """

    def __init__(self, root: Path | None) -> None:
        self.root = Path(root) if root is not None else None
        self.used: set[str] = set()
        self.hits = 0
        self.misses = 0

    def _path(self, kind: str, key: str) -> Path:
        assert self.root is not None
        return self.root / f"{kind}-{key}.bin"

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """The values stored under `key`, or None (absent, unreadable or not verified)."""
        if self.root is None:
            return None
        path = self._path(kind, key)
        try:
            got = _decode(path.read_bytes(), key)
        except OSError:
            got = None
        if got is None:
            self.misses += 1
            return None
        self.used.add(path.name)
        self.hits += 1
        return got

    def put(self, kind: str, key: str, entry: dict[str, Any]) -> None:
        """Store `entry` (strings, numbers, numpy arrays) under `key`, atomically; a failed
        write only loses the entry."""
        if self.root is None:
            return
        path = self._path(kind, key)
        try:
            write_text_atomic(path, _encode(key, entry))
        except (OSError, TypeError, ValueError):  # not storable: computed again next time
            return
        self.used.add(path.name)

    def prune(self) -> None:
        """Remove entries (and stray temporary files) this build did not use."""
        if self.root is None or not self.root.is_dir():
            return
        for p in self.root.iterdir():
            if p.name not in self.used and p.is_file():
                try:
                    p.unlink()
                except OSError:
                    pass


def _encode(key: str, entry: dict[str, Any]) -> bytes:
    import numpy as np

    plain = {k: v for k, v in entry.items() if not isinstance(v, np.ndarray)}
    arrays = [(k, np.ascontiguousarray(v)) for k, v in entry.items() if isinstance(v, np.ndarray)]
    if any(a.dtype.hasobject for _, a in arrays):
        raise TypeError("object arrays are not cached")
    head = json.dumps({"key": key, "plain": plain,
                       "arrays": [[k, a.dtype.str, list(a.shape)] for k, a in arrays]},
                      sort_keys=True).encode()
    body = len(head).to_bytes(8, "little") + head + b"".join(a.tobytes() for _, a in arrays)
    return MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body


def _decode(data: bytes, key: str) -> dict[str, Any] | None:
    """An entry's values, or None unless it is whole, verified and stored under `key`."""
    import numpy as np

    start = len(MAGIC) + 65
    if not data.startswith(MAGIC) or len(data) < start + 8:
        return None
    body = memoryview(data)[start:]
    if hashlib.sha256(body).hexdigest().encode() != data[len(MAGIC):start - 1]:
        return None
    try:
        n = int.from_bytes(body[:8], "little")
        head = json.loads(bytes(body[8:8 + n]))
        if head["key"] != key:
            return None
        out: dict[str, Any] = dict(head["plain"])
        pos = 8 + n
        for name, dtype, shape in head["arrays"]:
            dt = np.dtype(dtype)
            size = dt.itemsize * int(np.prod(shape, dtype=np.int64))
            out[name] = np.frombuffer(body[pos:pos + size], dtype=dt).reshape(shape).copy()
            pos += size
    except (ValueError, KeyError, TypeError):
        return None
    return out if pos == len(body) else None
