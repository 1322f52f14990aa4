"""Batches side by side on the native engine (``streams``): the texts of one stream, both
streams really used, each on its own torch thread count, and a failure or an abort in one
stopping them all."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from evalkit.backends.base import HFConfig
from evalkit.types import GenParams, GenRequest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "evalkit" / "embedded" / "model"
PROMPTS = [f"{head} {n}" for n in range(6) for head in (
    "English sentence: The cat sat on the mat.\nNorwegian Bokmål sentence:", "Hei",
    "Write a short poem about the sea, in three lines, and no more than forty words.",
    "Kaixo mundua, zer moduz?")]


def _backend(**kw):  # noqa: ANN003, ANN202
    from evalkit.backends.hf import HFBackend

    b = HFBackend(HFConfig(model=str(DEFAULT), engine="native", **kw))
    assert b.engine == "native"
    return b


def _run(b, params: GenParams):  # noqa: ANN001, ANN202
    reqs = [GenRequest(p, params, want_token_ids=True) for p in PROMPTS]
    return {i: (g.texts, g.n_tokens, g.finish_reasons, g.token_ids) for i, g in b.generate(reqs)}


def _stream_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("evalkit-hf-stream")]


@pytest.mark.parametrize("params", [
    pytest.param(GenParams(max_new_tokens=24, stop=(".",)), id="greedy-stop"),
    # three samples per request in batches of two: a request's samples finish in different
    # batches, run by different streams
    pytest.param(GenParams(max_new_tokens=16, temperature=0.9, top_p=0.9, n=3, seed=5),
                 id="sampled")])
def test_streams_give_the_texts_of_one_stream(params: GenParams) -> None:
    one, two = _backend(streams=1, batch_size=2), _backend(streams=2, batch_size=2)
    seen: list[tuple[str, int, float, float]] = []
    inner = two._generate_batch

    def spy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            seen.append((threading.current_thread().name, torch.get_num_threads(), t0,
                         time.perf_counter()))

    two._generate_batch = spy
    try:
        expected = _run(one, params)
        assert _run(two, params) == expected
    finally:
        one.close()
        two.close()
    names = {name for name, *_ in seen}
    assert len(names) == 2 and "evalkit-hf-stream-1" in names  # both streams took batches
    assert {n for _, n, *_ in seen} == {two._stream_threads}  # each on its share of cores
    spans = {name: [(a, b) for nm, _, a, b in seen if nm == name] for name in names}
    first, second = spans.values()
    assert any(a < d and c < b for a, b in first for c, d in second)  # side by side
    assert not _stream_threads()


def test_a_failing_stream_stops_every_stream_and_raises() -> None:
    b = _backend(streams=2, batch_size=1)
    inner = b._generate_batch
    calls: list[str] = []

    def flaky(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(threading.current_thread().name)
        if threading.current_thread().name == "evalkit-hf-stream-1":
            raise RuntimeError("stream one broke")
        return inner(*args, **kwargs)

    b._generate_batch = flaky
    try:
        with pytest.raises(RuntimeError, match="stream one broke"):
            _run(b, GenParams(max_new_tokens=8))
    finally:
        b.close()
    assert len(calls) < len(PROMPTS)  # the other stream stopped taking batches
    assert not _stream_threads()


def test_closing_the_generation_stops_every_stream() -> None:
    b = _backend(streams=2, batch_size=1)
    try:
        gen = b.generate([GenRequest(p, GenParams(max_new_tokens=48)) for p in PROMPTS])
        next(gen)
        gen.close()
        assert not _stream_threads()
        assert len(_run(b, GenParams(max_new_tokens=4))) == len(PROMPTS)  # still usable
    finally:
        b.close()


def test_how_many_streams() -> None:
    cores = torch.get_num_threads()
    b = _backend()
    try:
        assert b.streams == (2 if cores >= 2 else 1)
        assert b._stream_threads == max(1, cores // b.streams)
        assert (b._threads is None) == (b._stream_threads < 2 or cores < 2)
    finally:
        b.close()
    b = _backend(streams=3)
    try:
        assert b.streams == 3 and b._stream_threads == max(1, cores // 3)
    finally:
        b.close()


def test_transformers_engine_keeps_one_stream() -> None:
    """transformers' ``generate`` is not run from two threads at once on one model."""
    from evalkit.backends.hf import HFBackend

    b = HFBackend(HFConfig(model=str(DEFAULT), engine="transformers", streams=2))
    try:
        assert b.engine == "transformers" and b.streams == 1
    finally:
        b.close()


@pytest.mark.parametrize("value", [0, -1, "two", 1.5])
def test_an_odd_stream_count_is_refused_before_anything_loads(value: object) -> None:
    from evalkit.backends.factory import check_backend_options
    from evalkit.errors import BadInput

    with pytest.raises(BadInput, match="streams") as info:
        check_backend_options("hf", {"streams": value})
    assert "\n" not in str(info.value)
