"""The embedded default model's recipe: every constant that decides what gets built.

Changing anything here changes :func:`fingerprint`, so the shipped checkpoint no longer matches
the recipe (a test fails until it is rebuilt with ``python -m evalkit.embedded --ship``) and
locally built caches are rebuilt. Bump ``RECIPE_VERSION`` as well when the change is deliberate:
it names the cache folder (``default-v<N>``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from evalkit.prompts import LANG_NAMES, translation_prompt

DEFAULT_MODEL_ALIAS = "default"
RECIPE_VERSION = 1

# tokenizer
VOCAB_SIZE = 4096
# model
HIDDEN = 256
LAYERS = 4
HEADS = 4
INTERMEDIATE = 768
MAX_POSITIONS = 512
# training
SEQ_LEN = 256
BATCH_SIZE = 8
LEARNING_RATE = 1.5e-3
MIN_LR_RATIO = 0.1
WARMUP_STEPS = 30
WEIGHT_DECAY = 0.1
GRAD_CLIP = 1.0
DEFAULT_STEPS = 800
DEFAULT_SEED = 1234
DEFAULT_THREADS = 2
# data: one translation pair in CHAT_SHARE is rendered with the chat template
CHAT_SHARE = 8
TRANSLATION_LANGS = ("eng_Latn", "nob_Latn", "eus_Latn")

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [BOS, EOS, PAD, UNK, IM_START, IM_END]
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def flores_prompt(src_lang: str, tgt_lang: str, src: str, tgt: str | None = None) -> str:
    """The FLORES task's prompt (:func:`evalkit.tasks.flores.translation_prompt`); with ``tgt``
    the full training text, so the model learns exactly the format it is evaluated on."""
    text = translation_prompt(src_lang, tgt_lang, src)
    return text if tgt is None else f"{text} {tgt}"


def recipe() -> dict[str, Any]:
    """Every recipe setting as one JSON-able dict (recorded in ``build_info.json``)."""
    return {
        "version": RECIPE_VERSION,
        "tokenizer": {"kind": "byte-level BPE", "vocab_size": VOCAB_SIZE, "min_frequency": 2,
                      "special_tokens": SPECIAL_TOKENS, "chat_template": CHAT_TEMPLATE},
        "model": {"class": "LlamaForCausalLM", "hidden": HIDDEN, "layers": LAYERS,
                  "heads": HEADS, "head_dim": HIDDEN // HEADS, "intermediate": INTERMEDIATE,
                  "max_positions": MAX_POSITIONS, "tied_embeddings": True},
        "training": {"steps": DEFAULT_STEPS, "seed": DEFAULT_SEED, "threads": DEFAULT_THREADS,
                     "batch_size": BATCH_SIZE, "seq_len": SEQ_LEN, "lr": LEARNING_RATE,
                     "min_lr_ratio": MIN_LR_RATIO, "warmup_steps": WARMUP_STEPS,
                     "weight_decay": WEIGHT_DECAY, "grad_clip": GRAD_CLIP,
                     "optimizer": "AdamW(0.9, 0.95, eps 1e-8)", "schedule": "warm-up + cosine"},
        "data": {"chat_share": CHAT_SHARE, "translation_langs": list(TRANSLATION_LANGS),
                 "lang_names": {c: LANG_NAMES[c] for c in TRANSLATION_LANGS},
                 "prompt_example": flores_prompt("eng_Latn", "nob_Latn", "{src}", "{tgt}")},
    }


def fingerprint() -> str:
    """sha256 of :func:`recipe` (canonical JSON): what a built checkpoint must match."""
    blob = json.dumps(recipe(), sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()
