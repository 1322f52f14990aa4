"""The embedded model's training text and held-out sets, read from the mirror through the data
layer (:class:`evalkit.data.DataLayer`, which records every file's sha256).

* Bokmål: NDT sentences (CoNLL-X FORM column, detokenised) **minus** every sentence of UD Bokmål
  dev/test, ``nob_sentences/`` and the gullkorpus (compared with all whitespace removed), which
  stay held out for evaluation;
* translation pairs in the FLORES task's prompt format from FLORES-200 **dev** only (eng↔nob,
  eng↔eus, both directions) and Tatoeba eng–nob (one direction per pair, drawn with the seed);
  1 in ``CHAT_SHARE`` pairs is rendered through the chat template instead;
* Basque: UD Basque-BDT **train** (v1.4, detokenised from FORM; the file has no ``# text``
  lines) minus any sentence of UD Basque dev/test.

FLORES devtest and NTREX are never read.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.data import DataLayer, resolve_data_dir
from evalkit.embedded.recipe import CHAT_SHARE, DEFAULT_SEED, TRANSLATION_LANGS, flores_prompt
from evalkit.errors import DataNotFound

#: mirror folders the recipe cannot do without
REQUIRED_DATA = ("ndt_nob", "UD_Norwegian-Bokmaal", "flores200/dev")

_NO_SPACE_BEFORE = {",", ".", ":", ";", "!", "?", ")", "]", "}", "»", "%", "...", "…"}
_NO_SPACE_AFTER = {"(", "[", "{", "«"}


def mirror(data_dir: Path | str | None = None) -> Path:
    """The data mirror for a build (the data layer's resolver, with the recipe's folders)."""
    return resolve_data_dir(data_dir, REQUIRED_DATA, purpose="building the default model")


def detokenize(forms: list[str]) -> str:
    """Join treebank tokens into running text (quotes paired, punctuation attached)."""
    out: list[str] = []
    glue_next = True  # no space before the first token
    open_quote = False
    for tok in forms:
        if tok == "|":  # NDT headline marker, never part of the text
            continue
        space = not glue_next
        glue_next = False
        if tok in _NO_SPACE_BEFORE:
            space = False
        elif tok == "/":
            space, glue_next = False, True
        elif tok in _NO_SPACE_AFTER:
            glue_next = True
        elif tok == '"':
            if open_quote:
                space = False
            else:
                glue_next = True
            open_quote = not open_quote
        if space and out:
            out.append(" ")
        out.append(tok)
    return "".join(out).strip()


def squash(text: str) -> str:
    """Comparison key: all whitespace removed."""
    return "".join(text.split())


def conll_sentences(lines: list[str]) -> Iterator[list[str]]:
    """FORM columns of CoNLL-X/CoNLL-U sentences (multiword-token ranges, empty nodes skipped)."""
    forms: list[str] = []
    for line in lines:
        if not line.strip():
            if forms:
                yield forms
            forms = []
            continue
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) < 2 or "-" in cols[0] or "." in cols[0]:
            continue
        forms.append(cols[1])
    if forms:
        yield forms


def conllu_texts(lines: list[str]) -> list[str]:
    """The ``# text = `` lines of a CoNLL-U file."""
    return [ln[len("# text = "):].strip() for ln in lines if ln.startswith("# text = ")]


