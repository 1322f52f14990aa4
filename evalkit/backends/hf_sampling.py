"""Batch-invariant sampling and per-sequence streaming for the transformers backend.

transformers' ``generate`` samples every row of a batch from one global RNG, so a sampled text
depends on the batch it happened to share (its neighbours, the batch size, ``--limit``, a resume).
evalkit instead gives every sampled row its own ``torch.Generator`` seeded from the request
alone (:func:`row_seed`: prompt, sampling parameters, seed and sample index), and draws that row's
token from that generator with :class:`RowSampler`: temperature, repetition penalty over the
row's own tokens (padding excluded), top-p, then inverse-CDF sampling with one uniform per step.
``generate`` runs greedily over the sampler's one-hot output, so its own RNG is never used.

:class:`FinishWatcher` is a stopping criterion that never stops anything itself: it notices rows
that have finished (EOS or a stop string) and hands them out at once, so the runner can store
every finished sequence while the rest of the batch is still generating, and it aborts the
whole batch when asked (an interrupt).
"""

from __future__ import annotations

import hashlib
import json
import queue
from collections.abc import Callable, Sequence
from typing import Any

from evalkit.types import GenParams


def row_seed(prompt: str, params: GenParams, special: bool, sample_index: int) -> int:
    """The seed of one sampled sequence: a function of the request and the sample index only."""
    body = json.dumps({"prompt": prompt, "params": params.key(), "special": special,
                       "k": sample_index}, sort_keys=True, ensure_ascii=False, default=str)
    return int.from_bytes(hashlib.sha256(body.encode("utf-8")).digest()[:8], "little") >> 1


def make_sampler(torch: Any, seeds: Sequence[int], prompt_lens: Sequence[int], width: int,
                 params: GenParams) -> Any:
    """A `RowSampler` logits processor (a plain callable: transformers' ``generate`` takes it
    as one, and the native engine calls it on the rows still running through `subset`)."""

    class RowSampler:
        """Samples row r's next token from generator r; returns one-hot scores."""

        def __init__(self, gens: list[Any] | None = None,
                     first: list[int] | None = None) -> None:
            self.gens = gens if gens is not None else [torch.Generator().manual_seed(s)
                                                       for s in seeds]
            # first real token of each row
            self.first = first if first is not None else [width - n for n in prompt_lens]

        def subset(self, rows: Sequence[int]) -> RowSampler:
            """The sampler of rows `rows` of the batch (same generators, same state)."""
            return RowSampler([self.gens[r] for r in rows], [self.first[r] for r in rows])

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            logits = scores.float()
            if params.repetition_penalty != 1.0:
                logits = self._penalise(input_ids, logits)
            logits = logits / params.temperature
            probs = torch.softmax(logits, dim=-1)
            if params.top_p < 1.0:
                probs = _top_p(torch, probs, params.top_p)
            u = torch.stack([torch.rand((), generator=g, dtype=torch.float64)
                             for g in self.gens]).to(probs.device)
            cdf = probs.double().cumsum(-1)
            target = (u * cdf[:, -1]).unsqueeze(1)
            tok = torch.searchsorted(cdf, target).clamp_(max=probs.shape[-1] - 1)
            out = torch.full_like(scores, float("-inf"))
            out.scatter_(1, tok, 0.0)
            return out

        def _penalise(self, input_ids: Any, logits: Any) -> Any:
            # the row's own tokens only: left padding must not move the distribution
            ids = input_ids.clone()
            for r, f in enumerate(self.first):
                if f > 0:
                    ids[r, :f] = ids[r, f]
            picked = torch.gather(logits, 1, ids)
            p = params.repetition_penalty
            picked = torch.where(picked < 0, picked * p, picked / p)
            return logits.scatter(1, ids, picked)

    return RowSampler()


def _top_p(torch: Any, probs: Any, top_p: float) -> Any:
    """Keep the smallest set of most likely tokens whose mass reaches `top_p`; renormalise."""
    sorted_p, idx = torch.sort(probs, descending=True, dim=-1, stable=True)
    before = sorted_p.cumsum(-1) - sorted_p
    sorted_p = sorted_p.masked_fill(before >= top_p, 0.0)
    out = torch.zeros_like(probs).scatter_(1, idx, sorted_p)
    return out / out.sum(-1, keepdim=True)


class Aborted(Exception):
    """Raised inside the generation thread when the consumer went away."""


def make_watcher(torch: Any, width: int, eos: set[int], stop: Sequence[str],
                 decode: Callable[[list[int]], str], on_finish: Callable[[int, list[int]], None],
                 abort: Any) -> Any:
    """A `FinishWatcher` stopping criterion (see the module docstring)."""
    from transformers import StoppingCriteria

    class FinishWatcher(StoppingCriteria):
        def __init__(self) -> None:
            self.done: set[int] = set()

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            rows = input_ids.shape[0]
            if abort.is_set():
                return torch.ones(rows, dtype=torch.bool, device=input_ids.device)
            new = input_ids[:, width:]
            last = new[:, -1].tolist()
            for r in range(rows):
                if r in self.done:
                    continue
                seq = new[r].tolist()
                finished = last[r] in eos
                if not finished and stop:
                    text = decode(seq)
                    finished = any(s and s in text for s in stop)
                if finished:
                    self.done.add(r)
                    on_finish(r, seq)
            return torch.zeros(rows, dtype=torch.bool, device=input_ids.device)

    return FinishWatcher()


class Channel:
    """A queue between the generation thread and the consumer, with an abort flag."""

    def __init__(self) -> None:
        import threading

        self.q: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.abort = threading.Event()

    def put(self, kind: str, item: Any) -> None:
        """Hand an item to the consumer."""
        self.q.put((kind, item))

    def get(self) -> tuple[str, Any]:
        """Wait for the next item; wakes up regularly so Ctrl-C reaches the main thread."""
        while True:
            try:
                return self.q.get(timeout=0.2)
            except queue.Empty:
                continue
