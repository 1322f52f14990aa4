"""The pieces the loop is made of: prompts, oracles, sampling through a backend, judging.

Generation goes through any evalkit backend (`evalkit.registry.BACKENDS`): one `GenRequest` per
prompt and temperature group with ``n`` set, so engines with n-sampling (vLLM ``SamplingParams(n)``,
HF ``num_return_sequences``) share the prompt's prefill. Judging goes through
`evalkit.oracles.rule.judge` and is summed up by `evalkit.oracles.rule.parse_stats`, the
code paths of the ``nb_parse`` task too.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.data import DataLayer
from evalkit.dpo.config import DPOLoopConfig, OracleSettings, PromptSource
from evalkit.errors import BadInput
from evalkit.types import GenParams, GenRequest

__all__ = ["Candidate", "build_prompts", "generate", "rule_config", "sample", "sft_sentences"]


def build_prompts(src: PromptSource, data: DataLayer) -> list[str]:
    """The first ``src.words`` words of sentences in ``src.file`` (distinct, ``src.n`` of them)."""
    path = Path(src.file)
    lines = (path.read_text(encoding="utf-8").splitlines() if path.is_absolute()
             else data.read_lines(src.file))
    eligible = [ln.split() for ln in lines if len(ln.split()) >= max(src.min_words, src.words + 1)]
    if src.shuffle_seed is not None:
        random.Random(src.shuffle_seed).shuffle(eligible)
    seen: dict[str, None] = {}
    for words in eligible:
        seen.setdefault(" ".join(words[: src.words]), None)
        if len(seen) == src.n:
            break
    if len(seen) < src.n:
        raise BadInput(f"{src.file} gives only {len(seen)} distinct prompts, {src.n} asked; "
                       "lower `n` or `min_words`")
    return list(seen)


def sft_sentences(data_dir: Path | None, n: int, seed: int) -> list[str]:
    """``n`` Bokmål sentences for KL-SFT: NDT minus everything held out (the embedded model's
    training text; SAGA used Norwegian Wikipedia, which the mirror does not hold)."""
    from evalkit.embedded import load_corpus, resolve_data_dir

    corpus = load_corpus(resolve_data_dir(data_dir))
    texts = [t for src, t in corpus.docs if src == "ndt_nob" and len(t.split()) >= 3]
    random.Random(seed).shuffle(texts)
    return texts[:n]


def rule_config(o: OracleSettings) -> Any:
    """The rule/reward settings shared by every judging call of one loop."""
    from evalkit.oracles.rule import RuleConfig

    return RuleConfig(mattr_weight=o.mattr_weight, mattr_window=o.mattr_window,
                      first_sentence_only=o.first_sentence_only)


def generate(backend: Any, prompts: Sequence[str], groups: Sequence[GenParams],
             adapter: str | None = None) -> list[list[str]]:
    """Sample every group's ``n`` continuations of every prompt; per prompt, groups in order."""
    return [[c.text for c in row] for row in sample(backend, prompts, groups, adapter, False)]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One sampled continuation: its text and, when asked for, the exact tokens sampled."""

    text: str
    token_ids: tuple[int, ...] = ()
    prompt_token_ids: tuple[int, ...] = ()


def sample(backend: Any, prompts: Sequence[str], groups: Sequence[GenParams],
           adapter: str | None = None, token_ids: bool = True) -> list[list[Candidate]]:
    """Like `generate`, keeping each candidate's sampled token ids and its prompt's ids (the
    exact tokens preference training must see: re-tokenising text can merge tokens across the
    prompt/continuation boundary)."""
    reqs = [GenRequest(p, g, adapter, want_token_ids=token_ids) for p in prompts for g in groups]
    out: list[Any] = [None] * len(reqs)
    for idx, gen in backend.generate(reqs):
        out[idx] = gen
    rows: list[list[Candidate]] = []
    for i in range(len(prompts)):
        row: list[Candidate] = []
        for j in range(len(groups)):
            gen = out[i * len(groups) + j]
            if gen is None:
                raise RuntimeError(f"backend returned nothing for request {i * len(groups) + j}")
            ids = gen.token_ids or ((),) * len(gen.texts)
            row += [Candidate(t, tuple(x), tuple(gen.prompt_token_ids))
                    for t, x in zip(gen.texts, ids)]
        rows.append(row)
    return rows


def backend_for(cfg: DPOLoopConfig, model_dir: str, adapters: Sequence[Any], seed: int) -> Any:
    """An evalkit backend on `model_dir` with LoRA adapters (`AdapterRef`s) loaded side by side;
    requests name an adapter by its ``backend_id``."""
    from evalkit.backends.factory import make_backend
    from evalkit.models import resolve_model

    model = resolve_model(model_dir)
    return make_backend(cfg.backend, model, list(adapters), False, dict(cfg.backend_options),
                        seed)
