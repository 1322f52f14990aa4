"""A deterministic, tokenizer-free backend for tests and for scoring canned responses.

Outputs come from a mapping (prompt text or a substring of it → response) or a function;
log-likelihoods are a fixed function of the text, so tests know the exact answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

from evalkit.backends.base import truncate_at_stop
from evalkit.types import Generation, GenRequest, LoglikRequest, LoglikResult


class ScriptedBackend:
    """Canned responses; `calls` counts requests actually served (for resume tests)."""

    name = "scripted"

    def __init__(self, responses: Mapping[str, str] | Callable[[GenRequest, int], str]
                 | None = None, default: str = "",
                 loglik: Callable[[LoglikRequest], float] | None = None) -> None:
        self._responses = responses or {}
        self._default = default
        self._loglik = loglik or (lambda r: -0.5 * len(r.continuation))
        self.calls = 0

    def _respond(self, req: GenRequest, i: int) -> str:
        if callable(self._responses):
            return self._responses(req, i)
        if req.prompt in self._responses:
            return self._responses[req.prompt]
        for key, val in self._responses.items():
            if key and key in req.prompt:
                return val
        return self._default

    def generate(self, requests: Sequence[GenRequest]) -> Iterator[tuple[int, Generation]]:
        """Yield canned generations, stop strings applied."""
        for idx, req in enumerate(requests):
            self.calls += 1
            texts = tuple(truncate_at_stop(self._respond(req, k), req.params.stop)[0]
                          for k in range(req.params.n))
            yield idx, Generation(texts, tuple(len(t.split()) for t in texts),
                                  ("stop",) * len(texts))

    def loglikelihood(self, requests: Sequence[LoglikRequest]
                      ) -> Iterator[tuple[int, LoglikResult]]:
        """Yield the scripted log-likelihoods."""
        for idx, req in enumerate(requests):
            self.calls += 1
            yield idx, LoglikResult(float(self._loglik(req)), max(1, len(req.continuation)),
                                    False)

    def close(self) -> None:
        """Nothing to free."""
