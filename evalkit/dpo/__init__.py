"""SAGA's Δ-DPO loop: oracle-scored candidates → preference pairs → LoRA DPO → re-evaluation.

``evalkit dpo CONFIG`` (see :mod:`evalkit.dpo.cli`) runs :func:`evalkit.dpo.loop.run_loop`:

1. baseline parse success (PS) of the base model on held-out prompts under the training oracle
   (spaCy) and the held-out evaluator (Stanza);
2. auto-SFT: KL-regularised LoRA SFT when base PS < τ (or ``--force-sft``);
3. N candidates per training prompt through any evalkit backend (n-sampling per temperature);
4. training-oracle rewards in [−1, 1] (MATTR weight 0.2) → preference pairs (Δ ≥ 0.25,
   chosen ≥ 0.20) and their statistics;
5. TRL ``DPOTrainer`` with a peft LoRA config;
6. re-evaluation of base vs adapter under both oracles and the reward-hacking gap.

Configuration: :class:`evalkit.dpo.config.DPOLoopConfig`; pure pair mining:
:mod:`evalkit.dpo.pairs`; training: :mod:`evalkit.dpo.train`. Importing this package is cheap.
"""

from typing import Any

__all__ = ["DPOLoopConfig", "load_config"]


def __getattr__(name: str) -> Any:
    # lazy: building the pydantic config class costs ~0.2-0.6 s, which `evalkit --help` must not pay
    if name in __all__:
        from evalkit.dpo import config

        return getattr(config, name)
    raise AttributeError(name)