@dataclass
class Corpus:
    """Training documents and held-out evaluation text."""

    docs: list[tuple[str, str]] = field(default_factory=list)  # (source, text)
    chat_docs: list[tuple[str, str]] = field(default_factory=list)  # (user, assistant)
    val_texts: list[str] = field(default_factory=list)  # UD Bokmål dev (validation loss)
    test_texts: list[str] = field(default_factory=list)  # UD Bokmål test (reported perplexity)
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    stats: dict[str, Any] = field(default_factory=dict)

    def digest(self) -> str:
        """sha256 of the training documents and held-out sets: identifies the assembled text
        (detokenisation, filtering and prompt format included), not only the input files."""
        blob = json.dumps([self.docs, self.chat_docs, self.val_texts, self.test_texts],
                          ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()


def _lines(data: DataLayer, rel: str) -> list[str]:
    # split on line feeds only, as the files are written (str.splitlines would also split on
    # U+2028 and friends inside a sentence)
    return data.read_text(rel).split("\n")


def _rels(data: DataLayer, folder: str, pattern: str) -> list[str]:
    assert data.data_dir is not None
    base = Path(data.data_dir)
    return [str(p.relative_to(base)) for p in sorted((base / folder).glob(pattern))]


def load_corpus(data_dir: Path | str | DataLayer | None = None, *, seed: int = DEFAULT_SEED,
                limit: int | None = None) -> Corpus:
    """Read the training mix and the held-out sets from the mirror.

    ``limit`` caps every source (sentences or pairs per file group), for tests.
    """
    data = data_dir if isinstance(data_dir, DataLayer) else DataLayer(mirror(data_dir),
                                                                      allow_hub=False)
    rng = random.Random(seed)
    c = Corpus()

    def cap(items: list) -> list:
        return items if limit is None else items[:limit]

    # held-out Bokmål: UD dev/test text lines, nob_sentences, gullkorpus
    ud = "UD_Norwegian-Bokmaal"
    ud_dev = conllu_texts(_lines(data, f"{ud}/no_bokmaal-ud-dev.conllu"))
    ud_test = conllu_texts(_lines(data, f"{ud}/no_bokmaal-ud-test.conllu"))
    held = {squash(t) for t in ud_dev + ud_test}
    if data.exists(f"{ud}/gullkorpus2023_ud.conllu"):
        held |= {squash(t) for t in conllu_texts(_lines(data, f"{ud}/gullkorpus2023_ud.conllu"))}
    for rel in _rels(data, "nob_sentences", "*.txt"):
        held |= {squash(t) for t in _lines(data, rel) if t.strip()}
    c.val_texts = cap(ud_dev)
    c.test_texts = cap(ud_test)

    # Bokmål monolingual: NDT minus held-out
    nob: list[str] = []
    dropped = 0
    ndt_files = _rels(data, "ndt_nob", "*.conll.gz")
    if not ndt_files:
        raise DataNotFound(f"data mirror {data.data_dir} has no ndt_nob/*.conll.gz")
    for rel in ndt_files:
        for forms in conll_sentences(_lines(data, rel)):
            if squash("".join(f for f in forms if f != "|")) in held:
                dropped += 1
                continue
            text = detokenize(forms)
            if text:
                nob.append(text)
    nob = cap(nob)
    c.docs += [("ndt_nob", t) for t in nob]
    c.stats["ndt_sentences"] = len(nob)
    c.stats["ndt_dropped_heldout"] = dropped

    # Basque monolingual: UD Basque-BDT train (v1.4) minus UD Basque dev/test
    eus_train = "ud/UD_Basque-BDT/eu-ud-train.v1.4.conllu"
    eus: list[str] = []
    if data.exists(eus_train):
        eus_held: set[str] = set()
        for rel in _rels(data, "UD_Basque-BDT", "*.conllu"):
            eus_held |= {squash(t) for t in conllu_texts(_lines(data, rel))}
        for forms in conll_sentences(_lines(data, eus_train)):
            if squash("".join(forms)) not in eus_held:
                eus.append(detokenize(forms))
    eus = cap(eus)
    c.docs += [("ud_eus_train", t) for t in eus]
    c.stats["eus_sentences"] = len(eus)

    # translation pairs: FLORES-200 dev (never devtest), Tatoeba eng-nob
    pairs: list[tuple[str, str, str, str, str]] = []  # source, src_lang, tgt_lang, src, tgt
    flores = {code: cap(_lines(data, f"flores200/dev/{code}.dev.gz"))
              for code in TRANSLATION_LANGS}
    eng = TRANSLATION_LANGS[0]
    for other in TRANSLATION_LANGS[1:]:
        for a, b in zip(flores[eng], flores[other]):
            if a.strip() and b.strip():
                pairs.append(("flores_dev", eng, other, a, b))
                pairs.append(("flores_dev", other, eng, b, a))
    tat_eng = _rels(data, "tatoeba_eng-nob", "*.eng-nob.eng")
    tat_nob = _rels(data, "tatoeba_eng-nob", "*.eng-nob.nob")
    if tat_eng and tat_nob:
        for a, b in zip(cap(_lines(data, tat_eng[0])), cap(_lines(data, tat_nob[0]))):
            if a.strip() and b.strip():
                if rng.random() < 0.5:
                    pairs.append(("tatoeba", "eng_Latn", "nob_Latn", a, b))
                else:
                    pairs.append(("tatoeba", "nob_Latn", "eng_Latn", b, a))
    n_chat = 0
    for i, (source, sl, tl, s, t) in enumerate(pairs):
        if i % CHAT_SHARE == CHAT_SHARE - 1:
            c.chat_docs.append((flores_prompt(sl, tl, s), t))
            n_chat += 1
        else:
            c.docs.append((source, flores_prompt(sl, tl, s, t)))
    c.stats["translation_pairs"] = len(pairs)
    c.stats["translation_pairs_chat"] = n_chat
    c.stats["val_sentences"] = len(c.val_texts)
    c.stats["test_sentences"] = len(c.test_texts)
    c.files = dict(data.hashes)
    return c
