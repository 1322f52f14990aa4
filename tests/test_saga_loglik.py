"""Log-likelihood tasks: hf backend vs a direct forward pass, perplexity math, BL2MP, ScaLA."""

from __future__ import annotations

import math

import pytest

from evalkit.backends.scripted import ScriptedBackend
from evalkit.types import LoglikRequest, LoglikResult, Sample, ScoringContext

SENTS = ["Jeg liker kaffe om morgenen.", "Hunden løper i parken hver dag, sier hun.",
         "Norsk er et nordgermansk språk.", "Kaixo!"]


def _manual_logprob(model, tok, context: str, continuation: str) -> tuple[float, int]:  # noqa: ANN001
    """Direct transformers forward pass, one unpadded sequence."""
    import torch

    if context:
        ctx = tok(context)["input_ids"]
        whole = tok(context + continuation)["input_ids"]
        cont = whole[len(ctx):]
    else:
        ctx = [tok.bos_token_id]
        cont = tok(continuation, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits.float(), -1)[0]
    total = sum(float(logp[len(ctx) - 1 + i, t]) for i, t in enumerate(cont))
    return total, len(cont)


@pytest.mark.parametrize("with_adapter", [False, True])
def test_hf_loglik_equals_direct_forward(tiny_model, tiny_adapter, with_adapter) -> None:  # noqa: ANN001
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from evalkit.backends.base import HFConfig
    from evalkit.backends.hf import HFBackend

    torch.set_num_threads(1)
    reqs = [LoglikRequest("", s) for s in SENTS]
    reqs += [LoglikRequest("English sentence: I like coffee.\nNorwegian Bokmål sentence:",
                           " Jeg liker kaffe."),
             LoglikRequest("Kari leser ", "en bok.")]
    adapters = {"a1": str(tiny_adapter)} if with_adapter else {}
    if with_adapter:
        reqs = [LoglikRequest(r.context, r.continuation, "a1") for r in reqs]
    backend = HFBackend(HFConfig(model=str(tiny_model), adapters=adapters))
    got = dict(backend.loglikelihood(reqs))  # one padded batch: exercises masking
    backend.close()
    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    if with_adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(tiny_adapter)).eval()
    for i, r in enumerate(reqs):
        ctx = r.context.rstrip()
        cont = r.context[len(ctx):] + r.continuation  # lm-eval's trailing-space move
        want, n = _manual_logprob(model, tok, ctx, cont)
        assert got[i].n_tokens == n
        assert abs(got[i].logprob - want) < 1e-4, (r, got[i].logprob, want)
    assert len({round(x.logprob, 3) for x in got.values()}) == len(reqs)  # not degenerate


def test_perplexity_math() -> None:
    from evalkit.tasks.ppl import PerplexityTask, bits_per_byte, perplexity

    m = perplexity([2.0, 4.0], [1, 3])
    assert m.value == pytest.approx(math.exp(6.0 / 4)) and not m.higher_is_better
    assert m.ci[0] <= m.value <= m.ci[1]
    assert bits_per_byte([math.log(2) * 8], [4]).value == pytest.approx(2.0)
    task = PerplexityTask()
    samples = [Sample("a", {"text": "abc"}), Sample("b", {"text": "æø"})]
    outs = [[LoglikResult(-3.0, 2, False)], [LoglikResult(-1.0, 2, False)]]
    scored = task.score(samples, outs, ScoringContext())
    assert scored.metrics["perplexity"].value == pytest.approx(math.exp(1.0))
    # bytes, not characters: "æø" is 4 UTF-8 bytes
    assert scored.metrics["bits_per_byte"].value == pytest.approx(4.0 / math.log(2) / 7)
    assert "tokenizer" in scored.metrics["perplexity"].note


def _score_with(task, samples, fn):  # noqa: ANN001, ANN202
    backend = ScriptedBackend(loglik=fn)
    outputs = []
    for s in samples:
        reqs = task.requests(s, False)
        res = dict(backend.loglikelihood(reqs))
        outputs.append([res[i] for i in range(len(reqs))])
    return task.score(samples, outputs, ScoringContext())


def test_bl2mp_accuracy_per_type_and_level(data_dir) -> None:  # noqa: ANN001
    from evalkit.data import DataLayer
    from evalkit.tasks.bl2mp import make_bl2mp_task

    task = make_bl2mp_task("bl2mp:eus")
    samples = task.samples(DataLayer(data_dir))
    assert len(samples) == 1800
    # known log-probs: log P = -(characters); the shorter sentence wins, ties lose
    scored = _score_with(task, samples, lambda r: -float(len(r.continuation)))
    want = [len(s.data["sentence_good"]) < len(s.data["sentence_bad"]) for s in samples]
    assert scored.metrics["accuracy"].value == pytest.approx(sum(want) / len(want))
    for level in "ABC":
        sub = [w for s, w in zip(samples, want) if s.data["level"] == level]
        assert scored.metrics[f"accuracy[level={level}]"].value == pytest.approx(sum(sub) / 600)
        assert scored.metrics[f"accuracy[level={level}]"].n == 600
    assert sum(1 for k in scored.metrics if k.startswith("accuracy[type=")) == 3


def test_bl2mp_ties_count_as_wrong() -> None:
    from evalkit.tasks.bl2mp import Bl2mpTask

    samples = [Sample(str(i), {"sentence_good": g, "sentence_bad": b, "type": "E1",
                               "level": "A"}) for i, (g, b) in
               enumerate([("aa", "aaa"), ("aaa", "aa"), ("ab", "cd")])]
    scored = _score_with(Bl2mpTask(), samples, lambda r: -float(len(r.continuation)))
    assert [p["correct"] for p in scored.per_sample] == [True, False, False]


def test_scala_auroc_on_scripted_scores() -> None:
    from evalkit.tasks.scala import ScalaTask

    rows = [{"id": str(i), "correct": "x" * (10 + i), "incorrect": "y" * (9 + i),
             "corruption_type": "delete" if i % 2 else "flip_neighbours"} for i in range(20)]
    samples = [Sample(r["id"], r) for r in rows]
    # per-character log-prob -1 for correct text, -2 for corrupted: mean separates perfectly,
    # while the sum is confounded by length (corruptions are shorter)
    scored = _score_with(ScalaTask(), samples,
                         lambda r: -(1.0 if r.continuation[0] == "x" else 2.0)
                         * len(r.continuation))
    assert scored.metrics["auroc"].value == pytest.approx(1.0)
    assert scored.metrics["pair_accuracy"].value == pytest.approx(1.0)
    assert scored.metrics["auroc_sum"].value < 1.0
    flipped = _score_with(ScalaTask(), samples,
                          lambda r: -(2.0 if r.continuation[0] == "x" else 1.0)
                          * len(r.continuation))
    assert flipped.metrics["auroc"].value == pytest.approx(0.0)
    assert set(scored.metrics) >= {"pair_accuracy[delete]", "pair_accuracy[flip_neighbours]"}
