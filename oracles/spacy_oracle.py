"""spaCy oracle: evalkit's default *training* oracle (SAGA uses spaCy for the reward).

By default it loads the pipeline shipped in ``oracles/models/spacy-nb-ndt`` (trained from the
mirror by ``python -m evalkit.oracles.train.build_spacy``; NDT labels). Any installed spaCy
pipeline (``nb_core_news_sm/md/lg``, UD labels) or a path can be asked for instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from evalkit.oracles.base import ROOT, Parse, Token, rel_class, safe_text

__all__ = ["DEFAULT_SPACY_MODEL", "SpacyOracle", "doc_to_parse", "hash_model_dir"]

DEFAULT_SPACY_MODEL = Path(__file__).resolve().parent / "models" / "spacy-nb-ndt"
_VERBISH = frozenset({"VERB", "AUX"})


def hash_model_dir(path: Path) -> str:
    """A short sha256 over every file (name + bytes) of a model directory."""
    h = hashlib.sha256()
    for f in sorted(p for p in Path(path).rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def detect_scheme(labels: Iterable[str]) -> str:
    """``"ud"`` when the parser's labels look like UD (``nsubj``), else ``"ndt"``."""
    return "ud" if any(lab.lower().startswith("nsubj") for lab in labels) else "ndt"


def doc_to_parse(doc: Any, scheme: str) -> Parse:
    """Convert a parsed spaCy ``Doc`` to the scheme-independent view."""
    toks = []
    for t in doc:
        i = t.i
        hi = t.head.i
        pos = t.pos_
        dep = t.dep_
        if hi == i:
            head, cls = -1, ROOT
        else:
            head, cls = hi, rel_class(dep, scheme)
        finite = imperative = False
        if pos in _VERBISH or t.tag_ in _VERBISH:
            vf = t.morph.get("VerbForm")
            finite = "Fin" in vf
            imperative = "Imp" in t.morph.get("Mood")
        toks.append(Token(t.text, head, dep, cls, pos, finite, imperative))
    return Parse(tuple(toks), scheme)


class SpacyOracle:
    """A batch parser over a spaCy pipeline (``nlp.pipe`` with ``batch_size`` / ``n_process``).

    Each input string is parsed as its own ``Doc`` (callers pass one sentence per string); if the
    parser still finds several roots, the Parse has several roots and the rule's single-root
    check fails.
    """

    def __init__(self, model: str | Path | None = None, *, batch_size: int = 256,
                 n_process: int = 1, name: str | None = None) -> None:
        """Load the pipeline.

        Args:
            model: a directory, an installed package name (``nb_core_news_sm``), or None for the
                shipped ``spacy-nb-ndt`` model.
            batch_size: ``nlp.pipe`` batch size.
            n_process: ``nlp.pipe`` worker processes (2 helps on 2 cores for large batches).
            name: oracle id (default ``spacy-<model name>``); part of the cache key.
        """
        import spacy

        model = DEFAULT_SPACY_MODEL if model is None else model
        self.nlp = spacy.load(model, exclude=["ner", "lemmatizer", "senter", "tok2vec_ner"])
        path = Path(str(model)) if Path(str(model)).exists() else Path(
            spacy.util.get_package_path(str(model)))
        self.model_path = path
        self.model_hash = hash_model_dir(path)
        meta_name = self.nlp.meta.get("name", "model")
        base = path.name if path.exists() else str(meta_name)
        self.name = name or (base if base.startswith("spacy") else f"spacy-{base}")
        parser: Any = self.nlp.get_pipe("parser")  # typed as a bare callable by spaCy
        self.scheme = detect_scheme(parser.labels)
        self.batch_size = batch_size
        self.n_process = n_process
        self.versions = {"spacy": spacy.__version__, "model": str(self.nlp.meta.get("version"))}

    def parse(self, texts: Sequence[str]) -> list[Parse]:
        """Parse each text into one :class:`~evalkit.oracles.base.Parse`."""
        scheme = self.scheme
        return [doc_to_parse(doc, scheme) for doc in self.nlp.pipe(
            [safe_text(t) for t in texts], batch_size=self.batch_size,
            n_process=self.n_process)]

    def parse_tokens(self, sentences: Sequence[Sequence[str]]) -> list[Parse]:
        """Parse pre-tokenized sentences (gold tokenization, for UAS/LAS)."""
        from spacy.tokens import Doc

        docs = (Doc(self.nlp.vocab, words=list(words)) for words in sentences)
        return [doc_to_parse(doc, self.scheme)
                for doc in self.nlp.pipe(docs, batch_size=self.batch_size)]
