"""A deterministic, dependency-free oracle for tests of code that uses oracles.

It "parses" with a tiny lexicon: the first known finite verb is the root, the word right before
it (if any) its subject, everything else hangs off the root. Texts in ``bad`` get a verbless
parse, texts in ``broken`` a ``dep`` label (a parser failure). Labels are UD.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from evalkit.oracles.base import OTHER, PUNCT, ROOT, SUBJECT, UNKNOWN, Parse, Token, simple_tokenize

__all__ = ["FakeOracle"]

FINITE_VERBS = frozenset(
    "er var har hadde kan kunne skal skulle vil ville må måtte blir ble får fikk går gikk "
    "kommer kom liker likte sier sa ser så gjør gjorde tar tok gir ga finnes fins bor bodde "
    "heter het synes syntes spiser spiste leser leste skriver skrev drikker drakk".split())
IMPERATIVES = frozenset("kom gå se ta gi les skriv spis drikk hør vent".split())


class FakeOracle:
    """Deterministic stand-in for a real parser (UD labels, no model files)."""

    name = "fake"
    model_hash = "fake-v1"

    def __init__(self, bad: Iterable[str] = (), broken: Iterable[str] = ()) -> None:
        """Texts in ``bad`` parse without a verb; texts in ``broken`` contain a ``dep`` arc."""
        self.bad = {b.strip() for b in bad}
        self.broken = {b.strip() for b in broken}
        self.calls = 0

    def _parse_one(self, text: str) -> Parse:
        words = simple_tokenize(text)
        if not words:
            return Parse((), "ud")
        lower = [w.lower() for w in words]
        root = next((i for i, w in enumerate(lower) if w in FINITE_VERBS), None)
        imperative = lower[0] in IMPERATIVES and text.rstrip().endswith("!")
        if imperative:
            root = 0
        if text.strip() in self.bad:
            root = None
        if root is None:
            toks = [Token(w, -1 if i == 0 else 0, "root" if i == 0 else "nmod",
                          ROOT if i == 0 else OTHER, "NOUN") for i, w in enumerate(words)]
            return Parse(tuple(toks), "ud")
        toks = []
        for i, w in enumerate(words):
            punct = not any(ch.isalnum() for ch in w)
            if i == root:
                toks.append(Token(w, -1, "root", ROOT, "VERB", True, imperative))
            elif punct:
                toks.append(Token(w, root, "punct", PUNCT, "PUNCT"))
            elif i == root - 1:
                toks.append(Token(w, root, "nsubj", SUBJECT, "PRON"))
            else:
                toks.append(Token(w, root, "obl", OTHER, "NOUN"))
        if text.strip() in self.broken:
            last = toks[-1]
            toks[-1] = Token(last.text, last.head, "dep", UNKNOWN, last.pos)
        return Parse(tuple(toks), "ud")

    def parse(self, texts: Sequence[str]) -> list[Parse]:
        """One deterministic Parse per text."""
        self.calls += 1
        return [self._parse_one(t) for t in texts]
