"""Building a backend from the registry with a validated config.

Used by the runner, the judges that run a local model, and the Δ-DPO loop; it lives here, in
the backends layer, so none of them reaches up into the runner.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from evalkit.errors import BadInput

if TYPE_CHECKING:
    from evalkit.models import AdapterRef, ModelRef

#: backends that exist for tests only: they cannot be built from a model and options
TEST_ONLY = frozenset({"scripted"})


def make_backend(name: str, model: ModelRef, adapters: Sequence[AdapterRef], merge: bool,
                 options: dict[str, Any], seed: int) -> Any:
    """Instantiate backend `name` on `model` with `adapters` loaded under their backend ids."""
    from pydantic import ValidationError

    from evalkit.backends.base import BackendConfig
    from evalkit.registry import BACKENDS

    if name in TEST_ONLY:
        raise BadInput(f"backend {name!r} serves canned outputs to tests and cannot load "
                       f"{model.name}; use --backend hf or --backend vllm")
    cls = BACKENDS.get(name)
    try:
        cfg = BackendConfig(model=model.path, adapters={a.backend_id: a.path for a in adapters},
                            merge_adapter=merge, seed=seed, **options)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise BadInput(f"bad backend option {'.'.join(map(str, err['loc']))}: "
                       f"{err['msg']}") from None
    return cls(cfg)
