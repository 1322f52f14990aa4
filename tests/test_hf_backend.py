"""The hf backend on a tiny random Llama: batching invariance, n samples, stops, log-probs."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.backends.base import HFConfig, truncate_at_stop
from evalkit.types import GenParams, GenRequest, LoglikRequest


@pytest.fixture(scope="module")
def backend(tiny_model: Path, tiny_adapter: Path):  # noqa: ANN201
    from evalkit.backends.hf import HFBackend

    b = HFBackend(HFConfig(model=str(tiny_model), adapters={"lora": str(tiny_adapter)}))
    yield b
    b.close()


PROMPTS = ["English sentence: The cat sat.\nNorwegian Bokmål sentence:", "Hei", "Kaixo mundua",
           "Jeg liker kaffe om morgenen og kvelden"]


def test_greedy_is_independent_of_batching(backend) -> None:  # noqa: ANN001
    reqs = [GenRequest(p, GenParams(max_new_tokens=10)) for p in PROMPTS]
    together = dict(backend.generate(reqs))
    backend.config.batch_size = 1
    try:
        alone = dict(backend.generate(reqs))
    finally:
        backend.config.batch_size = None
    assert [together[i].texts for i in range(4)] == [alone[i].texts for i in range(4)]


def test_prompt_beyond_the_positions_is_cut_from_the_left(backend, capsys) -> None:  # noqa: ANN001
    long = " ".join(["Jeg liker kaffe om morgenen og kvelden"] * 12)
    ids = backend.tokenizer(long)["input_ids"]
    old = backend.max_positions
    backend.max_positions = len(ids) // 2 + 10  # room for half the prompt + 10 tokens
    try:
        (_, g), = backend.generate([GenRequest(long, GenParams(max_new_tokens=10),
                                               want_token_ids=True)])
    finally:
        backend.max_positions = old
    keep = len(ids) // 2
    assert list(g.prompt_token_ids) == ids[-keep:]
    assert "1 prompt(s) left no room" in capsys.readouterr().err
    (_, whole), = backend.generate([GenRequest(long, GenParams(max_new_tokens=10),
                                               want_token_ids=True)])
    assert list(whole.prompt_token_ids) == ids  # within the positions: untouched


def test_n_samples_and_seed(backend) -> None:  # noqa: ANN001
    p = GenParams(max_new_tokens=12, temperature=1.0, n=4, seed=7)
    (_, a), = backend.generate([GenRequest("Hei", p)])
    (_, b), = backend.generate([GenRequest("Hei", p)])
    assert len(a.texts) == 4 and a.texts == b.texts
    assert len(set(a.texts)) > 1


def test_adapter_and_base_differ(backend) -> None:  # noqa: ANN001
    reqs = [GenRequest(p, GenParams(max_new_tokens=10), adapter=a)
            for a in (None, "lora") for p in PROMPTS]
    out = dict(backend.generate(reqs))
    assert [out[i].texts for i in range(4)] != [out[i].texts for i in range(4, 8)]


def test_loglik_equals_manual_forward(backend) -> None:  # noqa: ANN001
    import torch

    reqs = [LoglikRequest("Jeg liker", " kaffe"), LoglikRequest("", "Hunden løper."),
            LoglikRequest("Kaixo ", "mundua")]
    got = dict(backend.loglikelihood(reqs))
    for i, r in enumerate(reqs):
        ctx, cont = backend.encode_pair(r.context, r.continuation)
        ids = torch.tensor([ctx + cont])
        with torch.no_grad(), backend._activate(None):
            logp = torch.log_softmax(backend.model(ids).logits[0].float(), -1)
        want = sum(float(logp[len(ctx) - 1 + j, t]) for j, t in enumerate(cont))
        assert got[i].logprob == pytest.approx(want, abs=1e-4)
        assert got[i].n_tokens == len(cont)


def test_truncate_at_stop() -> None:
    assert truncate_at_stop("abc\ndef", ["\n"]) == ("abc", True)
    assert truncate_at_stop("abc", ["\n", ""]) == ("abc", False)
    assert truncate_at_stop("a.b;c", [";", "."]) == ("a", True)
