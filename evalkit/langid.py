"""Offline language identification (lingua), built once for the languages evalkit reports.

lingua knows Basque and Bokmål (langdetect does not know Basque). It does not know Sardinian or
Galician: for such targets callers report the share identified as a *drift* language instead
(Italian, Spanish, English for Sardinian), see `drift_languages`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

# FLORES-200 code -> lingua Language name
LINGUA_NAMES: dict[str, str] = {
    "eng_Latn": "ENGLISH", "nob_Latn": "BOKMAL", "nno_Latn": "NYNORSK", "eus_Latn": "BASQUE",
    "spa_Latn": "SPANISH", "ita_Latn": "ITALIAN", "cat_Latn": "CATALAN", "cym_Latn": "WELSH",
    "swh_Latn": "SWAHILI", "fra_Latn": "FRENCH", "por_Latn": "PORTUGUESE", "deu_Latn": "GERMAN",
    "dan_Latn": "DANISH", "swe_Latn": "SWEDISH", "ron_Latn": "ROMANIAN", "zho_Hans": "CHINESE",
    "vie_Latn": "VIETNAMESE", "arb_Arab": "ARABIC", "kor_Hang": "KOREAN", "tha_Thai": "THAI",
    "ben_Beng": "BENGALI", "ind_Latn": "INDONESIAN",
}
_BY_LINGUA = {v: k for k, v in LINGUA_NAMES.items()}

#: Languages a model drifts into when it fails a target lingua does not know (LLiMba: Italian).
DRIFT: dict[str, tuple[str, ...]] = {
    "srd_Latn": ("ita_Latn", "spa_Latn", "eng_Latn"),
    "glg_Latn": ("spa_Latn", "por_Latn", "eng_Latn"),
}

#: Short ISO 639-1 aliases used by task names (ifeval:eu, safety:en) -> FLORES code.
ISO1: dict[str, str] = {
    "en": "eng_Latn", "eu": "eus_Latn", "nb": "nob_Latn", "no": "nob_Latn", "nob": "nob_Latn",
    "nn": "nno_Latn", "es": "spa_Latn", "it": "ita_Latn", "ca": "cat_Latn", "gl": "glg_Latn",
    "cy": "cym_Latn", "sw": "swh_Latn", "fr": "fra_Latn", "pt": "por_Latn", "sc": "srd_Latn",
    "srd": "srd_Latn", "eus": "eus_Latn", "eng": "eng_Latn", "zh": "zho_Hans", "vi": "vie_Latn",
    "ar": "arb_Arab", "ko": "kor_Hang", "th": "tha_Thai", "bn": "ben_Beng", "jv": "jav_Latn",
}


def known(code: str) -> bool:
    """Whether the identifier can recognise `code`."""
    return code in LINGUA_NAMES


@functools.lru_cache(maxsize=1)
def _detector():  # noqa: ANN202
    from lingua import Language, LanguageDetectorBuilder

    langs = [getattr(Language, name) for name in sorted(set(_BY_LINGUA))]
    return LanguageDetectorBuilder.from_languages(*langs).build()


def identify(texts: Sequence[str]) -> list[str | None]:
    """FLORES code of each text's language (None for empty or undecidable text)."""
    det = _detector()
    out: list[str | None] = [None] * len(texts)
    idx = [i for i, t in enumerate(texts) if t and any(ch.isalpha() for ch in t)]
    if idx:
        langs = det.detect_languages_in_parallel_of([texts[i] for i in idx])
        for i, lang in zip(idx, langs):
            out[i] = _BY_LINGUA.get(lang.name) if lang is not None else None
    return out


def drift_languages(target: str) -> tuple[str, ...]:
    """Languages that count as off-target drift for a target the identifier cannot see."""
    return DRIFT.get(target, ("eng_Latn",))


def version() -> str:
    """Installed lingua version, for records."""
    from importlib.metadata import version as v

    try:
        return v("lingua-language-detector")
    except Exception:  # noqa: BLE001
        return "unknown"
