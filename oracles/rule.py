"""SAGA's well-formedness rule (reconstructed from the SAGA paper), written once.

The rule runs on the scheme-independent view of :mod:`evalkit.oracles.base`, so one code path
judges UD and NDT parses. A sentence is well-formed iff (each check can be switched off in
:class:`RuleConfig`):

1. ``single_root``: exactly one root;
2. ``verbal_root``: the root is VERB/AUX or has a ``cop`` child;
3. ``finite_verb``: a finite verb at the root, its ``cop`` or an ``aux`` child;
4. ``subject``: a subject child of the root (imperatives exempt);
5. ``no_dep``: no ``dep``/unknown relation (by default a *parser failure*, see below);
6. ``min_tokens``: at least 3 tokens, not only punctuation/numbers.

In NDT's scheme the finite auxiliary/copula heads the clause and the subject depends on it, so
checks 2–4 reduce to "root is a finite verb with a SUBJ/FSUBJ/PSUBJ child"; in UD they follow
the content-word root through ``aux``/``cop`` children.

A generation is first truncated after its last sentence-final punctuation (``.!?…``), then split
into sentences (:func:`split_sentences`); each sentence is parsed separately. It passes iff all
its sentences pass (strict; ``first_sentence_only`` judges only the first). ``q`` = mean over
sentences of the fraction of enabled checks passed; a sentence with a parser failure scores 0.
Reward ``r = -1`` when no complete sentence can be judged (nothing left after truncation, or every
sentence a parser failure), else ``r = (1 - w)·q + w·MATTR`` with ``w = 0.2`` (20-word window), or
``r = q`` when ``mattr_weight = 0``. Everything here is a pure function of its inputs.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from evalkit.oracles.base import AUX, COP, SUBJECT, UNKNOWN, Oracle, Parse

__all__ = [
    "CHECKS",
    "RuleConfig",
    "SentenceVerdict",
    "Verdict",
    "check_parse",
    "clean_text",
    "judge",
    "judge_parses",
    "make_reward",
    "mattr",
    "ParseStats",
    "parse_score",
    "parse_stats",
    "parse_success",
    "split_sentences",
    "truncate_text",
]

CHECKS = ("single_root", "verbal_root", "finite_verb", "subject", "no_dep", "min_tokens")
NO_SENTENCE = "no_sentence"
PARSER_FAILURE = "parser_failure"

_NONWORD_POS = frozenset({"PUNCT", "NUM", "SYM"})
_VERB_POS = frozenset({"VERB", "AUX"})


@dataclass(frozen=True, slots=True)
class RuleConfig:
    """Settings of the well-formedness rule and the reward (defaults = SAGA's settings).

    Attributes:
        checks: enabled checks, a subset of :data:`CHECKS`.
        dep_is_parser_failure: a ``dep``/unknown label makes the whole sentence a parser failure
            (sentence q = 0; a generation with only such sentences gets r = -1). When False it is
            just the failed ``no_dep`` check.
        imperative_exempt: imperatives (``Mood=Imp``) need no subject.
        min_tokens: the token count of check 6.
        truncate: cut the text after its last sentence-final punctuation first (for generations;
            switch off to judge gold sentences that lack final punctuation, e.g. headlines).
        split: split the text into sentences; when False the whole text is one sentence.
        first_sentence_only: judge only the first sentence (the protocol's optional mode).
        mattr_weight: w in ``r = (1 - w)·q + w·MATTR``; 0 turns MATTR off (``r = q``).
        mattr_window: MATTR window in words.
        max_chars: longer texts are cut to this many characters before anything else (guards
            the parser against pathological inputs; generations are far shorter).
        max_sentences: at most this many sentences per text are judged.
    """

    checks: tuple[str, ...] = CHECKS
    dep_is_parser_failure: bool = True
    imperative_exempt: bool = True
    min_tokens: int = 3
    truncate: bool = True
    split: bool = True
    first_sentence_only: bool = False
    mattr_weight: float = 0.2
    mattr_window: int = 20
    max_chars: int = 20_000
    max_sentences: int = 64

    def __post_init__(self) -> None:
        """Reject unknown check names and weights outside [0, 1]."""
        unknown = set(self.checks) - set(CHECKS)
        if unknown:
            raise ValueError(f"unknown checks {sorted(unknown)}; known: {CHECKS}")
        if not 0.0 <= self.mattr_weight <= 1.0:
            raise ValueError("mattr_weight must be in [0, 1]")


@dataclass(frozen=True, slots=True)
class SentenceVerdict:
    """The rule applied to one parsed sentence."""

    text: str
    passed: bool
    failed_checks: tuple[str, ...]
    q: float
    parser_failure: bool


@dataclass(frozen=True, slots=True)
class Verdict:
    """The rule applied to one generation.

    Attributes:
        passed: every judged sentence passed every enabled check.
        failed_checks: checks failed by any sentence (in :data:`CHECKS` order), plus
            ``no_sentence`` / ``parser_failure`` when nothing could be judged.
        q: mean over sentences of the fraction of enabled checks passed (0 when none).
        reward: in [-1, 1]; -1 when no complete sentence could be judged.
        n_sentences: sentences judged.
        mattr: MATTR of the judged text, or None when the MATTR term is off.
        n_parser_failures: sentences that were parser failures.
        sentences: per-sentence verdicts.
    """

    passed: bool
    failed_checks: tuple[str, ...]
    q: float
    reward: float
    n_sentences: int
    mattr: float | None = None
    n_parser_failures: int = 0
    sentences: tuple[SentenceVerdict, ...] = field(default=(), repr=False)


# --------------------------------------------------------------------------------------------
# Text handling: cleaning, truncation, sentence splitting
# --------------------------------------------------------------------------------------------

_ABBREVIATIONS = frozenset("""
f.eks bl.a dvs ca nr kl osv mv jf pga evt ev inkl ekskl mill mrd kr stk dr prof hr fr st nb ref
mht vedr ifm iflg bla tlf adr etc vs ibid ofte jan feb mar apr jun jul aug sep sept okt nov des
s pst o.l m.m m.fl t.o.m f.o.m d.v.s b.la e.l sen adm dir gen kap fig tab vol red utg
""".split())
_FINAL = ".!?…"
_CLOSERS = "\"'»”’)]}"
# the look-behind lets only the first mark of a run start a match, and the possessive `++`
# never backtracks into the run: linear time on ".!?" * 10,000 (quadratic without them)
_BOUNDARY = re.compile(r"(?<![.!?…])[.!?…]++[\"'»”’)\]}]*+(?=\s)")
_NEXT_START = re.compile(r"\s+[\"'«“‘(\[–—-]?\s*[A-ZÆØÅÄÖÜÉ0-9]")
_LAST_FINAL = re.compile(r"[.!?…][\"'»”’)\]}]*")


def clean_text(text: str, max_chars: int = 20_000) -> str:
    """Replace control and format characters by spaces (newlines kept) and cap the length."""
    text = text[:max_chars]
    out = []
    for ch in text:
        if ch in "\n\t ":
            out.append(ch)
        elif unicodedata.category(ch)[0] == "C" or unicodedata.category(ch) == "Zl":
            out.append("\n" if ch in "\r\u2028\u2029\x0b\x0c\x85" else " ")
        else:
            out.append(ch)
    return "".join(out)


def truncate_text(text: str) -> str:
    """Cut ``text`` after its last sentence-final punctuation (and closing quotes/brackets).

    Returns "" when the text has no sentence-final punctuation: no complete sentence.
    """
    last = None
    for m in _LAST_FINAL.finditer(text):
        last = m
    return text[: last.end()].rstrip() if last else ""


def _is_abbreviation(text: str, dot: int) -> bool:
    """Whether the period at ``text[dot]`` ends an abbreviation or an initial (no boundary)."""
    start = dot
    while start > 0 and not text[start - 1].isspace() and text[start - 1] not in "(\"'«“":
        start -= 1
    word = text[start:dot]
    if not word:
        return False
    if len(word) == 1 and word.isalpha() and word.isupper():  # an initial: "E. Ur"
        return True
    return word.lower() in _ABBREVIATIONS


def split_sentences(text: str) -> list[str]:
    """Split a text into sentences: at line breaks and after ``.!?…`` before an upper-case start.

    Rule-based and deterministic (no model): a period after a known Norwegian abbreviation
    (``f.eks.``, ``bl.a.``, ``kl.``…) or a single capital initial does not end a sentence.
    Fragments without any letter or digit are attached to the previous sentence.
    """
    out: list[str] = []
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        start = 0
        for m in _BOUNDARY.finditer(line):
            end = m.end()
            nxt = _NEXT_START.match(line, end)
            if nxt is None:
                continue
            punct = m.group(0)
            if punct.startswith(".") and len(punct.rstrip(_CLOSERS)) == 1 and _is_abbreviation(
                    line, m.start()):
                continue
            out.append(line[start:end].strip())
            start = end
        rest = line[start:].strip()
        if rest:
            out.append(rest)
    merged: list[str] = []
    for s in out:
        if merged and not any(ch.isalnum() for ch in s):
            merged[-1] = f"{merged[-1]} {s}"
        else:
            merged.append(s)
    return merged


# --------------------------------------------------------------------------------------------
# MATTR
# --------------------------------------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)


def mattr(text: str, window: int = 20) -> float:
    r"""Moving-average type-token ratio over ``window``-word windows (TTR when shorter; 0 if empty).

    Words are lower-cased ``\\w+`` runs.
    """
    words = [w.lower() for w in _WORD.findall(text)]
    n = len(words)
    if n == 0:
        return 0.0
    if n <= window:
        return len(set(words)) / n
    counts: dict[str, int] = {}
    for w in words[:window]:
        counts[w] = counts.get(w, 0) + 1
    total = len(counts)
    for i in range(window, n):
        old, new = words[i - window], words[i]
        counts[old] -= 1
        if counts[old] == 0:
            del counts[old]
        counts[new] = counts.get(new, 0) + 1
        total += len(counts)
    return total / ((n - window + 1) * window)


# --------------------------------------------------------------------------------------------
# The rule
# --------------------------------------------------------------------------------------------


def _is_word(text: str, pos: str) -> bool:
    if pos in _NONWORD_POS:
        return False
    return any(ch.isalpha() for ch in text)


def check_parse(parse: Parse, config: RuleConfig = RuleConfig()) -> SentenceVerdict:
    """Apply the enabled checks to one parsed sentence."""
    toks = parse.tokens
    text = " ".join(t.text for t in toks)
    if not toks:
        return SentenceVerdict(text, False, (PARSER_FAILURE,), 0.0, True)
    roots = [i for i, t in enumerate(toks) if t.head < 0]
    children: dict[int, list[int]] = {}
    for i, t in enumerate(toks):
        if t.head >= 0 and t.head != i:
            children.setdefault(t.head, []).append(i)
    has_unknown = any(t.rel_class == UNKNOWN for t in toks)
    results: dict[str, bool] = {}
    root = roots[0] if roots else None
    kids = [toks[j] for j in children.get(root, [])] if root is not None else []
    rt = toks[root] if root is not None else None
    for name in config.checks:
        if name == "single_root":
            ok = len(roots) == 1
        elif name == "verbal_root":
            ok = rt is not None and (rt.pos in _VERB_POS or any(k.rel_class == COP for k in kids))
        elif name == "finite_verb":
            ok = rt is not None and (rt.finite or any(
                k.finite and k.rel_class in (AUX, COP) for k in kids))
        elif name == "subject":
            imperative = rt is not None and (rt.imperative or any(
                k.imperative and k.rel_class in (AUX, COP) for k in kids))
            ok = any(k.rel_class == SUBJECT for k in kids) or (
                config.imperative_exempt and imperative)
        elif name == "no_dep":
            ok = not has_unknown
        else:  # min_tokens
            ok = len(toks) >= config.min_tokens and any(_is_word(t.text, t.pos) for t in toks)
        results[name] = ok
    failed = tuple(n for n in config.checks if not results[n])
    failure = has_unknown and config.dep_is_parser_failure
    if failure and "no_dep" not in failed:
        failed = (*failed, "no_dep")
    n_checks = len(config.checks)
    q = 0.0 if failure else (sum(results.values()) / n_checks if n_checks else 1.0)
    return SentenceVerdict(text, not failed, failed, q, failure)


def _prepare(text: str, config: RuleConfig) -> tuple[str, list[str]]:
    """Clean, truncate and split one generation; returns (judged text, sentences)."""
    text = clean_text(text if isinstance(text, str) else "", config.max_chars)
    if config.truncate:
        text = truncate_text(text)
    if not text.strip():
        return "", []
    if config.split:
        sents = split_sentences(text)
    else:
        sents = [" ".join(text.split())]
    # a "sentence" without a letter or digit (only punctuation/emoji) is nothing to judge
    sents = [x for x in sents if any(ch.isalnum() for ch in x)]
    if config.first_sentence_only:
        sents = sents[:1]
    sents = sents[: config.max_sentences]
    judged = " ".join(sents)
    return judged, sents


def _verdict(judged: str, sverdicts: list[SentenceVerdict], config: RuleConfig) -> Verdict:
    if not sverdicts:
        return Verdict(False, (NO_SENTENCE,), 0.0, -1.0, 0,
                       0.0 if config.mattr_weight > 0 else None, 0, ())
    failed_set = {c for sv in sverdicts for c in sv.failed_checks}
    failed = tuple(c for c in (*CHECKS, PARSER_FAILURE) if c in failed_set)
    n_fail = sum(sv.parser_failure for sv in sverdicts)
    q = sum(sv.q for sv in sverdicts) / len(sverdicts)
    m = mattr(judged, config.mattr_window) if config.mattr_weight > 0 else None
    if n_fail == len(sverdicts):
        return Verdict(False, (*failed, PARSER_FAILURE) if PARSER_FAILURE not in failed
                       else failed, 0.0, -1.0, len(sverdicts), m, n_fail, tuple(sverdicts))
    w = config.mattr_weight
    reward = q if m is None else (1.0 - w) * q + w * m
    reward = max(-1.0, min(1.0, reward))
    passed = all(sv.passed for sv in sverdicts)
    return Verdict(passed, failed, q, reward, len(sverdicts), m, n_fail, tuple(sverdicts))


def judge_parses(texts: Sequence[str], parse_fn: Callable[[Sequence[str]], list[Parse]],
                 config: RuleConfig = RuleConfig()) -> list[Verdict]:
    """Judge texts with any batch parse function (all sentences of all texts in one call)."""
    prepared = [_prepare(t, config) for t in texts]
    flat = [s for _, sents in prepared for s in sents]
    parses = parse_fn(flat) if flat else []
    if len(parses) != len(flat):
        raise RuntimeError(f"oracle returned {len(parses)} parses for {len(flat)} sentences")
    out: list[Verdict] = []
    k = 0
    for judged, sents in prepared:
        svs = [check_parse(p, config) for p in parses[k: k + len(sents)]]
        k += len(sents)
        out.append(_verdict(judged, svs, config))
    return out


def judge(oracle: Oracle, texts: Sequence[str], config: RuleConfig = RuleConfig(),
          progress: Callable[[int, int], None] | None = None, chunk: int = 128
          ) -> list[Verdict]:
    """Judge generations with an oracle: the one code path of evaluation and DPO scoring.

    Args:
        oracle: any :class:`~evalkit.oracles.base.Oracle` (wrap it in
            :class:`~evalkit.oracles.cache.CachedOracle` to reuse parses across runs).
        texts: generations (prompt + continuation).
        config: rule settings.
        progress: ``progress(done, total)`` after every `chunk` texts (parsing is the slow
            part of scoring). Texts are always parsed in chunks of `chunk`, with or without a
            progress callback, so a re-score parses exactly as the run did.
        chunk: texts parsed per call of ``oracle.parse``.

    Returns:
        One :class:`Verdict` per text, in order. Never raises on odd input (empty strings, control
        characters, very long strings): such texts get a verdict like any other.
    """
    out: list[Verdict] = []
    for start in range(0, len(texts), chunk):
        out += judge_parses(texts[start:start + chunk], oracle.parse, config)
        if progress is not None:
            progress(len(out), len(texts))
    return out


def make_reward(oracle: Oracle, config: RuleConfig = RuleConfig()
                ) -> Callable[..., list[float | None]]:
    """A TRL-style reward function ``(completions, prompts=None, **kw) -> list[float]``.

    When ``prompts`` are given, each completion is judged as ``prompt + completion``.
    """

    def reward(completions: Sequence[object], prompts: Sequence[object] | None = None,
               **_: object) -> list[float | None]:
        def as_text(c: object) -> str:
            if isinstance(c, str):
                return c
            if isinstance(c, list) and c and isinstance(c[-1], dict):
                return str(c[-1].get("content", ""))
            return str(c)

        texts = [as_text(c) for c in completions]
        if prompts is not None:
            texts = [as_text(p) + t for p, t in zip(prompts, texts, strict=True)]
        return [v.reward for v in judge(oracle, texts, config)]

    return reward


def parse_success(verdicts: Sequence[Verdict]) -> float:
    """PS: fraction of generations that pass (0 for no generations)."""
    return sum(v.passed for v in verdicts) / len(verdicts) if verdicts else 0.0


def parse_score(verdicts: Sequence[Verdict], over: str = "all") -> float:
    """Parse score = PS × mean q, q averaged over ``"all"`` generations or the ``"passing"``
    ones."""
    if not verdicts:
        return 0.0
    pool = verdicts if over == "all" else [v for v in verdicts if v.passed]
    if over not in ("all", "passing"):
        raise ValueError("over must be 'all' or 'passing'")
    mean_q = sum(v.q for v in pool) / len(pool) if pool else 0.0
    return parse_success(verdicts) * mean_q


@dataclass(frozen=True, slots=True)
class ParseStats:
    """Point estimates over one set of verdicts (one model, one oracle, one seed).

    Attributes:
        ps: parse success, the share of generations that pass.
        parse_score: PS × mean q.
        mean_q: mean q over all generations.
        mean_reward: mean reward over all generations.
        complete_share: share of generations with at least one complete sentence judged.
        mattr: mean MATTR over those, or None when the MATTR term is off.
        n: generations.
    """

    ps: float
    parse_score: float
    mean_q: float
    mean_reward: float
    complete_share: float
    mattr: float | None
    n: int


def parse_stats(verdicts: Sequence[Verdict], over: str = "all") -> ParseStats:
    """The parse-success evaluation of a set of verdicts (``nb_parse``'s per-seed numbers and
    the Δ-DPO loop's evaluation both come from here); `over` as in :func:`parse_score`."""
    n = len(verdicts)
    complete = [v for v in verdicts if v.n_sentences > 0]
    mattrs = [v.mattr for v in complete if v.mattr is not None]
    return ParseStats(
        ps=parse_success(verdicts), parse_score=parse_score(verdicts, over),
        mean_q=sum(v.q for v in verdicts) / n if n else 0.0,
        mean_reward=sum(v.reward for v in verdicts) / n if n else 0.0,
        complete_share=len(complete) / n if n else 0.0,
        mattr=sum(mattrs) / len(mattrs) if mattrs else None, n=n)
