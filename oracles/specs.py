"""Oracle specs → oracle instances: one resolver for `evalkit run`, the Δ-DPO loop, rewards and
`evalkit oracle validate/judge`.

A spec is a registered name (``spacy-nob``, ``stanza-nob``, ``fake``, a plugin's name) or
``<kind>:<model>`` with kind ``spacy`` or ``stanza``: an installed official pipeline
(``spacy:nb_core_news_sm``, ``stanza:nb`` from ``$STANZA_RESOURCES_DIR``) or a model directory.
That way an official model is used wherever an oracle can be named, e.g.
``--option oracles=spacy-nob,stanza:nb``. Bare ``spacy`` / ``stanza`` mean the shipped models.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evalkit.errors import BadInput

__all__ = ["KINDS", "check_spec", "load_oracle", "task_oracle"]

# kind → the registered oracle whose class also loads other models of that toolkit
KINDS = {"spacy": "spacy-nob", "stanza": "stanza-nob"}


def _split(spec: str) -> tuple[str, tuple[Any, ...]]:
    """``spec`` → (registered oracle name, constructor positional args)."""
    kind, sep, model = spec.partition(":")
    if not (sep or spec in KINDS):
        return spec, ()
    if kind not in KINDS:
        from evalkit.registry import ORACLES

        raise BadInput(f"unknown oracle kind {kind!r} in {spec!r}; use spacy:<model>, "
                       f"stanza:<model> or a registered oracle ({', '.join(ORACLES.names())})")
    return KINDS[kind], ((model,) if model else ())


def check_spec(spec: Any) -> None:
    """Pre-flight, before any generation: raise now for a spec that could not load later.

    Cheap (no model is loaded, no heavy import): the name is registered, the kind is known, the
    model directory, installed spaCy package or official Stanza install exists.
    """
    if not isinstance(spec, str):
        return  # an oracle object
    from evalkit.registry import ORACLES

    registered, args = _split(spec)
    ORACLES.get(registered)
    if not args or Path(args[0]).exists():
        return
    model = str(args[0])
    if registered == KINDS["stanza"]:
        where = f"no model directory {model}"
        if model == "nb":
            from evalkit.oracles.stanza_oracle import official_nb

            try:
                official_nb()
                return
            except FileNotFoundError as exc:
                where = str(exc)
    else:
        import importlib.util

        if importlib.util.find_spec(model) is not None:  # an installed spaCy package
            return
        where = f"no installed spaCy package or model directory {model!r}"
    raise BadInput(f"oracle {spec!r} cannot load its model ({where}); install it or name "
                   "another oracle")


def load_oracle(spec: str, options: Mapping[str, Any] | None = None) -> Any:
    """Instantiate the oracle ``spec`` names, passing ``options`` to its constructor.

    Raises:
        BadInput: an unknown kind, options the oracle does not take, or a model it cannot load
            (one line naming the fix; the CLI exits 2).
    """
    from evalkit.registry import ORACLES

    registered, args = _split(spec)
    spec_cls = ORACLES.get(registered)
    try:
        return spec_cls(*args, **dict(options or {}))
    except TypeError as exc:
        raise BadInput(f"oracle {spec!r} does not accept options {sorted(options or {})}: "
                       f"{exc}") from None
    except (FileNotFoundError, OSError) as exc:  # model not built, not installed, bad path
        raise BadInput(f"oracle {spec!r} cannot load its model ({exc}); build or install it "
                       "(`evalkit oracle --help`), or name another oracle") from None


def task_oracle(spec: Any) -> tuple[str, Any]:
    """An evaluation task's oracle: ``(metric name, oracle)``, parse-cached unless ``fake``.

    ``spec`` is a spec string or an oracle object (library callers, tests). Metrics are keyed by
    a registered name as given, else by the model's own oracle id (``stanza:nb`` → ``stanza-nb``):
    no second colon in metric names, and no filesystem path leaks into them.
    """
    if not isinstance(spec, str):
        return str(getattr(spec, "name", type(spec).__name__)), spec
    oracle = load_oracle(spec)
    name = str(getattr(oracle, "name", spec)) if ":" in spec else spec
    if spec != "fake":
        from evalkit.oracles.cache import CachedOracle

        oracle = CachedOracle(oracle)
    return name, oracle
