"""Fixtures of the hostile-input suite (helpers live in hostile_harness.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile_harness import Env, make_env


@pytest.fixture(scope="session")
def env(tiny_model: Path, tiny_adapter: Path, data_dir: Path,
        tmp_path_factory: pytest.TempPathFactory) -> Env:
    """A tiny model, its adapter and one finished run that no case may change."""
    return make_env(tiny_model, tiny_adapter, data_dir, tmp_path_factory)
