"""Lazy registries: nothing imported until used, families on demand, did-you-mean."""

from __future__ import annotations

import sys

import pytest

from evalkit.errors import EvalkitError
from evalkit.registry import TASKS, Registry


def test_family_resolution_is_lazy_and_on_demand() -> None:
    reg: Registry[object] = Registry("widget", "evalkit.test_widgets")
    reg.add("json", "json:dumps", "stdlib")
    assert "json" in reg.names()
    assert reg.get("json:anything") is __import__("json").dumps


def test_unknown_name_suggests() -> None:
    with pytest.raises(EvalkitError, match="did you mean flores"):
        TASKS.get("flores2:eng_Latn-nob_Latn".replace("flores2", "florse"))


def test_flores_factory_builds_only_the_asked_pair() -> None:
    factory = TASKS.get("flores:eng_Latn-nob_Latn")
    task = factory("flores:eng_Latn-nob_Latn")
    assert task.name == "flores:eng_Latn-nob_Latn:devtest"
    assert task.language == "nob_Latn"
    assert "evalkit.tasks.flores" in sys.modules


def test_broken_plugin_target_is_a_clear_error() -> None:
    reg: Registry[object] = Registry("widget", "evalkit.test_widgets")
    reg.add("ghost", "evalkit.no_such_module:thing")
    with pytest.raises(EvalkitError, match="cannot be loaded"):
        reg.get("ghost")


def test_duplicate_registration_rejected() -> None:
    reg: Registry[object] = Registry("widget", "evalkit.test_widgets")
    reg.add("a", "json:dumps")
    with pytest.raises(ValueError):
        reg.add("a", "json:loads")
