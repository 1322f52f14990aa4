"""Shared fixtures: the local data mirror, tiny offline models, and the --runslow switch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evalkit.data import default_data_dir

REPO = Path(__file__).resolve().parent.parent
# the data layer's own resolver ($EVALKIT_DATA_DIR, else shared/data beside the checkout)
DATA = (default_data_dir() or REPO.parent / "shared" / "data").resolve()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: pass --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _offline_env(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never touch the network or the user's caches."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ["EVALKIT_CACHE"] = str(tmp_path_factory.mktemp("evalkit-cache"))
    os.environ["EVALKIT_DATA_DIR"] = str(DATA)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The local data mirror (../shared/data)."""
    if not (DATA / "README.md").exists():
        pytest.skip(f"data mirror not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny Llama (head_dim 32) with a locally trained BPE tokenizer."""
    pytest.importorskip("transformers")
    from evalkit.testing import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def tiny_adapter(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random LoRA adapter for `tiny_model` that changes its outputs."""
    pytest.importorskip("peft")
    from evalkit.testing import build_tiny_adapter

    return build_tiny_adapter(tiny_model, tmp_path_factory.mktemp("adapters") / "lora")
