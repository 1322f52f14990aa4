"""The embedded default model: a tiny Llama trained offline on the data mirror.

``evalkit run default ...`` needs something real to evaluate on a machine without hub access.
:func:`ensure_default_model` returns a Hugging Face checkpoint directory (``config.json``,
``model.safetensors``, ``generation_config.json``, tokenizer files with a ChatML chat template,
``build_info.json``): the one shipped in ``evalkit/embedded/model/`` (see its ``MODEL_CARD.md``),
or, when that does not match the recipe, one built on first use under
``<cache>/models/default-v<N>`` (:func:`evalkit.paths.cache_dir`).

Modules: :mod:`~evalkit.embedded.recipe` (every setting, and its fingerprint),
:mod:`~evalkit.embedded.corpus` (training text via the data layer),
:mod:`~evalkit.embedded.train` (tokenizer, model, training loop, progress),
:mod:`~evalkit.embedded.build` (build, shipped-model check, cache),
:mod:`~evalkit.embedded.ship` (fp16 export with a manifest of hashes). Heavy libraries are
imported inside functions only, so ``import evalkit.embedded`` stays cheap.
"""

from __future__ import annotations

from evalkit.embedded.build import (
                                    SHIPPED_DIR,
                                    DefaultModelError,
                                    build_default_model,
                                    default_model_dir,
                                    ensure_default_model,
                                    shipped_problem,
)
from evalkit.embedded.corpus import Corpus, detokenize, load_corpus
from evalkit.embedded.corpus import mirror as resolve_data_dir  # the data layer's resolver
from evalkit.embedded.recipe import (
                                    DEFAULT_MODEL_ALIAS,
                                    DEFAULT_SEED,
                                    DEFAULT_STEPS,
                                    IM_END,
                                    IM_START,
                                    RECIPE_VERSION,
                                    fingerprint,
                                    flores_prompt,
)
from evalkit.embedded.train import BuildLog

__all__ = [
    "DEFAULT_MODEL_ALIAS", "DEFAULT_SEED", "DEFAULT_STEPS", "IM_END", "IM_START",
    "RECIPE_VERSION", "SHIPPED_DIR", "BuildLog", "Corpus", "DefaultModelError",
    "build_default_model", "default_model_dir", "detokenize", "ensure_default_model",
    "fingerprint", "flores_prompt", "load_corpus", "resolve_data_dir", "shipped_problem",
]

