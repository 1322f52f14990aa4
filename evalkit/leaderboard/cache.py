"""On-disk cache of a board's resampled statistics, keyed by content, never by names or paths.

`evalkit run` refreshes every board its tasks belong to; without a cache each refresh re-reads
every run's sample records and recomputes every bootstrap. With it, a refresh recomputes only
what touches changed records:

* ``values-<key>.npz``: a row's per-sample values of one metric
  (`evalkit.leaderboard.values.SampleValues`, or why there are none). The key hashes the
  sample-record file's bytes (SHA-256), the whole run summary, the metric and the board's
  declared per-sample key. A hit skips parsing the records.
* ``reps-<key>.npz``: the bootstrap replicates of those values. The key hashes the values
  themselves (`values_digest`: metric, kind, scale, sample ids, the arrays' bytes) and the
  resampling (kind, n, resamples, seed).
* ``test-<key>.npz``: a paired test of a row against its baseline, keyed by both sides'
  value digests and the test's kind, resamples and seed.

``CODE_VERSION`` enters every key: bump it when what is cached is computed differently.

Each file stores its own key and a SHA-256 of its arrays; a file that does not load, names
another key or fails the digest (torn, stale, edited) is ignored and recomputed, never
trusted. Files are written through a temporary name and renamed (`evalkit.records`'s
atomic-write rule) by the board build, which holds ``<out>/.locks/boards.lock``. After a
successful build, entries it did not use are removed, so the cache holds one board's worth.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from evalkit.records import write_text_atomic

#: enters every key; bump when a cached quantity is computed differently
CODE_VERSION = "1"
CACHE_DIR = ".cache"


def digest(parts: Iterable[Any]) -> str:
    """SHA-256 over a sequence of strings, numbers, None, bytes and numpy arrays.

    Each part is written with its type and length, so ``("ab", "c")`` and ``("a", "bc")``
    differ; arrays contribute dtype, shape and bytes.
    """
    import numpy as np

    h = hashlib.sha256(CODE_VERSION.encode())
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


class StatsCache:
    """Content-keyed ``.npz`` entries in one directory (None: caching off)."""

    def __init__(self, root: Path | None) -> None:
        self.root = Path(root) if root is not None else None
        self.used: set[str] = set()
        self.hits = 0
        self.misses = 0

    def _path(self, kind: str, key: str) -> Path:
        assert self.root is not None
        return self.root / f"{kind}-{key}.npz"

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """The arrays stored under `key`, or None (absent, unreadable or not verified)."""
        if self.root is None:
            return None
        import numpy as np

        path = self._path(kind, key)
        try:
            with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception:  # noqa: BLE001 - absent, torn (zipfile.BadZipFile), not an npz
            self.misses += 1
            return None
        stored_key = arrays.pop("_key", None)
        stored_sum = arrays.pop("_sha256", None)
        if stored_key is None or stored_sum is None or str(stored_key) != key or \
                str(stored_sum) != _arrays_sum(arrays):
            self.misses += 1
            return None
        self.used.add(path.name)
        self.hits += 1
        return arrays

    def put(self, kind: str, key: str, arrays: dict[str, Any]) -> None:
        """Store `arrays` under `key` (atomically; a failed write only loses the entry)."""
        if self.root is None:
            return
        import numpy as np

        path = self._path(kind, key)
        buf = io.BytesIO()
        clean = {k: np.asarray(v) for k, v in arrays.items()}
        np.savez(buf, _key=np.asarray(key), _sha256=np.asarray(_arrays_sum(clean)), **clean)
        try:
            write_text_atomic(path, buf.getvalue())
        except OSError:
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


def _arrays_sum(arrays: dict[str, Any]) -> str:
    return digest(x for k in sorted(arrays) for x in (k, arrays[k]))

