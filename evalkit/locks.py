"""One writer at a time: advisory file locks inside an output folder.

A run holds ``<out>/.locks/model-<hash>.lock`` while it generates, scores and writes the
records of one base model (all its variants live under that model), so two runs of the same
model on one ``--out`` never generate anything twice: the second waits, then finds every
generation in the store. Runs of different models proceed side by side (the store takes their
appends line by line). Boards are rebuilt under ``<out>/.locks/boards.lock``.

The locks are ``flock`` locks: the kernel drops them when the holder exits, however it exits
(SIGKILL included), so a crashed run never leaves a stale lock behind. The lock file records
the holder's pid and command for the message a waiting run prints.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from evalkit.errors import BadInput


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return "another evalkit process"
    return text or "another evalkit process"


@contextlib.contextmanager
def exclusive(path: Path, *, what: str, wait: bool = True,
              notify: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed) for the ``with`` body.

    When another process holds it: wait (telling `notify` once who holds it), or, with
    ``wait=False``, refuse with a one-line error.
    """
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise BadInput(f"cannot create the lock file {path} ({exc.strerror}); make the output "
                       "folder writable or choose another --out") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(path)
            if not wait:
                raise BadInput(f"{what} is being written by {holder}; wait for it to finish "
                               "or use another --out") from None
            if notify:
                notify(f"{what} is being written by {holder}; waiting for it to finish "
                       "(its results will be reused, nothing is generated twice)")
            t0 = time.monotonic()
            fcntl.flock(fd, fcntl.LOCK_EX)
            if notify:
                notify(f"{what}: the other run finished after {time.monotonic() - t0:.0f} s")
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} ({' '.join(sys.argv[:3])[:120]})\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the descriptor releases the lock


def model_lock(out: Path, model_hash: str) -> Path:
    """The lock file of one base model's records and generations in an output folder."""
    import hashlib

    digest = hashlib.sha256(model_hash.encode()).hexdigest()[:16]
    return Path(out) / ".locks" / f"model-{digest}.lock"


def boards_lock(out: Path) -> Path:
    """The lock file serialising board rebuilds in an output folder."""
    return Path(out) / ".locks" / "boards.lock"
