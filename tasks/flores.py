"""FLORES-200 (and NTREX-128) translation, one task per ordered language pair, built on demand.

Name: ``flores:<src>-<tgt>[:dev|devtest]`` with FLORES-200 codes (``flores:eng_Latn-nob_Latn``)
or ISO 639 codes (``flores:en-eu``, ``flores:eng-nob``; ``no`` and ``nb`` mean Bokmål),
devtest by default. The task is recorded under its canonical name
(``flores:eng_Latn-eus_Latn:devtest``), whichever spelling selected it. Prompt, as
lm-evaluation-harness's FLORES tasks (and LLiMba) use it::

    English sentence: {src}
    Norwegian Bokmål sentence:

greedy, stop at the first newline, up to 256 new tokens. With the chat template on (instruct
models; recorded in the summary) the same text is the user turn. Metrics (all sacrebleu, corpus
level, 95 % bootstrap CIs from per-sentence sufficient statistics, 1,000 resamples): BLEU (13a),
chrF (word order 0 = sacrebleu default chrF2), chrF++ (word order 2), spBLEU (flores200
SentencePiece) only when its model file is already on disk; plus the share of hypotheses
identified as the target language, or, for targets the identifier does not know (Sardinian,
Galician), the share identified as a drift language (Italian/Spanish/English) — reported as a
separate metric, never folded into chrF.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from evalkit import langid
from evalkit.errors import BadInput
from evalkit.metrics import Metric
from evalkit.prompts import LANG_NAMES, translation_prompt
from evalkit.types import (
    Generation,
    GenParams,
    MetricValue,
    Output,
    Sample,
    ScoredTask,
    ScoringContext,
)

SPLITS = ("dev", "devtest")
HUB_ID = "openlanguagedata/flores_plus"
GEN = GenParams(max_new_tokens=256, temperature=0.0, stop=("\n",))
# per-sample keys: the share of hypotheses in the target language (or in a drift language),
# and of empty hypotheses
TARGET_LANG = Metric("target_lang_rate", "proportion", per_sample_key="target_lang")
DRIFT = Metric("off_target_drift_rate", "proportion", higher_is_better=False,
               per_sample_key="drifted")
EMPTY = Metric("empty_rate", "proportion", higher_is_better=False, per_sample_key="empty")


def corpus_mt_metric(name: str) -> Metric:
    """A sacrebleu score: corpus level, per-sentence sufficient statistics in ``<name>_stats``."""
    return Metric(name, "corpus", per_sample_key=f"{name}_stats")

# NTREX-128 file suffixes for FLORES codes
NTREX_CODES = {"nob_Latn": "nob", "eus_Latn": "eus", "cat_Latn": "cat", "glg_Latn": "glg",
               "cym_Latn": "cym", "swh_Latn": "swa", "ita_Latn": "ita", "spa_Latn": "spa",
               "eng_Latn": "eng-US"}


@dataclass(frozen=True)
class TranslationTask:
    """One translation direction over a line-aligned test set."""

    name: str
    src: str
    tgt: str
    split: str
    corpus: str = "flores200"
    version: str = "1"
    prefers_chat: bool = False
    description: str = ""
    resamples: int = 1000
    gen: GenParams = field(default=GEN)

    @property
    def language(self) -> str:
        """Target language code."""
        return self.tgt

    def samples(self, data: Any) -> list[Sample]:
        """Aligned (source, reference) lines from the mirror, else the hub."""
        # scoring identifies the hypotheses' language: load the identifier's models meanwhile
        langid.prepare([self.tgt] if langid.known(self.tgt) else langid.drift_languages(self.tgt))
        src_lines, tgt_lines = self._lines(data, self.src), self._lines(data, self.tgt)
        if len(src_lines) != len(tgt_lines):
            raise BadInput(f"{self.name}: {len(src_lines)} source vs {len(tgt_lines)} target "
                           "lines; the mirror's files are not line-aligned")
        return [Sample(id=f"{self.split}-{i:04d}", data={"source": s}, reference=t)
                for i, (s, t) in enumerate(zip(src_lines, tgt_lines))]

    def _lines(self, data: Any, code: str) -> list[str]:
        if self.corpus == "ntrex128":
            rel = ("ntrex128/newstest2019-src.eng.txt" if code == "eng_Latn"
                   else f"ntrex128/newstest2019-ref.{NTREX_CODES[code]}.txt")
            return data.read_lines(rel)
        rel = f"flores200/{self.split}/{code}.{self.split}"
        if data.exists(rel):
            return data.read_lines(rel)
        rows = data.hub_rows(HUB_ID, code, self.split, mirror_path=rel)
        return [r["text"] for r in rows]

    def requests(self, sample: Sample, chat: bool) -> list[tuple[str, GenParams]]:
        """One greedy request per sentence."""
        return [(translation_prompt(self.src, self.tgt, sample.data["source"]), self.gen)]

    def score(self, samples: Sequence[Sample], outputs: Sequence[Sequence[Output]],
              ctx: ScoringContext) -> ScoredTask:
        """Corpus BLEU/chrF/chrF++ with CIs, and the target-language rate."""
        from evalkit import mt_metrics

        hyps = [_first_text(o) for o in outputs]
        refs = [s.reference for s in samples]
        metrics: dict[str, MetricValue] = {}
        stats: dict[str, Any] = {}
        names = ["bleu", "chrf", "chrf++"] + (["spbleu"] if mt_metrics.spm_model_present() else [])
        for name in names:
            value, stats[name] = mt_metrics.corpus_metric(
                name, hyps, refs, resamples=self.resamples, seed=ctx.seed)
            metrics[name] = corpus_mt_metric(name).declare(value)  # stats stored below
        langs = langid.identify(hyps)
        per_sample: list[dict[str, Any]] = []
        if langid.known(self.tgt):
            lang_metric = TARGET_LANG
            hits = [float(lang == self.tgt) for lang in langs]
            metrics[lang_metric.name] = lang_metric.mean(hits, seed=ctx.seed)
        else:
            lang_metric = DRIFT
            drift = set(langid.drift_languages(self.tgt))
            hits = [float(lang in drift) for lang in langs]
            metrics[lang_metric.name] = lang_metric.mean(
                hits, seed=ctx.seed,
                note=f"{self.tgt} unknown to the identifier: share identified as "
                     f"{', '.join(sorted(drift))}")
        metrics[EMPTY.name] = EMPTY.mean([float(not h.strip()) for h in hyps], seed=ctx.seed)
        for i, h in enumerate(hyps):
            row: dict[str, Any] = {"lang": langs[i], EMPTY.sample_key: not h.strip(),
                                   lang_metric.sample_key: hits[i]}
            for name in names:
                row[f"{name}_stats"] = [int(x) for x in stats[name][i]]
            per_sample.append(row)
        meta = {"prompt_style": "lm-eval flores", "src": self.src, "tgt": self.tgt,
                "split": self.split, "corpus": self.corpus, "langid": f"lingua {langid.version()}",
                "spbleu": "computed" if "spbleu" in names else
                "skipped: flores200 SentencePiece model not on disk (never downloaded)"}
        return ScoredTask(per_sample, metrics, meta)


def _first_text(outs: Sequence[Output]) -> str:
    o = outs[0] if outs else None
    return o.texts[0].strip() if isinstance(o, Generation) and o.texts else ""


def flores_code(code: str) -> str | None:
    """The FLORES-200 code for `code`: itself, an ISO 639-1 alias (``en``, ``eu``, ``no``, as
    other task families take them: :data:`evalkit.langid.ISO1`), or an ISO 639-3 code that
    starts exactly one known FLORES code (``eng``, ``nob``, ``nno``); None if unknown."""
    if code in LANG_NAMES:
        return code
    alias = langid.ISO1.get(code)
    if alias in LANG_NAMES:
        return alias
    hits = [c for c in LANG_NAMES if c.split("_")[0] == code]
    return hits[0] if len(hits) == 1 else None


def _parse_pair(name: str, family: str) -> tuple[str, str, str]:
    parts = name.split(":")
    if len(parts) < 2 or "-" not in parts[1]:
        raise BadInput(f"task {name!r}: expected {family}:<src>-<tgt>[:split], e.g. "
                       f"{family}:eng_Latn-nob_Latn or {family}:en-nb")
    given = parts[1].split("-", 1)
    codes = [flores_code(c) for c in given]
    split = parts[2] if len(parts) > 2 else "devtest"
    for code, canon in zip(given, codes):
        if canon is None:
            import difflib

            hint = difflib.get_close_matches(code, list(LANG_NAMES), n=2)
            raise BadInput(f"task {name!r}: unknown language code {code!r}"
                           + (f"; did you mean {', '.join(hint)}?" if hint else "")
                           + f" (known: {', '.join(sorted(LANG_NAMES))}, or ISO codes such "
                           "as en, eu, nb/no, eng, nob)")
    src, tgt = codes
    assert src is not None and tgt is not None
    if split not in SPLITS:
        raise BadInput(f"task {name!r}: split must be dev or devtest, not {split!r}")
    return src, tgt, split


def make_task(name: str) -> TranslationTask:
    """Factory for ``flores:<src>-<tgt>[:split]``."""
    src, tgt, split = _parse_pair(name, "flores")
    full = f"flores:{src}-{tgt}:{split}"
    return TranslationTask(name=full, src=src, tgt=tgt, split=split,
                           description=f"FLORES-200 {split} {LANG_NAMES[src]} → {LANG_NAMES[tgt]}")


def make_ntrex_task(name: str) -> TranslationTask:
    """Factory for ``ntrex:eng_Latn-<tgt>`` (NTREX-128 has English sources only)."""
    src, tgt, _ = _parse_pair(name if name.count(":") < 2 else name, "ntrex")
    if src != "eng_Latn" or tgt not in NTREX_CODES:
        raise BadInput(f"task {name!r}: NTREX-128 in the mirror is eng_Latn → one of "
                       f"{', '.join(sorted(set(NTREX_CODES) - {'eng_Latn'}))}")
    return TranslationTask(name=f"ntrex:{src}-{tgt}", src=src, tgt=tgt, split="test",
                           corpus="ntrex128",
                           description=f"NTREX-128 English → {LANG_NAMES[tgt]}")
