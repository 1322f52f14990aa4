"""Stanza oracle: evalkit's default *held-out evaluator* (a different parser from the reward's).

Loads fully offline: ``download_method=None``, a ``resources.json`` containing ``{}`` in the
model directory, ``allow_unknown_language=True`` and explicit model paths.
Input is pre-tokenized by :func:`evalkit.oracles.base.simple_tokenize` and pre-segmented (one
sentence per input string), processed in capped bulk batches with one torch thread per process.

The shipped model (``oracles/models/stanza-nb-ndt``: ``tagger.pt`` + ``parser.pt``, NDT labels,
no pretrained vectors) is built by ``python -m evalkit.oracles.train.build_stanza``. An official
Stanza ``nb`` install (UD labels) is used when asked for with ``model="nb"``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.oracles.base import ROOT, Parse, Token, rel_class, safe_text, simple_tokenize
from evalkit.oracles.spacy_oracle import hash_model_dir

__all__ = ["DEFAULT_STANZA_MODEL", "StanzaOracle"]

DEFAULT_STANZA_MODEL = Path(__file__).resolve().parent / "models" / "stanza-nb-ndt"


def official_nb() -> tuple[Path, dict[str, str]]:
    """An installed official Stanza ``nb`` (UD Bokmål) package: its directory and model paths.

    Looked up under ``$STANZA_RESOURCES_DIR`` (default ``~/stanza_resources``), as
    ``stanza.download('nb')`` lays it out; no model is loaded.

    Raises:
        FileNotFoundError: no tagger + parser there.
    """
    resources = Path(os.environ.get("STANZA_RESOURCES_DIR", Path.home() / "stanza_resources"))
    nb = resources / "nb"
    out: dict[str, str] = {}
    for proc, key in (("pos", "pos_model_path"), ("depparse", "depparse_model_path"),
                      ("pretrain", "pos_pretrain_path")):
        files = sorted((nb / proc).glob("*.pt")) if (nb / proc).is_dir() else []
        if files:
            out[key] = str(files[0])
    if "pos_model_path" not in out or "depparse_model_path" not in out:
        raise FileNotFoundError(f"no official Stanza 'nb' model under {resources} "
                                "(set $STANZA_RESOURCES_DIR)")
    if "pos_pretrain_path" in out:
        out["depparse_pretrain_path"] = out["pos_pretrain_path"]
    return nb, out


class StanzaOracle:
    """A batch parser over a Stanza tagger + dependency parser."""

    def __init__(self, model: str | Path | None = None, *, batch_size: int = 256,
                 threads: int = 1, scheme: str | None = None, name: str | None = None,
                 use_gpu: bool = False) -> None:
        """Build the offline pipeline.

        Args:
            model: a directory with ``tagger.pt`` and ``parser.pt``; ``"nb"`` for an installed
                official Stanza Norwegian Bokmål model (``$STANZA_RESOURCES_DIR`` or
                ``~/stanza_resources``); None for the shipped ``stanza-nb-ndt``.
            batch_size: sentences per bulk call (caps memory and latency).
            threads: torch threads (1 per process on 2-core machines).
            scheme: label scheme (default: ``"ud"`` for the official model, else ``"ndt"``).
            name: oracle id (default ``stanza-<model dir name>``); part of the cache key.
            use_gpu: run on the GPU when available.
        """
        import stanza
        import torch

        torch.set_num_threads(threads)
        if model is None:
            model = DEFAULT_STANZA_MODEL
        if str(model) == "nb":
            mdir, paths = official_nb()
            scheme = scheme or "ud"
        else:
            mdir = Path(model)
            paths = {"pos_model_path": str(mdir / "tagger.pt"),
                     "depparse_model_path": str(mdir / "parser.pt")}
            for key in ("pos_model_path", "depparse_model_path"):
                if not Path(paths[key]).is_file():
                    raise FileNotFoundError(paths[key])
            scheme = scheme or "ndt"
        res = mdir / "resources.json"
        if not res.exists():
            try:
                res.write_text(json.dumps({}))
            except OSError:  # read-only install: fall back to a private resources dir
                from evalkit.paths import cache_dir

                mdir_res = cache_dir() / "stanza_resources"
                mdir_res.mkdir(parents=True, exist_ok=True)
                (mdir_res / "resources.json").write_text("{}")
                res = mdir_res / "resources.json"
        self.nlp = stanza.Pipeline(
            lang="nb", dir=str(res.parent), processors="tokenize,pos,lemma,depparse",
            download_method=None, allow_unknown_language=True, tokenize_pretokenized=True,
            lemma_use_identity=True, use_gpu=use_gpu, pos_batch_size=3000,
            depparse_batch_size=3000, logging_level="ERROR", **paths)
        self.scheme = scheme
        self.model_path = mdir
        self.model_hash = hash_model_dir_files([Path(paths["pos_model_path"]),
                                                Path(paths["depparse_model_path"])])
        self.name = name or (mdir.name if mdir.name.startswith("stanza") else f"stanza-{mdir.name}")
        self.batch_size = batch_size
        self.versions = {"stanza": stanza.__version__}

    def _convert(self, sent: Any) -> Parse:
        toks = []
        for w in sent.words:
            feats = w.feats or ""
            head = (w.head or 0) - 1
            rel = w.deprel or ""
            cls = ROOT if head < 0 else rel_class(rel, self.scheme)
            toks.append(Token(w.text, head, rel, cls, w.upos or "X", "VerbForm=Fin" in feats,
                              "Mood=Imp" in feats))
        return Parse(tuple(toks), self.scheme)

    def parse(self, texts: Sequence[str]) -> list[Parse]:
        """Parse each text (one sentence each) into one :class:`~evalkit.oracles.base.Parse`."""
        return self.parse_tokens([simple_tokenize(safe_text(t)) for t in texts])

    def parse_tokens(self, sentences: Sequence[Sequence[str]]) -> list[Parse]:
        """Parse pre-tokenized sentences in capped bulk batches."""
        tokenized = [[w for w in s if w.strip()] for s in sentences]
        texts = tokenized
        out: list[Parse | None] = [None] * len(texts)
        todo = [i for i, toks in enumerate(tokenized) if toks]
        for i in range(len(texts)):
            if not tokenized[i]:
                out[i] = Parse((), self.scheme)
        for start in range(0, len(todo), self.batch_size):
            idx = todo[start: start + self.batch_size]
            doc = self.nlp([tokenized[i] for i in idx])
            if len(doc.sentences) != len(idx):
                raise RuntimeError("stanza changed the sentence segmentation of pre-split input")
            for i, sent in zip(idx, doc.sentences, strict=True):
                out[i] = self._convert(sent)
        return [p if p is not None else Parse((), self.scheme) for p in out]


def hash_model_dir_files(files: Sequence[Path]) -> str:
    """A short sha256 over the given model files (names + bytes)."""
    import hashlib

    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


_ = hash_model_dir  # re-exported for callers that hash a whole directory
