"""Packaging: a layout setuptools installs without warnings, and the shipped data inside it."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _toml() -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_every_importable_folder_is_a_listed_package() -> None:
    """setuptools prints a 'Package would be ignored' warning block for each folder inside a
    package whose name is an identifier but that is not in `packages`: keep the list whole."""
    st = _toml()["tool"]["setuptools"]
    listed = set(st["packages"])
    roots = {pkg: REPO / d for pkg, d in st["package-dir"].items()}

    def folder(pkg: str) -> Path:
        for root in sorted(roots, key=len, reverse=True):
            if pkg == root or pkg.startswith(root + "."):
                return roots[root].joinpath(*pkg[len(root):].split(".")[1:])
        raise AssertionError(pkg)

    missing = []
    for pkg in listed:
        for sub in folder(pkg).iterdir():
            if sub.is_dir() and sub.name.isidentifier() and sub.name != "__pycache__":
                if f"{pkg}.{sub.name}" not in listed:
                    missing.append(f"{pkg}.{sub.name}")
    assert not missing, f"add to [tool.setuptools] packages: {missing}"
    data = st["package-data"]
    for pkg in ("evalkit.embedded.model", "evalkit.oracles.models", "evalkit.tasks.data.ifjudge",
                "evalkit.tasks.data.rc_nob"):
        assert pkg in listed and pkg in data, pkg
