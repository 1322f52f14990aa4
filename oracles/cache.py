"""A persistent parse cache shared by evaluation and training.

Parses are stored in sqlite under ``$EVALKIT_CACHE/parses.sqlite`` (default
``~/.cache/evalkit``), keyed by ``sha256(oracle name + model hash + text)``: retraining an oracle
changes its model hash and so never returns stale parses. :class:`CachedOracle` wraps any oracle
and is itself an oracle, so ``judge(CachedOracle(oracle), texts)`` is all a caller needs.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from evalkit.oracles.base import Oracle, Parse, parse_from_json, parse_to_json

__all__ = ["CachedOracle", "ParseCache", "default_cache_path"]


def default_cache_path() -> Path:
    """``$EVALKIT_CACHE/parses.sqlite`` (default ``~/.cache/evalkit/parses.sqlite``)."""
    from evalkit.paths import cache_dir

    return cache_dir() / "parses.sqlite"


class ParseCache:
    """A sqlite key-value store of parses (WAL mode, safe for several reader processes)."""

    def __init__(self, path: Path | str | None = None) -> None:
        """Open (and create) the cache database at ``path``."""
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS parses (key BLOB PRIMARY KEY, value TEXT)")
        self._db.commit()

    @staticmethod
    def key(oracle_id: str, model_hash: str, text: str) -> bytes:
        """The cache key of one text under one oracle version."""
        h = hashlib.sha256()
        for part in (oracle_id, model_hash, text):
            h.update(part.encode("utf-8", "surrogatepass"))
            h.update(b"\x00")
        return h.digest()

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, Parse]:
        """The cached parses among ``keys``."""
        out: dict[bytes, Parse] = {}
        uniq = list(dict.fromkeys(keys))
        with self._lock:
            for i in range(0, len(uniq), 500):
                chunk = uniq[i: i + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, value FROM parses WHERE key IN ({marks})", chunk).fetchall()
                for k, v in rows:
                    out[k] = parse_from_json(v)
        return out

    def put_many(self, items: Sequence[tuple[bytes, Parse]]) -> None:
        """Store parses (existing keys are overwritten)."""
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO parses VALUES (?, ?)",
                                 [(k, parse_to_json(p)) for k, p in items])
            self._db.commit()

    def __len__(self) -> int:
        """Number of cached parses."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM parses").fetchone()[0])

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()


class CachedOracle:
    """An oracle that answers from a :class:`ParseCache` and parses only the misses.

    Two levels: an in-process dict of recent parses (``memory_items``, 0 = off) in front of the
    persistent sqlite store, so a DPO loop that re-scores the same candidates pays nothing twice
    and another process (evaluation, the next training round) still finds the parses on disk.
    """

    def __init__(self, oracle: Oracle, cache: ParseCache | None = None, *,
                 memory_items: int = 100_000) -> None:
        """Wrap ``oracle``; ``cache`` defaults to the shared cache at :func:`default_cache_path`."""
        self.oracle = oracle
        self.cache = cache if cache is not None else ParseCache()
        self.name = oracle.name
        self.model_hash = oracle.model_hash
        self.memory_items = memory_items
        self._memory: dict[str, Parse] = {}
        self.hits = 0
        self.misses = 0

    def _remember(self, items: dict[str, Parse]) -> None:
        if not self.memory_items:
            return
        if len(self._memory) + len(items) > self.memory_items:
            self._memory.clear()  # simple and bounded; the disk level still has everything
        self._memory.update(items)

    def parse(self, texts: Sequence[str]) -> list[Parse]:
        """Parse ``texts``, reusing cached parses; new parses are written back."""
        mem = self._memory
        out: dict[str, Parse] = {t: mem[t] for t in texts if t in mem}
        rest = [t for t in dict.fromkeys(texts) if t not in out]
        n_parsed = 0
        if rest:
            keys = {t: ParseCache.key(self.name, self.model_hash, t) for t in rest}
            found = self.cache.get_many(list(keys.values()))
            disk = {t: found[k] for t, k in keys.items() if k in found}
            todo = [t for t in rest if t not in disk]
            new: dict[str, Parse] = {}
            if todo:
                new = dict(zip(todo, self.oracle.parse(todo), strict=True))
                self.cache.put_many([(keys[t], p) for t, p in new.items()])
            n_parsed = len(todo)
            out.update(disk)
            out.update(new)
            self._remember({**disk, **new})
        self.misses += n_parsed
        self.hits += len(texts) - n_parsed
        return [out[t] for t in texts]
