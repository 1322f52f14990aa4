"""NLTK's ``punkt_tab`` sentence splitter, made available offline.

lm-eval's IFEval checkers split sentences with NLTK Punkt (``punkt_tab/english``) and call
``nltk.download("punkt_tab")`` when importing, which fails offline; two checkers then raise
``LookupError``. NLTK data is on neither PyPI nor apt, so evalkit builds the parameters itself:
a `PunktTrainer` learns abbreviations, collocations and sentence starters from the English
text of the local data mirror (FLORES-200 dev + devtest, NTREX-128 English), a short hand list
of common English abbreviations is added (a few thousand sentences do not show them all), and
the result is saved under ``$EVALKIT_CACHE/nltk_data/tokenizers/punkt_tab/english`` with a stamp
naming its sources. If NLTK already finds an official ``punkt_tab`` (e.g. one installed by the
user), that one is used: it is the reference. Either way `ensure_punkt` returns a description
for the run record, because the two can split edge cases (abbreviations) differently.

Call `ensure_punkt` BEFORE importing ``lm_eval.tasks.ifeval``: it also puts the data directory
on ``nltk.data.path`` (and ``$NLTK_DATA``), so lm-eval's import-time check finds it and does
not try to download.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from evalkit.errors import DataNotFound

#: Bump when the training recipe changes: a new version trains into a fresh directory.
RECIPE_VERSION = 1
_STAMP = "evalkit_punkt.json"
_FILES = ("abbrev_types.txt", "collocations.tab", "ortho_context.tab", "sent_starters.txt")
# Mirror files with running English text (relative to the data dir; .gz found transparently).
_SOURCES = ("flores200/dev/eng_Latn.dev", "flores200/devtest/eng_Latn.devtest",
            "ntrex128/newstest2019-src.eng.txt")
# Common abbreviations the official English model knows and a few thousand news sentences
# may not show often enough to learn (lower-case, without the final period, as Punkt stores).
_ABBREVIATIONS = ("mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "inc", "ltd", "co",
                  "corp", "vs", "etc", "e.g", "i.e", "u.s", "u.k", "no", "gen", "gov", "sen",
                  "rep", "col", "lt", "sgt", "capt", "jan", "feb", "mar", "apr", "aug", "sept",
                  "oct", "nov", "dec", "a.m", "p.m", "fig", "approx", "dept", "est", "mt")
_LOCK = threading.Lock()
_INFO: dict[str, Any] | None = None


def _cache_root() -> Path:
    return Path(os.environ.get("EVALKIT_CACHE", Path.home() / ".cache" / "evalkit")).expanduser()


def _sha_dir(d: Path) -> str:
    h = hashlib.sha256()
    for name in _FILES:
        h.update(name.encode())
        h.update((d / name).read_bytes())
    return h.hexdigest()


def _official_punkt() -> Path | None:
    """An installed punkt_tab/english that evalkit did not build, if NLTK can see one."""
    import nltk

    try:
        found = Path(str(nltk.data.find("tokenizers/punkt_tab/english/")))
    except LookupError:
        return None
    return None if (found / _STAMP).exists() else found


def _training_text(data_dir: Path | None) -> tuple[str, dict[str, str]]:
    from evalkit.data import DataLayer

    layer = DataLayer(data_dir)
    parts: list[str] = []
    for rel in _SOURCES:
        if layer.exists(rel):
            # One paragraph per 5 sentences: Punkt learns from running text, and
            # sentence-per-line input would hide sentence boundaries behind newlines only.
            lines = [x.strip() for x in layer.read_lines(rel) if x.strip()]
            parts += [" ".join(lines[i:i + 5]) for i in range(0, len(lines), 5)]
    if not parts:
        raise DataNotFound(
            "cannot build NLTK punkt_tab offline: no English text found in the data mirror "
            f"({', '.join(_SOURCES)}); set --data-dir/EVALKIT_DATA_DIR to the mirror, or install "
            "an official punkt_tab under $NLTK_DATA/tokenizers/punkt_tab/english")
    return "\n\n".join(parts), dict(sorted(layer.hashes.items()))


def _train(target: Path, data_dir: Path | None) -> None:
    from nltk.tokenize.punkt import PunktTrainer, save_punkt_params

    text, hashes = _training_text(data_dir)
    trainer = PunktTrainer()
    trainer.INCLUDE_ALL_COLLOCS = True
    trainer.train(text, finalize=True)
    params = trainer.get_params()
    params.abbrev_types.update(_ABBREVIATIONS)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".punkt-", dir=target.parent))
    try:
        save_punkt_params(params, dir=str(tmp))
        stamp = {"recipe_version": RECIPE_VERSION, "sources": hashes,
                 "extra_abbreviations": list(_ABBREVIATIONS), "sha256": _sha_dir(tmp)}
        (tmp / _STAMP).write_text(json.dumps(stamp, indent=1), encoding="utf-8")
        try:
            tmp.rename(target)  # atomic; a concurrent builder may have won the race
        except OSError:
            if not (target / _STAMP).exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _stamp_version(d: Path) -> int | None:
    try:
        return int(json.loads((d / _STAMP).read_text(encoding="utf-8"))["recipe_version"])
    except (OSError, ValueError, KeyError):
        return None


def ensure_punkt(data_dir: Path | None = None) -> dict[str, Any]:
    """Make ``punkt_tab/english`` loadable offline; describe the splitter used (for records).

    Idempotent and cheap after the first call in a process (and after the first build on a
    machine: ~2 s to train).
    """
    global _INFO
    with _LOCK:
        if _INFO is not None:
            return _INFO
        import nltk

        official = _official_punkt()
        if official is not None:
            _INFO = {"sentence_splitter": "nltk punkt_tab/english (official, found installed)",
                     "path": str(official), "nltk": nltk.__version__}
            return _INFO
        root = _cache_root() / "nltk_data"
        target = root / "tokenizers" / "punkt_tab" / "english"
        # NLTK's path sandbox only lets save_punkt_params write below a data root it knows.
        if str(root) not in nltk.data.path:
            nltk.data.path.insert(0, str(root))
        paths = [p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
        if str(root) not in paths:
            os.environ["NLTK_DATA"] = os.pathsep.join([str(root), *paths])
        if _stamp_version(target) != RECIPE_VERSION:
            if target.exists():  # an older recipe: rebuild, never mix
                shutil.rmtree(target)
            _train(target, data_dir)
        stamp = json.loads((target / _STAMP).read_text(encoding="utf-8"))
        _INFO = {"sentence_splitter": f"evalkit punkt_tab/english v{RECIPE_VERSION} (PunktTrainer "
                                      "on mirrored English text + common abbreviations; not the "
                                      "official NLTK model)",
                 "path": str(target), "sha256": stamp["sha256"], "sources": stamp["sources"],
                 "nltk": nltk.__version__}
        return _INFO
