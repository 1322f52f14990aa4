"""Type-check evalkit/, tasks/ and oracles/ with mypy, as the one package they install as.

``tasks/`` and ``oracles/`` install as ``evalkit.tasks`` and ``evalkit.oracles`` (setuptools'
``package-dir`` in pyproject.toml), a mapping mypy cannot follow. This script lays the package
out as it installs, in a temporary tree of symbolic links (``evalkit/*`` plus ``evalkit/tasks``
→ ``tasks/`` and ``evalkit/oracles`` → ``oracles/``), runs mypy on it with pyproject.toml's
``[tool.mypy]`` settings, and prints every path as it is in the checkout. Exit status: mypy's.

    python scripts/typecheck.py [extra mypy arguments]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MAPPED = {"tasks": REPO / "tasks", "oracles": REPO / "oracles"}


def lay_out(root: Path) -> Path:
    """The installed layout of the package under `root`, as symbolic links into the checkout."""
    pkg = root / "evalkit"
    pkg.mkdir()
    for entry in (REPO / "evalkit").iterdir():
        if entry.name not in MAPPED and entry.name != "__pycache__":
            (pkg / entry.name).symlink_to(entry)
    for name, src in MAPPED.items():
        (pkg / name).symlink_to(src)
    return pkg


def checkout_path(line: str) -> str:
    """A mypy output line with the laid-out path replaced by the checkout's."""
    for name in MAPPED:
        if line.startswith(f"evalkit/{name}/"):
            return line[len("evalkit/"):]
    return line


def main(argv: list[str]) -> int:
    """Run mypy; returns its exit status."""
    with tempfile.TemporaryDirectory(prefix="evalkit-typecheck-") as tmp:
        lay_out(Path(tmp))
        cmd = [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"),
               "--cache-dir", str(REPO / ".mypy_cache"), "-p", "evalkit", *argv]
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
    for line in (proc.stdout + proc.stderr).splitlines():
        print(checkout_path(line))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
