"""The nb_parse task: prompts from UD test, seeds, per-oracle PS/parse score, agreement, spread."""

from __future__ import annotations

import pytest

from evalkit.errors import BadInput
from evalkit.oracles.fake import FakeOracle
from evalkit.types import Generation, ScoringContext


def test_prompt_prefix_rules() -> None:
    from evalkit.tasks.nb_parse import continuation_text, prompt_prefix

    assert prompt_prefix("Jeg ser et landskap som er såret og i tilbaketrekning.") == \
        "Jeg ser et landskap"
    assert prompt_prefix("Han kom hjem i går kveld.") == "Han kom hjem"
    assert prompt_prefix("Kort setning her.") is None
    assert prompt_prefix("«Vi har nå fire måneder gamle mus») sa han.") is None
    assert continuation_text("Norsk er", " et språk.") == "Norsk er et språk."
    assert continuation_text("Norsk er", "et språk.") == "Norsk er et språk."
    assert continuation_text("Norsk er", ", sa han.") == "Norsk er, sa han."
    assert continuation_text("Norsk er", "Norsk er fint.") == "Norsk er fint."


def test_samples_from_ud_test(data_dir) -> None:  # noqa: ANN001
    from evalkit.data import DataLayer
    from evalkit.tasks.nb_parse import make_task

    task = make_task("nb_parse")
    samples = task.samples(DataLayer(data_dir))
    assert len(samples) == 200 and len({s.id for s in samples}) == 200
    assert all(3 <= len(s.data["prefix"].split()) <= 4 for s in samples)
    reqs = task.requests(samples[0], chat=False)
    assert [(p.seed, p.seed_offset) for _, p in reqs] == [(None, 0), (None, 1), (None, 2)]
    assert all(p.temperature == 0.8 and p.max_new_tokens == 60 for _, p in reqs)
    assert reqs[0][0] == samples[0].data["prefix"]
    assert samples[0].data["prefix"] in task.requests(samples[0], chat=True)[0][0]
    assert len(make_task("nb_parse:20").samples(DataLayer(data_dir))) == 20
    with pytest.raises(BadInput):
        make_task("nb_parse:x")


def test_scoring_two_oracles() -> None:
    from evalkit.tasks.nb_parse import ParseSuccessTask
    from evalkit.types import Sample

    task = ParseSuccessTask(n_prompts=2)
    samples = [Sample("a", {"prefix": "Jeg liker"}), Sample("b", {"prefix": "Kaffe og"})]
    outs = [[Generation((" kaffe.",)), Generation((" te. Han er",)), Generation((" ",))],
            [Generation((" te.",)), Generation((" melk.",)), Generation((" sukker",))]]
    lenient = FakeOracle()
    strict = FakeOracle(bad={"Jeg liker te."})
    strict.name = "strict"
    ctx = ScoringContext(options={"oracles": [lenient, strict]})
    res = task.score(samples, outs, ctx)
    m = res.metrics
    # texts: "Jeg liker kaffe." pass, "Jeg liker te." pass/fail, "Jeg liker" none, 3 × fragment
    assert m["parse_success:fake"].value == pytest.approx(2 / 6)
    assert m["parse_success:strict"].value == pytest.approx(1 / 6)
    assert m["oracle_agreement:fake|strict"].value == pytest.approx(5 / 6)
    assert m["no_sentence_rate"].value == pytest.approx(2 / 6)
    import statistics

    # per seed PS: fake 0.5, 0.5, 0 — strict 0.5, 0, 0
    assert m["parse_success_seed_sd:fake"].value == pytest.approx(statistics.stdev([.5, .5, 0]))
    assert m["parse_success_seed_sd:strict"].value == pytest.approx(statistics.stdev([.5, 0, 0]))
    assert 0 <= m["parse_score:fake"].value <= m["parse_success:fake"].value
    assert res.per_sample[0]["texts"][0] == "Jeg liker kaffe."
    assert res.per_sample[0]["fake"]["passed"] == [True, True, False]


def test_registered_fake_oracle_by_name() -> None:
    from evalkit.tasks.nb_parse import ParseSuccessTask
    from evalkit.types import Sample

    task = ParseSuccessTask(n_prompts=1, seeds=(0,))
    res = task.score([Sample("a", {"prefix": "Jeg liker"})], [[Generation((" kaffe.",))]],
                     ScoringContext(options={"oracles": "fake"}))
    assert res.metrics["parse_success:fake"].value == 1.0
    assert res.metrics["parse_success_seed_sd:fake"].value == 0.0
