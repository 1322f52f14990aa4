"""One error type for every problem a user can fix.

The CLI turns an `EvalkitError` into a single line on stderr and exit code 2 (no traceback);
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class EvalkitError(Exception):
    """A user-facing error: the message names the problem and the fix, on one line."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))  # one line, whatever the caller wrote


class DataNotFound(EvalkitError):
    """A dataset is neither in the local mirror nor reachable on the hub."""


class ModelNotFound(EvalkitError):
    """A model or adapter path/id cannot be resolved."""


class BadInput(EvalkitError):
    """A malformed input file or option."""


class Interrupted(EvalkitError):
    """Ctrl-C or SIGTERM during a run: finished work is stored; the message says how to resume."""

    exit_code = 130


def load_or_explain(load: Callable[[], Any], what: str, fix: str) -> Any:
    """Run a loader; any failure of a broken checkpoint becomes one line naming it and a fix."""
    try:
        return load()
    except (OSError, ValueError, KeyError, RuntimeError, TypeError, AttributeError,
            ImportError) as exc:
        first = next((x for x in str(exc).splitlines() if x.strip()), type(exc).__name__)
        raise BadInput(f"{what} failed to load ({type(exc).__name__}: {first[:200]}); "
                       f"{fix}") from None
