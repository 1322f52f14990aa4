"""Shared set-up of the hostile-input suite: broken inputs, a finished run to protect, and an
in-process CLI driver that enforces the error contract.

Contract for every hostile case: exit code 2 (130 for interrupts), exactly one error line on
stderr that names the problem (warnings aside), no traceback, nothing written outside the
case's own output folder, and nothing previously computed changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

FLORES = "flores:eng_Latn-nob_Latn"


@dataclass
class Result:
    """What one CLI call did."""

    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        """stderr lines that are not warnings or progress lines."""
        from evalkit.testing import error_lines

        return error_lines(self.err)


def call(args: list[str], cwd: Path) -> Result:
    """Run ``evalkit ARGS`` in this process through the console entry point."""
    from evalkit.cli import main

    out, err = io.StringIO(), io.StringIO()
    old_argv, old_cwd = sys.argv, os.getcwd()
    sys.argv = ["evalkit", *args]
    os.chdir(cwd)
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = old_argv
        os.chdir(old_cwd)
    return Result(code, out.getvalue(), err.getvalue())


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under `root` (relative path → digest)."""
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for p in sorted(root.rglob("*")):
        if p.is_file() and ".locks" not in p.parts:
            out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@dataclass
class Env:
    """Paths every case may use."""

    root: Path
    model: Path
    adapter: Path
    good_run: Path          # a finished run root (protected: must never change)
    good_variant: Path      # its base-model variant directory
    data: Path


def make_env(tiny_model: Path, tiny_adapter: Path, data_dir: Path,
        tmp_path_factory: pytest.TempPathFactory) -> Env:
    """Build the shared environment (called by the session fixture in conftest.py)."""
    root = tmp_path_factory.mktemp("hostile")
    good = root / "good-run"
    res = call(["run", str(tiny_model), "-t", FLORES, "--limit", "4", "--max-new-tokens", "6",
                "--adapter", str(tiny_adapter), "--out", str(good), "--json"], root)
    assert res.code == 0, res.err
    variant = next(d for d in good.iterdir()
                   if (d / "summary.jsonl").exists() and "+" not in d.name)
    return Env(root, tiny_model, tiny_adapter, good, variant, data_dir)


def copy_run(env: Env, dest: Path) -> Path:
    """A private copy of the finished run (cases may corrupt it)."""
    shutil.copytree(env.good_run, dest)
    return dest


def write(path: Path, text: str | bytes) -> Path:
    """Write a file (creating folders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return path


def model_copy(env: Env, dest: Path, mutate: Callable[[Path], None] | None = None) -> Path:
    """A copy of the tiny model, optionally broken by `mutate`."""
    shutil.copytree(env.model, dest)
    if mutate:
        mutate(dest)
    return dest


def adapter_copy(env: Env, dest: Path, mutate: Callable[[Path], None] | None = None) -> Path:
    """A copy of the tiny adapter, optionally broken by `mutate`."""
    shutil.copytree(env.adapter, dest)
    if mutate:
        mutate(dest)
    return dest


def jsonl(rows: list[object]) -> str:
    """JSON lines."""
    return "".join(json.dumps(r) + "\n" for r in rows)
