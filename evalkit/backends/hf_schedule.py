"""How the hf backend runs one group of rows (one adapter, one set of sampling params).

Rows are sorted long first and cut into batches whose sizes and first-pass cap on new tokens
are chosen from measured throughput (`evalkit.backends.hf_tuning`); rows still running at the
cap are generated again, together, with a larger one. On CPU several batches may run side by
side ("streams"), each in its own thread on its share of the cores: a stream takes the next
batch of the pass as soon as its last one is done. Batches are independent — a row's text does
not depend on its neighbours or on which stream ran it — and the batch sizer and cap schedule
learn from every stream's batches.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Row:
    """One sequence to generate: sample `k` of request `req`, from prompt token ids `ids`."""

    req: int
    k: int
    ids: list[int]


#: run one batch: (rows, cap on new tokens, thread tuner or None, lock) -> (token counts of
#: the rows that finished, rows still running at the cap)
RunBatch = Callable[[list[Row], int, Any, threading.Lock], tuple[list[int], list[Row]]]


class Streams:
    """`count` threads generating side by side, each with `threads` torch threads and its own
    thread tuner (made by `make_tuner`, kept across groups in `tuners`)."""

    def __init__(self, torch: Any, count: int, threads: int,
                 make_tuner: Callable[[], Any]) -> None:
        self.torch = torch
        self.count = count
        self.threads = threads
        self.tuners: list[Any] = []
        self._make_tuner = make_tuner

    def run(self, stream: Callable[[Any], None], errors: list[BaseException]) -> None:
        """Run `stream(tuner)` in `count` threads, this one included; each thread sets its own
        torch thread count (it applies to the calling thread's operations). The first error is
        raised once every stream has stopped (`errors` non-empty stops them)."""
        torch = self.torch
        while len(self.tuners) < self.count:
            self.tuners.append(self._make_tuner())

        def one(k: int) -> None:
            try:
                with torch.inference_mode():
                    torch.set_num_threads(self.threads)
                    stream(self.tuners[k])
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                errors.append(exc)

        others = [threading.Thread(target=one, args=(k,), name=f"evalkit-hf-stream-{k}",
                                   daemon=True) for k in range(1, self.count)]
        for t in others:
            t.start()
        before = torch.get_num_threads()
        one(0)
        torch.set_num_threads(before)
        for t in others:
            t.join()
        if errors:
            raise errors[0]


def run_group(rows: list[Row], max_new_tokens: int, run_batch: RunBatch, *,
              batch_size: int | None, max_batch_tokens: int, streams: Streams,
              tuner: Any, aborted: Callable[[], bool]) -> None:
    """Generate every row of one group: capped passes, measured batch sizes, `streams` side
    by side (one stream, or one row left: one batch at a time on this thread, tuned by
    `tuner`)."""
    from evalkit.backends.hf_tuning import BatchSizer, CapSchedule

    sizer = BatchSizer(batch_size, max_batch_tokens)
    caps = CapSchedule(max_new_tokens)
    lock = threading.Lock()
    pending = sorted(rows, key=lambda r: -len(r.ids))
    cap: int | None = None  # None: the first pass, capped per batch from lengths seen
    state: dict[str, Any] = {}

    def take() -> tuple[list[Row], int, int] | None:
        with lock:
            i = state["i"]
            if i >= len(pending) or aborted() or state["failed"]:
                return None
            this_cap = caps.first_pass() if cap is None else cap
            b = sizer.size(len(pending) - i, len(pending[i].ids), this_cap)
            state["i"] = i + b
            state["cap"] = this_cap
            return pending[i:i + b], b, this_cap

    def stream(tuner: Any) -> None:
        while (job := take()) is not None:
            batch, b, this_cap = job
            t0 = time.perf_counter()
            done, left = run_batch(batch, this_cap, tuner, lock)
            if aborted():
                return
            with lock:
                sizer.record(len(batch), sum(done), time.perf_counter() - t0,
                             full=len(batch) == b)
                caps.record(done, len(left), this_cap)
                state["cut"] += left

    while pending:
        state.update(i=0, cut=[], cap=None, failed=[])
        if streams.count > 1 and len(pending) > 1:
            streams.run(stream, state["failed"])
        else:
            stream(tuner)
        if aborted():
            return
        pending = sorted(state["cut"], key=lambda r: -len(r.ids))
        cap = caps.next_cap(state["cap"])
