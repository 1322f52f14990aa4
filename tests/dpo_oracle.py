"""A word-rule oracle for the DPO and reward tests (stand-in until oracles/fake.py lands).

A token that is in FINITE, or any word ending in "r" (Bokmål present tense), is a finite verb;
the first one is the root and the word before it its subject. No verb → a noun root (fails).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from evalkit.oracles.base import Parse, Token, ud_rel_class

FINITE = {"er", "var", "har", "løper", "liker", "spiser", "går", "ser", "kommer"}
_TOK = re.compile(r"\w+|[^\w\s]")


class WordOracle:
    """Deterministic, dependency-free oracle with the `Oracle` protocol."""

    name = "test-words"
    model_hash = "0"

    def __init__(self, lenient: bool = True) -> None:
        self.lenient = lenient
        self.calls = 0

    def _finite(self, w: str) -> bool:
        return w.lower() in FINITE or (self.lenient and len(w) > 2 and w.endswith("r"))

    def parse(self, texts: Sequence[str]) -> list[Parse]:
        self.calls += 1
        out = []
        for text in texts:
            words = _TOK.findall(text)
            verbs = [i for i, w in enumerate(words) if self._finite(w)]
            root = verbs[0] if verbs else 0
            toks = []
            for i, w in enumerate(words):
                if i == root:
                    rel, head = "root", -1
                elif not w[0].isalnum():
                    rel, head = "punct", root
                elif verbs and i == root - 1:
                    rel, head = "nsubj", root
                else:
                    rel, head = "obj", root
                pos = ("VERB" if i == root and verbs else "PUNCT" if not w[0].isalnum()
                       else "NOUN")
                toks.append(Token(w, head, rel, ud_rel_class(rel), pos,
                                  finite=i == root and bool(verbs)))
            out.append(Parse(tuple(toks), "ud"))
        return out


def register() -> None:
    """Make the oracle available to configs as `test-words` (idempotent)."""
    from evalkit.registry import ORACLES

    if "test-words" not in ORACLES.names():
        ORACLES.add("test-words", WordOracle, "word-rule oracle for tests")
