"""Oracle interface and a scheme-independent view of dependency parses.

An oracle is a batch parser: ``parse(texts) -> list[Parse]``, one :class:`Parse` per input string.
Each token of a parse carries, besides its raw label, a *relation class* and a *POS class* so that
the well-formedness rule (``evalkit.oracles.rule``) is written once and applies equally to parses in
Universal Dependencies labels (UD) and in the Norwegian Dependency Treebank's own labels (NDT).

This module imports nothing heavy: spaCy and Stanza are imported inside the oracle constructors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

__all__ = [
    "NDT_POS_TO_UPOS",
    "REL_CLASSES",
    "Oracle",
    "Parse",
    "Token",
    "finite_from_feats",
    "imperative_from_feats",
    "ndt_feats_to_ud",
    "ndt_rel_class",
    "ndt_upos",
    "parse_from_columns",
    "parse_from_json",
    "parse_to_json",
    "rel_class",
    "simple_tokenize",
    "ud_rel_class",
]

# Relation classes of the scheme-independent view.
ROOT, SUBJECT, FINITE_VERB, AUX, COP, PUNCT, UNKNOWN, OTHER = (
    "root", "subject", "finite-verb", "aux", "cop", "punct", "unknown", "other",
)
REL_CLASSES = (ROOT, SUBJECT, FINITE_VERB, AUX, COP, PUNCT, UNKNOWN, OTHER)


class Token(NamedTuple):
    """One token of a parse, in the scheme-independent view (a NamedTuple: immutable and cheap
    to build, which matters for parse-cache hits and oracle throughput).

    Attributes:
        text: surface form.
        head: 0-based index of the head token; -1 for a root.
        rel: the raw relation label as the parser produced it (``nsubj``, ``SUBJ``, ``dep`` ...).
        rel_class: one of :data:`REL_CLASSES` (``root`` for every token whose head is -1).
        pos: a UPOS tag (NDT tags are mapped to UPOS, see :data:`NDT_POS_TO_UPOS`).
        finite: the token is a finite verb form (UD ``VerbForm=Fin``; NDT
            ``pres``/``pret``/``imp``).
        imperative: the token is an imperative (UD ``Mood=Imp``; NDT ``imp``).
    """

    text: str
    head: int
    rel: str
    rel_class: str
    pos: str
    finite: bool = False
    imperative: bool = False


@dataclass(frozen=True, slots=True)
class Parse:
    """The parse of one input string (usually one sentence; a parser may still find several roots).

    Attributes:
        tokens: the tokens in order.
        scheme: ``"ud"`` or ``"ndt"``: which label set ``Token.rel`` uses.
    """

    tokens: tuple[Token, ...]
    scheme: str

    @property
    def roots(self) -> list[int]:
        """Indices of the tokens without a head."""
        return [i for i, t in enumerate(self.tokens) if t.head < 0]

    def children(self, i: int) -> list[int]:
        """Indices of the dependents of token ``i``."""
        return [j for j, t in enumerate(self.tokens) if t.head == i and j != i]


#: longest text an oracle parses (characters); the rule's `clean_text` caps judged texts the
#: same way.
MAX_PARSE_CHARS = 20_000
#: longest run without whitespace a parser sees: spaCy's tokenizer re-scans a chunk for every
#: prefix/suffix it splits off, so one 12,000-character run of punctuation took minutes
#: (quadratic); no word of a real sentence is this long, and a space is inserted every
#: MAX_RUN_CHARS characters of such a run, which keeps the work per string linear.
MAX_RUN_CHARS = 100
_LONG_RUN = re.compile(rf"\S{{{MAX_RUN_CHARS + 1},}}")


def safe_text(text: str) -> str:
    """`text` as something every parser accepts in bounded time: lone UTF-16 surrogates (not
    encodable as UTF-8) become U+FFFD, the length is capped at :data:`MAX_PARSE_CHARS`, and
    whitespace-free runs are broken every :data:`MAX_RUN_CHARS` characters."""
    text = text[:MAX_PARSE_CHARS]
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return _LONG_RUN.sub(lambda m: " ".join(m.group(0)[i:i + MAX_RUN_CHARS] for i in
                                            range(0, len(m.group(0)), MAX_RUN_CHARS)), text)


@runtime_checkable
class Oracle(Protocol):
    """A batch dependency parser that evalkit can judge generations with.

    Attributes:
        name: a stable id such as ``"spacy-nb-ndt"``; part of the cache key.
        model_hash: a hash of the model files; part of the cache key, so retraining invalidates.
    """

    name: str
    model_hash: str

    def parse(self, texts: Sequence[str]) -> list[Parse]:
        """Parse each text (one sentence each, already split) and return one Parse per text."""
        ...


# --------------------------------------------------------------------------------------------
# Label mappers
# --------------------------------------------------------------------------------------------

_UD_SUBJECT = frozenset({"nsubj", "nsubj:pass", "csubj", "expl"})
_UD_MAP = {"aux": AUX, "aux:pass": AUX, "cop": COP, "punct": PUNCT, "dep": UNKNOWN, "": UNKNOWN}


def ud_rel_class(rel: str, subject_rels: frozenset[str] = _UD_SUBJECT) -> str:
    """Map a UD relation label to its relation class (root is decided by the head, not here).

    Args:
        rel: a UD label such as ``nsubj:pass``; spaCy's ``ROOT`` and UD's ``root`` both map to root.
        subject_rels: labels counted as subjects (check 4 of `evalkit.oracles.rule`).
    """
    low = rel.lower()
    if low == "root":
        return ROOT
    if low in subject_rels:
        return SUBJECT
    return _UD_MAP.get(low, OTHER)


# NDT: the finite verb heads the clause (auxiliaries and copulas are heads, not dependents), the
# subject (SUBJ), formal subject (FSUBJ, UD expl) and logical subject in expletive clauses (PSUBJ)
# hang off it. IK/IP are internal/final punctuation. NDT has no ``dep``; spaCy's fallback does.
_NDT_MAP = {
    "SUBJ": SUBJECT, "FSUBJ": SUBJECT, "PSUBJ": SUBJECT,
    "FINV": FINITE_VERB, "IK": PUNCT, "IP": PUNCT,
    "DEP": UNKNOWN, "": UNKNOWN, "ROOT": ROOT,
}


def ndt_rel_class(rel: str) -> str:
    """Map an NDT function label (``SUBJ``, ``FINV``, ``IP`` ...) to its relation class."""
    return _NDT_MAP.get(rel.upper(), OTHER)


def rel_class(rel: str, scheme: str) -> str:
    """Map ``rel`` of the given scheme (``"ud"`` or ``"ndt"``) to its relation class."""
    return ndt_rel_class(rel) if scheme == "ndt" else ud_rel_class(rel)


NDT_POS_TO_UPOS: Mapping[str, str] = {
    "subst": "NOUN", "verb": "VERB", "prep": "ADP", "adj": "ADJ", "pron": "PRON", "det": "DET",
    "adv": "ADV", "konj": "CCONJ", "sbu": "SCONJ", "inf-merke": "PART", "interj": "INTJ",
    "ukjent": "X", "symb": "SYM", "clb": "PUNCT", "<komma>": "PUNCT", "<strek>": "PUNCT",
    "<anf>": "PUNCT", "<parentes-beg>": "PUNCT", "<parentes-slutt>": "PUNCT",
}


def ndt_upos(pos: str, feats: str = "") -> str:
    """Map an NDT POS tag (+ its features) to UPOS; proper nouns and quantifiers get PROPN/NUM."""
    upos = NDT_POS_TO_UPOS.get(pos, "X")
    parts = feats.split("|")
    if upos == "NOUN" and "prop" in parts:
        return "PROPN"
    if upos == "DET" and "kvant" in parts:
        return "NUM"
    return upos


def ndt_feats_to_ud(pos: str, feats: str) -> str:
    """Translate the NDT verb features evalkit needs into UD FEATS (``_`` when none apply).

    Only finiteness, mood, tense and voice are carried over: the rule needs nothing else.
    """
    if pos != "verb":
        return "_"
    parts = set(feats.split("|"))
    out: dict[str, str] = {}
    if "pres" in parts or "pret" in parts:
        out.update(Mood="Ind", Tense="Pres" if "pres" in parts else "Past", VerbForm="Fin")
    elif "imp" in parts:
        out.update(Mood="Imp", VerbForm="Fin")
    elif "inf" in parts:
        out["VerbForm"] = "Inf"
    elif "perf-part" in parts or "pres-part" in parts:
        out["VerbForm"] = "Part"
    if "pass" in parts:
        out["Voice"] = "Pass"
    return "|".join(f"{k}={v}" for k, v in sorted(out.items())) or "_"


def finite_from_feats(feats: str) -> bool:
    """True when a UD FEATS string marks a finite verb (``VerbForm=Fin``)."""
    return "VerbForm=Fin" in feats.split("|")


def imperative_from_feats(feats: str) -> bool:
    """True when a UD FEATS string marks an imperative (``Mood=Imp``)."""
    return "Mood=Imp" in feats.split("|")


# --------------------------------------------------------------------------------------------
# Compact serialisation (for the parse cache)
# --------------------------------------------------------------------------------------------


def parse_to_json(parse: Parse) -> str:
    """Serialise a Parse compactly (one array per token)."""
    rows = [[t.text, t.head, t.rel, t.rel_class, t.pos, bool(t.finite), bool(t.imperative)]
            for t in parse.tokens]
    return json.dumps([parse.scheme, rows], ensure_ascii=False, separators=(",", ":"))


def parse_from_json(data: str) -> Parse:
    """Inverse of :func:`parse_to_json`."""
    scheme, rows = json.loads(data)
    new = tuple.__new__  # C-level construction: cache hits must stay far cheaper than parsing
    return Parse(tuple([new(Token, r) for r in rows]), scheme)


# --------------------------------------------------------------------------------------------
# A rule-based Bokmål word tokenizer (for parsers fed pre-tokenized text, e.g. Stanza)
# --------------------------------------------------------------------------------------------

_TOKEN_ABBREVIATIONS = frozenset(
    "f.eks bl.a dvs ca nr kl osv mv jf pga evt inkl ekskl mill mrd kr stk dr prof hr st nb ref mht "
    "vedr ifm iflg tlf adr etc vs o.l m.m m.fl t.o.m f.o.m sen adm dir kap fig red utg".split())


def simple_tokenize(text: str) -> list[str]:
    """Split a Bokmål sentence into word tokens (UD/NDT-like: punctuation separate).

    Numbers keep internal ``.,:`` (``3,5``, ``12.30``); hyphenated words stay whole; a final
    period attaches to a known abbreviation (``f.eks.``) or a capital initial unless it ends
    the sentence.
    """
    import re

    raw = re.findall(r"\d+(?:[.,:]\d+)*|\w+(?:[-'’.]\w+)*|\.\.\.|[^\w\s]", text)
    out: list[str] = []
    for i, tok in enumerate(raw):
        last = i == len(raw) - 1
        if tok == "." and out and not last and (
                out[-1].lower() in _TOKEN_ABBREVIATIONS
                or (len(out[-1]) == 1 and out[-1].isalpha() and out[-1].isupper())):
            out[-1] += "."
            continue
        out.append(tok)
    return out


def parse_from_columns(forms: Sequence[str], upos: Sequence[str], feats: Sequence[str],
                       heads: Sequence[int], rels: Sequence[str], scheme: str) -> Parse:
    """Build a Parse from CoNLL columns (heads 1-based, 0 = root), e.g. a gold tree.

    ``feats`` are UD FEATS strings (NDT features first go through :func:`ndt_feats_to_ud`).
    """
    toks = []
    for form, pos, ft, h, rel in zip(forms, upos, feats, heads, rels, strict=True):
        cls = ROOT if h == 0 else rel_class(rel, scheme)
        toks.append(Token(form, h - 1, rel, cls, pos, finite_from_feats(ft),
                          imperative_from_feats(ft)))
    return Parse(tuple(toks), scheme)
