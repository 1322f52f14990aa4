"""Prompt templates shared by tasks and by the embedded model's training data.

The embedded default model is trained on translation pairs in the very format the FLORES task
prompts with, so the template lives here, below both.
"""

from __future__ import annotations

LANG_NAMES: dict[str, str] = {
    "eng_Latn": "English", "nob_Latn": "Norwegian Bokmål", "nno_Latn": "Norwegian Nynorsk",
    "eus_Latn": "Basque", "srd_Latn": "Sardinian", "ita_Latn": "Italian", "spa_Latn": "Spanish",
    "cat_Latn": "Catalan", "glg_Latn": "Galician", "cym_Latn": "Welsh", "swh_Latn": "Swahili",
    "fra_Latn": "French", "por_Latn": "Portuguese",
}

def translation_prompt(src_lang: str, tgt_lang: str, text: str) -> str:
    """The lm-eval FLORES prompt."""
    return f"{LANG_NAMES[src_lang]} sentence: {text}\n{LANG_NAMES[tgt_lang]} sentence:"
