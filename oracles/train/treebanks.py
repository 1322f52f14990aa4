"""Read NDT (CoNLL-X) and UD Bokmål (CoNLL-U) from the mirror and make leak-free splits.

NDT (``ndt_nob/``) holds the same sentences as UD Bokmål train+dev+test, in NDT's own labels. UD
train is not in the mirror, so evalkit trains on NDT and keeps NDT's labels (mapped to the
scheme-independent view by :mod:`evalkit.oracles.base`). Splits, by token string:

* ``train``: NDT sentences that are neither a UD dev nor a UD test sentence;
* ``dev``:   NDT sentences equal to a UD dev sentence (early stopping / model selection);
* ``test``:  NDT sentences equal to a UD test sentence (held-out gold in NDT labels).

The UD test file itself is the held-out gold in UD labels. No treebank text is written into the
repository: intermediate files go under ``$EVALKIT_CACHE/build`` (default ``~/.cache/evalkit``).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from evalkit.oracles.base import ndt_feats_to_ud, ndt_upos

__all__ = ["GoldSentence", "build_dir", "mirror", "ndt_splits", "read_conllu", "read_ndt",
           "to_conllu"]


@dataclass(frozen=True, slots=True)
class GoldSentence:
    """A gold tree: parallel tuples, heads 1-based with 0 = root (CoNLL convention)."""

    forms: tuple[str, ...]
    upos: tuple[str, ...]
    xpos: tuple[str, ...]
    feats: tuple[str, ...]
    heads: tuple[int, ...]
    rels: tuple[str, ...]
    text: str | None = None

    @property
    def key(self) -> str:
        """Token string used to match sentences across NDT and UD."""
        return " ".join(self.forms)


def mirror() -> Path:
    """The data mirror, found as everywhere else (`evalkit.data.resolve_data_dir`)."""
    from evalkit.data import resolve_data_dir

    return resolve_data_dir(purpose="building or validating an oracle")


def build_dir() -> Path:
    """Where intermediate (treebank-derived) build files go; never inside the repository."""
    from evalkit.paths import cache_dir

    path = cache_dir() / "build"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _blocks(lines: Iterator[str]) -> Iterator[list[str]]:
    block: list[str] = []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if block:
                yield block
            block = []
        else:
            block.append(line)
    if block:
        yield block


def read_ndt(path: Path | None = None) -> list[GoldSentence]:
    """All NDT Bokmål sentences (CoNLL-X, 232 files, sorted by name), FEATS/UPOS mapped to UD."""
    root = path or mirror() / "ndt_nob"
    out: list[GoldSentence] = []
    for f in sorted(root.glob("*.conll.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            for block in _blocks(fh):
                rows = [ln.split("\t") for ln in block]
                out.append(GoldSentence(
                    forms=tuple(r[1] for r in rows),
                    upos=tuple(ndt_upos(r[3], r[5]) for r in rows),
                    xpos=tuple(r[4] for r in rows),
                    feats=tuple(ndt_feats_to_ud(r[3], r[5]) for r in rows),
                    heads=tuple(int(r[6]) for r in rows),
                    rels=tuple(r[7] for r in rows),
                ))
    return out


def read_conllu(path: Path) -> list[GoldSentence]:
    """A CoNLL-U file (multiword-token and empty-node lines are skipped)."""
    out: list[GoldSentence] = []
    with open(path, encoding="utf-8") as fh:
        for block in _blocks(fh):
            text = None
            rows = []
            for ln in block:
                if ln.startswith("#"):
                    if ln.startswith("# text = "):
                        text = ln[len("# text = "):]
                    continue
                cols = ln.split("\t")
                if "-" in cols[0] or "." in cols[0]:
                    continue
                rows.append(cols)
            out.append(GoldSentence(
                forms=tuple(r[1] for r in rows), upos=tuple(r[3] for r in rows),
                xpos=tuple(r[4] for r in rows), feats=tuple(r[5] for r in rows),
                heads=tuple(int(r[6]) for r in rows), rels=tuple(r[7] for r in rows), text=text,
            ))
    return out


def ud_file(split: str) -> Path:
    """Path of the UD Bokmål ``dev`` or ``test`` file in the mirror."""
    return mirror() / "UD_Norwegian-Bokmaal" / f"no_bokmaal-ud-{split}.conllu"


def ndt_splits() -> dict[str, list[GoldSentence]]:
    """NDT split into train / dev / test by matching UD dev and test token strings."""
    dev_keys = {s.key for s in read_conllu(ud_file("dev"))}
    test_keys = {s.key for s in read_conllu(ud_file("test"))}
    splits: dict[str, list[GoldSentence]] = {"train": [], "dev": [], "test": []}
    for s in read_ndt():
        if s.key in test_keys:
            splits["test"].append(s)
        elif s.key in dev_keys:
            splits["dev"].append(s)
        else:
            splits["train"].append(s)
    return splits


def to_conllu(sents: list[GoldSentence], path: Path) -> Path:
    """Write gold sentences as CoNLL-U (for Stanza), with a ``# text`` line from the forms."""
    with open(path, "w", encoding="utf-8") as fh:
        for i, s in enumerate(sents):
            fh.write(f"# sent_id = {i}\n# text = {s.text or s.key}\n")
            for j, cols in enumerate(zip(s.forms, s.upos, s.xpos, s.feats, s.heads, s.rels,
                                         strict=True)):
                form, upos, xpos, feats, head, rel = cols
                fh.write(f"{j + 1}\t{form}\t_\t{upos}\t{xpos}\t{feats}\t{head}\t{rel}\t_\t_\n")
            fh.write("\n")
    return path
