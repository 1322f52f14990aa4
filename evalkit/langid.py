"""Offline language identification (lingua), built once per process.

lingua knows Basque and Bokmål (langdetect does not know Basque). It does not know Sardinian or
Galician: for such targets callers report the share identified as a *drift* language instead
(Italian, Spanish, English for Sardinian), see `drift_languages`.

The identifier always decides among all languages of :data:`LINGUA_NAMES` (the competitors
define what "identified as Bokmål" means, so a run never narrows them). What costs time is
loading lingua's n-gram models (3–5 s for the Latin-script languages, holding the GIL); lingua
loads them per language on first need and keeps them for the whole process. A task that will
identify texts calls :func:`prepare` with its languages while it is planned: one child process
per run builds the identifier and loads the models of the languages written in those scripts
on another core while the model generates; :func:`identify` then asks it. Other scripts load
on demand; without :func:`prepare`, or if the child fails, identification runs in-process.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Iterable, Sequence

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


def script(code: str) -> str:
    """The script part of a FLORES code (``Latn`` of ``nob_Latn``)."""
    return code.rsplit("_", 1)[-1]


def needed_languages(codes: Iterable[str]) -> list[str]:
    """The identifier's languages written in the scripts of `codes`: those whose models
    identifying texts in `codes` will consult (lingua first filters candidates by script)."""
    scripts = {script(c) for c in codes}
    return sorted(c for c in LINGUA_NAMES if script(c) in scripts)


class _Worker:
    """A child process holding the identifier, its models loading while this process works.

    lingua loads its n-gram models holding the GIL (3–5 s for the Latin-script languages), so a
    thread would only stall generation; a process loads them on another core. Requests and
    answers are JSON lines; any failure makes :func:`identify` answer in-process instead.
    """

    def __init__(self, codes: list[str]) -> None:
        import subprocess

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "evalkit.langid", "serve", *codes],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, encoding="utf-8", bufsize=1)

    def identify(self, texts: list[str]) -> list[str | None] | None:
        import json

        try:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(json.dumps(texts) + "\n")
            self.proc.stdin.flush()
            answer = json.loads(self.proc.stdout.readline())
        except (OSError, ValueError):
            self.close()
            return None
        return answer if isinstance(answer, list) and len(answer) == len(texts) else None

    def close(self) -> None:
        import subprocess

        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


_worker: _Worker | None = None
_lock = threading.Lock()


def prepare(codes: Iterable[str]) -> None:
    """Start the identifier in a child process and load the models that identifying texts in
    `codes`' scripts needs, while this process goes on (model loading, generation).

    Once per process; later calls do nothing. Texts in other scripts load their models on
    demand, as in-process.
    """
    global _worker
    with _lock:
        if _worker is not None or _detector.cache_info().currsize:
            return
        try:
            _worker = _Worker(needed_languages(codes))
        except OSError:
            return
    import atexit

    atexit.register(_worker.close)


def _identify_here(texts: Sequence[str]) -> list[str | None]:
    det = _detector()
    out: list[str | None] = [None] * len(texts)
    idx = [i for i, t in enumerate(texts) if t and any(ch.isalpha() for ch in t)]
    if idx:
        langs = det.detect_languages_in_parallel_of([texts[i] for i in idx])
        for i, lang in zip(idx, langs):
            out[i] = _BY_LINGUA.get(lang.name) if lang is not None else None
    return out


def identify(texts: Sequence[str]) -> list[str | None]:
    """FLORES code of each text's language (None for empty or undecidable text)."""
    global _worker
    with _lock:
        worker = _worker
        if worker is not None:
            answer = worker.identify(list(texts))
            if answer is not None:
                return answer
            _worker = None
    return _identify_here(texts)


def _serve(codes: list[str]) -> None:
    """The child's side of :class:`_Worker`: load, then answer one JSON line per request."""
    import json

    if codes:
        from lingua import Language, LanguageDetectorBuilder

        langs = [getattr(Language, LINGUA_NAMES[c]) for c in codes]
        # lingua keeps loaded models per process, shared by all detectors: this warms _detector
        LanguageDetectorBuilder.from_languages(*langs).with_preloaded_language_models().build()
    _detector()
    for line in sys.stdin:
        sys.stdout.write(json.dumps(_identify_here(json.loads(line))) + "\n")
        sys.stdout.flush()


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


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    _serve(sys.argv[2:])
