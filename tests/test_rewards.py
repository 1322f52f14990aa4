"""evalkit.rewards: the oracle as a TRL reward function (plain and conversational, abstain)."""

from __future__ import annotations

import pytest

from evalkit.oracles.fake import FakeOracle
from evalkit.rewards import oracle_reward


def test_plain_completions_are_judged_with_their_prompt() -> None:
    oracle = FakeOracle()
    reward = oracle_reward(oracle)
    out = reward(prompts=["Hunden", "Hunden", "Norsk"],
                 completions=[" liker kaffe.", " fort fort fort.", " språk uten punktum"])
    assert out[0] == pytest.approx(1.0)            # "Hunden liker kaffe." passes, MATTR 1
    assert out[1] is not None and -1.0 < out[1] < 0.9
    assert out[2] == -1.0                          # no complete sentence
    # without joining, " liker kaffe." has no subject → lower reward
    alone = oracle_reward(oracle, join_prompt=False)(prompts=["Hunden"],
                                                      completions=[" liker kaffe."])
    assert alone[0] < out[0]
    assert oracle.calls == 2  # one batched parse call per reward call


def test_conversational_completions_and_abstain() -> None:
    reward = oracle_reward(FakeOracle(), name="grammar")
    assert reward.__name__ == "grammar"
    prompts = [[{"role": "user", "content": "Skriv en setning om en hund."}]] * 3
    completions = [[{"role": "assistant", "content": "Hunden liker kaffe."}],
                   [{"role": "assistant", "content": "fort fort"}],
                   [{"role": "assistant", "content": "Hunden liker kaffe."}]]
    out = reward(prompts=prompts, completions=completions, completion_ids=[[1], [2], [3]],
                 language=["nob_Latn", "nob_Latn", "eus_Latn"])
    assert out[0] == pytest.approx(1.0)  # judged alone: the prompt is not part of the sentence
    assert out[1] == -1.0
    assert out[2] is None                # another language: abstain
    assert reward(prompts=["x"], completions=[None]) == [None]  # not text: abstain


def test_reward_by_registry_name_and_rule_settings() -> None:
    from evalkit.oracles.rule import RuleConfig

    plain = oracle_reward("fake", config=RuleConfig(mattr_weight=0.0))
    # q alone when the MATTR term is off: a failing sentence's q = 3/6 checks
    assert plain(prompts=["fort"], completions=[" fort fort."]) == [pytest.approx(0.5)]
