"""Building a backend from the registry with a validated config.

Used by the runner, the judges that run a local model, and the Δ-DPO loop; it lives here, in
the backends layer, so none of them reaches up into the runner.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from evalkit.backends.base import BUILTIN_CONFIGS, BackendConfig
from evalkit.errors import BadInput

if TYPE_CHECKING:
    from evalkit.models import AdapterRef, ModelRef

#: backends that exist for tests only: they cannot be built from a model and options
TEST_ONLY = frozenset({"scripted"})


def config_class(backend_cls: Any) -> type[BackendConfig]:
    """The config model a backend class takes (plugins without one get the shared fields)."""
    cls = getattr(backend_cls, "config_class", BackendConfig)
    return cls if isinstance(cls, type) and issubclass(cls, BackendConfig) else BackendConfig


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def check_options(name: str, cfg_cls: type[BackendConfig], options: dict[str, Any]) -> None:
    """Refuse an option backend `name` does not use, naming the backends that do use it."""
    shared = set(BackendConfig.model_fields)
    for key in options:
        if key in cfg_cls.model_fields and key not in shared:
            continue
        if key in shared:
            raise BadInput(f"backend option {key!r} is set by evalkit itself, not as an option")
        users = [b for b, c in BUILTIN_CONFIGS.items() if key in c.model_fields and b != name]
        if users:
            raise BadInput(f"{_flag(key)} is an option of the {' and '.join(users)} backend"
                           f"{'s' if len(users) > 1 else ''}; --backend {name} does not use "
                           "it (drop it, or choose that backend)")
        known = sorted(set(cfg_cls.model_fields) - shared)
        raise BadInput(f"unknown backend option {key!r} for --backend {name}; it takes "
                       f"{', '.join(known) or 'no options'}")


def check_backend_options(name: str, options: dict[str, Any]) -> None:
    """Pre-flight for commands: the options fit backend `name` (imports its module only)."""
    from evalkit.registry import BACKENDS

    if name not in TEST_ONLY:
        cfg_cls = config_class(BACKENDS.get(name))
        check_options(name, cfg_cls, options)
        _config(cfg_cls, model="-", **options)  # values in range, before anything loads


def make_backend(name: str, model: ModelRef, adapters: Sequence[AdapterRef], merge: bool,
                 options: dict[str, Any], seed: int) -> Any:
    """Instantiate backend `name` on `model` with `adapters` loaded under their backend ids.

    `options` are the backend's own config fields (those the user set); one that this backend
    does not take is an error naming it.
    """
    from evalkit.registry import BACKENDS

    if name in TEST_ONLY:
        raise BadInput(f"backend {name!r} serves canned outputs to tests and cannot load "
                       f"{model.name}; use --backend hf or --backend vllm")
    cls = BACKENDS.get(name)
    cfg_cls = config_class(cls)
    check_options(name, cfg_cls, options)
    return cls(_config(cfg_cls, model=model.path,
                       adapters={a.backend_id: a.path for a in adapters},
                       merge_adapter=merge, seed=seed, **options))


def _config(cfg_cls: type[BackendConfig], **fields: Any) -> BackendConfig:
    """`cfg_cls(**fields)`, with a bad value as one line naming its command-line flag."""
    from pydantic import ValidationError

    try:
        return cfg_cls(**fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(map(str, err["loc"]))
        raise BadInput(f"bad value for {_flag(where)}: {err['msg']}") from None
