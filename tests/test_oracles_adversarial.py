"""Odd inputs never crash an oracle and always get a verdict (fake, shipped spaCy, shipped
Stanza)."""

from __future__ import annotations

import pytest

from evalkit.oracles.base import Parse
from evalkit.oracles.fake import FakeOracle
from evalkit.oracles.rule import RuleConfig, Verdict, judge
from evalkit.oracles.spacy_oracle import DEFAULT_SPACY_MODEL
from evalkit.oracles.stanza_oracle import DEFAULT_STANZA_MODEL

ADVERSARIAL = [
    "", " ", "\n\t  \r\n", "a" * 100_000, "Jeg liker kaffe. " * 6000,
    "😀🇳🇴👍🏽 " * 10, "Jeg 😀 liker kaffe 👍🏽.", "\x00\x01\x1b[31mJeg\x07 liker\x7f kaffe.",
    "!!!...???", "....", ".", "1 2 3 4.", "\u200b\u200e\u2028\ufeff", "Jeg\ud800 liker kaffe.",
    "«»()[]{}.", "- - - -", "Jeg liker kaffe", "http://example.com/a.b?c=d.", "JEG LIKER KAFFE.",
]


def _check(verdicts: list[Verdict], n: int) -> None:
    assert len(verdicts) == n
    for v in verdicts:
        assert isinstance(v, Verdict)
        assert -1.0 <= v.reward <= 1.0
        assert 0.0 <= v.q <= 1.0
        assert v.passed == (not v.failed_checks)


@pytest.mark.parametrize("config", [RuleConfig(), RuleConfig(truncate=False),
                                    RuleConfig(split=False, truncate=False),
                                    RuleConfig(first_sentence_only=True, mattr_weight=0.0)])
def test_fake_oracle_adversarial(config: RuleConfig) -> None:
    _check(judge(FakeOracle(), ADVERSARIAL, config), len(ADVERSARIAL))


def test_nothing_to_judge_is_minus_one() -> None:
    v = judge(FakeOracle(), ["", " ", "....", "😀😀", "\x00\x01", "uten punktum"])
    assert all(x.reward == -1.0 and not x.passed and x.n_sentences == 0 for x in v)


def test_non_string_input_gets_a_verdict() -> None:
    v = judge(FakeOracle(), [None, 42])  # type: ignore[list-item]
    assert [x.reward for x in v] == [-1.0, -1.0]


@pytest.fixture(scope="module")
def spacy_oracle():  # noqa: ANN201
    pytest.importorskip("spacy")
    if not (DEFAULT_SPACY_MODEL / "meta.json").exists():
        pytest.skip("shipped spaCy model missing")
    from evalkit.oracles.spacy_oracle import SpacyOracle

    return SpacyOracle()


def test_spacy_adversarial(spacy_oracle) -> None:  # noqa: ANN001
    _check(judge(spacy_oracle, ADVERSARIAL), len(ADVERSARIAL))
    _check(judge(spacy_oracle, ADVERSARIAL, RuleConfig(truncate=False)), len(ADVERSARIAL))


def test_spacy_parses_bokmal(spacy_oracle) -> None:  # noqa: ANN001
    good, frag = judge(spacy_oracle, ["Jeg liker kaffe og te om morgenen.",
                                      "Kaffe og te om morgenen."])
    assert good.passed and good.reward > 0.9
    assert not frag.passed and "verbal_root" in frag.failed_checks
    (p,) = spacy_oracle.parse(["Han har spist maten sin."])
    assert isinstance(p, Parse) and p.scheme == "ndt" and len(p.roots) == 1
    assert p.tokens[p.roots[0]].text == "har" and p.tokens[p.roots[0]].finite


def test_spacy_n_process_same_result(spacy_oracle) -> None:  # noqa: ANN001
    from evalkit.oracles.spacy_oracle import SpacyOracle

    texts = ["Jeg liker kaffe.", "Kaffe og te.", "Han sa at hun kom."] * 4
    two = SpacyOracle(n_process=2, batch_size=4)
    assert two.parse(texts) == spacy_oracle.parse(texts)


@pytest.fixture(scope="module")
def stanza_oracle():  # noqa: ANN201
    pytest.importorskip("stanza")
    if not (DEFAULT_STANZA_MODEL / "parser.pt").exists():
        pytest.skip("shipped Stanza model missing")
    from evalkit.oracles.stanza_oracle import StanzaOracle

    return StanzaOracle()


def test_stanza_adversarial(stanza_oracle) -> None:  # noqa: ANN001
    _check(judge(stanza_oracle, ADVERSARIAL), len(ADVERSARIAL))


def test_stanza_parses_bokmal(stanza_oracle) -> None:  # noqa: ANN001
    good, frag = judge(stanza_oracle, ["Jeg liker kaffe og te om morgenen.",
                                       "Kaffe og te om morgenen."])
    assert good.passed
    assert not frag.passed
    (p,) = stanza_oracle.parse(["Han har spist maten sin."])
    assert p.scheme == "ndt" and len(p.roots) == 1
