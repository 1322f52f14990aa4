"""evalkit's one cache location, and the two helpers every cache entry is built with.

Everything evalkit derives and keeps between runs (the prepared named models, a locally built
embedded model, ScaLA sets, file-hash memos, vLLM's CPU files) lives under :func:`cache_dir`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def cache_dir() -> Path:
    """evalkit's cache root: ``$EVALKIT_CACHE``, default ``~/.cache/evalkit``."""
    env = os.environ.get("EVALKIT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "evalkit"


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """A temporary sibling of `final` to fill; renamed to `final` (replacing it) only when the
    block completes, removed when it raises, so a killed build never leaves a partial dir."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def cache_lock(final: Path) -> Iterator[None]:
    """An exclusive advisory lock beside `final`, so concurrent first uses build it once
    (no-op where fcntl is missing)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(final.parent / f".{final.name}.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_writable_dir(path: Path, flag: str = "--out") -> Path:
    """Create `path` if needed and prove it takes files; one-line error otherwise.

    Called by every command before any model loads, so an unwritable output never costs a
    model load (or, worse, a finished computation)."""
    from evalkit.errors import BadInput

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise BadInput(f"{flag} {path} is a file, not a folder; choose a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise BadInput(f"{flag} {path} is not writable ({exc.strerror or type(exc).__name__}); "
                       "choose a folder you can write to") from None
    return path
