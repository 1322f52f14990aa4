"""An oracle as a TRL reward function: ``f(prompts, completions, **kwargs) -> list[float | None]``.

TRL's online trainers (``GRPOTrainer``, ``OnlineDPOTrainer``, ``RLOOTrainer``) call every reward
function with keyword arguments ``prompts``, ``completions`` (plain strings, or for conversational
data lists of ``{"role", "content"}`` messages), ``completion_ids`` and every other dataset column.
:func:`oracle_reward` adapts an evalkit oracle to that contract through the same rule and reward
as evaluation and the Δ-DPO loop (``evalkit.oracles.rule.judge``): r ∈ [−1, 1], −1 when no
complete sentence can be judged, else ``0.8·q + 0.2·MATTR``.

``None`` means *abstain* (TRL skips it when averaging): a row whose ``language`` column names
another language than the oracle's, or a completion that is not text.

Plain completions continue the prompt, so the judged text is ``prompt + completion`` (SAGA judges
"Norsk er" + " et språk."); conversational completions are answers, judged on their own.

Example (runnable; ``python examples/oracle_reward.py`` also wires it into ``GRPOTrainer``)::

    from evalkit.rewards import oracle_reward

    reward = oracle_reward("spacy-nob")            # or an Oracle instance, or "fake" in tests
    reward(prompts=["Norsk er"], completions=[" et nordgermansk språk."])
    # -> [0.9...]
    reward(prompts=[[{"role": "user", "content": "Skriv en setning."}]],
           completions=[[{"role": "assistant", "content": "Hunden løper."}]])
    # GRPOTrainer(model=..., reward_funcs=[reward], train_dataset=..., args=GRPOConfig(...))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["RewardFunction", "oracle_reward"]

#: What TRL calls: keyword arguments only, one float (or None = abstain) per completion.
RewardFunction = Callable[..., list[float | None]]


def _text(x: Any) -> str | None:
    """The text of a plain completion or of a conversation's last message (None if neither)."""
    if isinstance(x, str):
        return x
    if isinstance(x, dict) and isinstance(x.get("content"), str):
        return x["content"]
    if isinstance(x, (list, tuple)) and x and isinstance(x[-1], dict):
        content = x[-1].get("content")
        return content if isinstance(content, str) else None
    return None


def oracle_reward(oracle: Any = "spacy-nob", *, config: Any = None,
                  oracle_options: dict[str, Any] | None = None, language: str = "nob_Latn",
                  join_prompt: bool = True, name: str | None = None) -> RewardFunction:
    """Wrap an oracle as a TRL reward function.

    Args:
        oracle: an `evalkit.oracles.base.Oracle` instance or a registered oracle name
            (``spacy-nob``, ``stanza-nob``, ``fake``); built once, here, not per call.
        config: an `evalkit.oracles.rule.RuleConfig` (default: SAGA's settings, MATTR weight 0.2).
        oracle_options: constructor options when `oracle` is a name.
        language: the oracle's language; rows whose ``language`` column differs get None.
        join_prompt: judge ``prompt + completion`` for plain (string) prompts.
        name: the function's ``__name__`` (TRL logs rewards under it).

    Returns:
        ``reward(prompts=None, completions=..., **kwargs) -> list[float | None]``.
    """
    from evalkit.oracles.rule import RuleConfig, judge

    if isinstance(oracle, str):
        from evalkit.oracles.specs import load_oracle

        label = oracle
        oracle = load_oracle(oracle, oracle_options or {})
    else:
        label = getattr(oracle, "name", type(oracle).__name__)
    rule = config if config is not None else RuleConfig()

    def reward(prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (),
               **kwargs: Any) -> list[float | None]:
        langs = kwargs.get("language")
        texts: list[str | None] = []
        for i, c in enumerate(completions):
            text = _text(c)
            if text is not None and join_prompt and prompts is not None and isinstance(
                    prompts[i], str) and isinstance(c, str):
                text = prompts[i] + text
            if langs is not None and langs[i] is not None and langs[i] != language:
                text = None
            texts.append(text)
        todo = [t for t in texts if t is not None]
        verdicts = iter(judge(oracle, todo, rule)) if todo else iter(())
        return [None if t is None else float(next(verdicts).reward) for t in texts]

    reward.__name__ = name or f"oracle_{label}".replace("-", "_")
    return reward
