"""Batch shapes and CPU threads for the transformers backend, chosen from measured throughput.

Three decisions, each from timings taken while generating (nothing is fixed in advance):

* :class:`ThreadTuner` — torch's intra-op thread count. On a CPU shared with another
  CPU-bound process, OpenMP regions wait for their slowest thread and every decode step runs
  dozens of them: two threads on two busy cores ran 10–50× slower per step than one thread
  (BENCHMARKS.md). A few decode steps are timed with each candidate count (1, half, all
  cores) inside a batch, the fastest is kept, and the choice is measured again periodically —
  more rarely when trying the slower counts costs much — so a load that comes or goes is
  followed within seconds. The prompt's forward pass (prefill) gets its own choice: it is a
  few large matrix products, where two threads ran 1.8–2.0× faster than one on a quiet 2-core
  machine while the embedded model's decode steps were fastest on one, and 1.5–2× slower than
  one beside a CPU-bound process (BENCHMARKS.md). A trial splits one pass's layers between
  the counts when the engine reports its layers (the native engine), else gives each count a
  whole pass, compared in operations per second (:func:`prefill_cost`).
* :class:`CapSchedule` — how many new tokens a first pass may take. A batch runs until its
  longest row stops, so one row that never stops (3 of 1,012 FLORES sentences for the
  embedded model) kept 50-row batches decoding for 256 steps. A first pass is capped at twice
  the observed 95th percentile of finished lengths; rows still running at the cap are
  generated again from scratch, together and with a larger cap, up to the request's
  ``max_new_tokens``. From scratch, so a text never depends on having been cut: it is exactly
  the generation of that request in another batch (greedy and per-row-seeded sampling are
  batch-invariant, tests/test_workflows.py).
* :class:`BatchSizer` — rows per batch: powers of two, grown while the measured rate of
  finished tokens per second improves, then kept (and its neighbours re-tried now and then);
  ``max_batch_tokens`` only bounds memory. A fixed ``batch_size`` option turns it off. With
  batches running side by side (the backend's streams) results arrive out of order: the
  largest size's own result decides whether to grow.

With streams, each stream has its own :class:`ThreadTuner` over its share of the cores (none
when that share is one core: nothing to choose).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any


def prefill_cost(config: dict[str, Any]) -> Any:
    """``cost(rows, width)``: floating-point operations of a causal prefill of a padded batch,
    from a decoder's config.json (its linear layers plus attention; the constant factors that
    every batch shares are dropped). Unknown shapes give tokens × width."""
    try:
        hidden = int(config["hidden_size"])
        heads = int(config["num_attention_heads"])
        head_dim = int(config.get("head_dim") or hidden // heads)
        kv = int(config.get("num_key_value_heads") or heads) * head_dim
        q = heads * head_dim
        inter = int(config["intermediate_size"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return lambda rows, width: float(rows * width * (1 + width))
    linear = 2.0 * (hidden * (q + 2 * kv) + q * hidden + 3 * hidden * inter)
    # scores and weighted values over on average width / 2 earlier positions
    return lambda rows, width: float(rows * width * (linear + 2.0 * q * width))


def thread_candidates(max_threads: int) -> list[int]:
    """Intra-op thread counts worth trying on a machine where torch would use `max_threads`."""
    return sorted({1, max(1, max_threads // 2), max_threads})


class ThreadTuner:
    """Chooses torch's thread count from decode-step timings (see the module docstring).

    ``new_batch`` at the start of every ``generate`` call (step times are comparable only
    within one batch), ``step`` once per decode step, from the thread that runs the model:
    ``torch.set_num_threads`` applies to the calling thread's later operations.
    """

    def __init__(self, torch: Any, max_threads: int, *, steps: int = 3,
                 min_interval: float = 10.0, clock: Any = time.perf_counter) -> None:
        self.torch = torch
        self.candidates = thread_candidates(max_threads)
        self.max_threads = max_threads
        # decode choices per batch-size bucket (rows rounded down to a power of two): a step's
        # cost, and so the faster count, depends on how many rows it carries
        self.bucket = 0
        self.best_by: dict[int, int] = {}
        self.next_trial_by: dict[int, float] = {}
        self.prefill_best = max_threads
        self.prefill_trial: dict[int, float] | None = None  # threads → measured ops/s
        self.prefill_next_trial = 0.0
        self.pending: tuple[int, float, float] | None = None  # (threads, ops, start time)
        self.warm = False
        self.prefilled = False  # the current batch's prompt pass ran on the prefill choice
        self.groups: dict[int, int] | None = None  # a layer-split prefill trial: layer → threads
        self.group_size = 1  # layers per thread count in that trial
        self.group_times: dict[int, float] = {}  # threads → seconds per layer
        self.group_at: tuple[int, float] | None = None  # the running group: threads, start
        self.steps = steps
        self.min_interval = min_interval
        self.clock = clock
        self.last: float | None = None
        self.trial: list[tuple[int, list[float]]] | None = None
        self.warmup = 0
        self.history: list[dict[str, Any]] = []  # one entry per finished trial, for benchmarks

    @property
    def best(self) -> int:
        """The decode thread count for the current batch size (the nearest size's choice
        until this one has been measured)."""
        if self.bucket in self.best_by:
            return self.best_by[self.bucket]
        if not self.best_by:
            return self.max_threads
        return self.best_by[min(self.best_by, key=lambda b: (abs(b - self.bucket), -b))]

    @property
    def next_trial(self) -> float:
        """When the current batch size's choice is measured again."""
        return self.next_trial_by.get(self.bucket, 0.0)

    @property
    def active(self) -> bool:
        """Whether there is more than one thread count left to try."""
        return len(self.candidates) > 1

    def new_batch(self, prefill_ops: float | None = None, rows: int = 0,
                  layers: int = 0) -> None:
        """A new batch of `rows` rows starts: its first step follows a prompt pass, so it is
        not timed as a step. With `prefill_ops` (:func:`prefill_cost`) that pass runs on the
        prefill choice. A trial of the other counts, when one is due, splits the pass's
        `layers` into one group per count (``layer`` is then called before each layer, and
        with `layers` after the last): equal work side by side in one pass. Without layer
        calls (`layers` 0) a trial gives each count a whole pass, timed until the first
        ``step`` and compared in operations per second."""
        self.last = None
        if self.trial is not None:  # unfinished trial: its steps were in another batch
            self.trial = None
        self.bucket = max(0, rows).bit_length()
        self.pending = None
        self.groups = None
        self.prefilled = False
        if prefill_ops is None or prefill_ops <= 0:
            self._use(self.best)
            return
        self.prefilled = True
        n = self.prefill_best
        due = self.warm and self.active and (self.prefill_trial is not None
                                             or self.clock() >= self.prefill_next_trial)
        self.warm = True  # the process's first forward pass sets things up: never a trial
        order = [self.prefill_best] + [c for c in self.candidates if c != self.prefill_best]
        if due and layers >= len(order):
            size = layers // len(order)
            self.groups = {k * size: c for k, c in enumerate(order)}
            self.groups[len(order) * size] = 0  # the end of the trial
            self.group_size = size
            self.group_times = {}
            self.group_at = None
            self.prefill_trial = None
            return
        if due:
            if self.prefill_trial is None:
                self.prefill_trial = {}
            n = next(c for c in order if c not in self.prefill_trial)
        self._use(n)
        self.pending = (n, prefill_ops, self.clock())

    def layer(self, i: int) -> None:
        """Prefill layer `i` is about to run (`i` = the layer count: the last one ended)."""
        if self.groups is None or i not in self.groups:
            return
        now = self.clock()
        if self.group_at is not None:
            threads, start = self.group_at
            self.group_times[threads] = (now - start) / self.group_size
        threads = self.groups[i]
        if threads:
            self._use(threads)
            self.group_at = (threads, self.clock())
            return
        times = self.group_times
        self.groups = None
        self.prefill_best = min(times, key=lambda c: times[c])
        lost = self.group_size * sum(t - times[self.prefill_best] for t in times.values())
        self.prefill_next_trial = now + max(self.min_interval, 20.0 * lost)
        self.history.append({"prefill_ms_per_layer": {c: round(1000 * t, 2)
                                                      for c, t in times.items()},
                             "prefill_chosen": self.prefill_best})
        self._use(self.prefill_best)

    def _prefill_done(self, now: float) -> None:
        assert self.pending is not None
        n, ops, start = self.pending
        self.pending = None
        trial = self.prefill_trial
        if trial is None or now <= start:
            return
        trial[n] = ops / (now - start)
        if len(trial) < len(self.candidates):
            return
        self.prefill_best = max(trial, key=lambda c: trial[c])
        # the time the slower counts cost, at this batch's size
        lost = ops * sum(1.0 / r - 1.0 / trial[self.prefill_best] for r in trial.values())
        self.prefill_next_trial = now + max(self.min_interval, 20.0 * lost)
        self.history.append({"prefill_gflops": {c: round(r / 1e9, 2) for c, r in trial.items()},
                             "prefill_chosen": self.prefill_best})
        self.prefill_trial = None

    def _use(self, n: int) -> None:
        if self.torch.get_num_threads() != n:
            self.torch.set_num_threads(n)

    def step(self) -> None:
        """One decode step finished: time it and move the thread-count trial on."""
        now = self.clock()
        if self.last is None:  # the first call follows the prompt's forward pass: not a step
            if self.pending is not None:
                self._prefill_done(now)
            if self.prefilled:  # back from the prompt pass's count to the decode choice
                self.prefilled = False
                self._use(self.best)
            self.last = now
            return
        dt, self.last = now - self.last, now
        if self.trial is None:
            if self.active and now >= self.next_trial:
                self.trial = [(n, []) for n in self.candidates]
                self._start(0)
            return
        if self.warmup:
            self.warmup -= 1
            return
        cur = next(i for i, (_, times) in enumerate(self.trial) if len(times) < self.steps)
        self.trial[cur][1].append(dt)
        if len(self.trial[cur][1]) < self.steps:
            return
        if cur + 1 < len(self.trial):
            self._start(cur + 1)
            return
        self._decide(now)

    def _start(self, i: int) -> None:
        assert self.trial is not None
        self._use(self.trial[i][0])
        self.warmup = 1  # the first step after a change pays for waking threads up

    def _decide(self, now: float) -> None:
        assert self.trial is not None
        med = {n: sorted(times)[len(times) // 2] for n, times in self.trial}
        best = self.best_by[self.bucket] = min(med, key=lambda n: med[n])
        lost = sum(sum(times) - self.steps * med[best] for _, times in self.trial)
        # keep trying the other counts at most ~5 % of the time
        self.next_trial_by[self.bucket] = now + max(self.min_interval, 20.0 * lost)
        self.history.append({"ms_per_step": {n: round(1000 * m, 2) for n, m in med.items()},
                             "chosen": best, "rows": (1 << self.bucket) >> 1})
        self.trial = None
        self._use(self.best)


class CapSchedule:
    """The new-token cap of each pass (see the module docstring)."""

    def __init__(self, max_new_tokens: int, *, first: int = 64, floor: int = 16) -> None:
        self.max_new = max_new_tokens
        self.first = min(first, max_new_tokens)
        self.floor = min(floor, max_new_tokens)
        self.finished: list[int] = []
        self.censored = 0
        self.censored_cap = 0  # the largest cap a row was still running at

    def record(self, finished_lengths: Sequence[int], censored: int, cap: int) -> None:
        """A batch under `cap`: lengths of the rows that finished, count of those cut off."""
        self.finished.extend(finished_lengths)
        if censored:
            self.censored += censored
            self.censored_cap = max(self.censored_cap, cap)

    def first_pass(self) -> int:
        """The cap of a batch in the first pass: twice the 95th percentile of the lengths seen
        so far; when that percentile lies among rows cut off, four times their cap."""
        n = len(self.finished) + self.censored
        if n == 0:
            return self.first
        k = math.ceil(0.95 * n)  # rank of the 95th percentile; cut-off rows rank last
        if k > len(self.finished):
            return min(self.max_new, 4 * self.censored_cap)
        q = sorted(self.finished)[k - 1]
        return max(self.floor, min(self.max_new, 2 * q))

    def next_cap(self, cap: int) -> int:
        """The cap for rows that were still running at `cap`."""
        return min(self.max_new, 4 * cap)


class BatchSizer:
    """Rows per batch from measured finished-token throughput (see the module docstring)."""

    def __init__(self, fixed: int | None, max_batch_tokens: int, *, start: int = 16,
                 retry_every: int = 8) -> None:
        self.fixed = fixed
        self.budget = max_batch_tokens
        self.current = start
        self.rate: dict[int, float] = {}  # batch size -> tokens/s (running mean)
        self.growing = True
        self.batches = 0
        self.retry_every = retry_every

    def size(self, remaining: int, width: int, cap: int) -> int:
        """Rows for the next batch: `remaining` rows left, widest prompt `width` tokens."""
        if self.fixed:
            return min(self.fixed, remaining)
        limit = max(1, self.budget // max(1, width + cap))
        b = min(self.current, limit)
        if not self.growing and self.batches and self.batches % self.retry_every == 0:
            up = 2 * self.current  # now and then re-measure a neighbour: conditions drift
            b = min(up if up <= limit else max(1, self.current // 2), limit)
        return max(1, min(b, remaining))

    def record(self, rows: int, tokens: int, seconds: float, full: bool) -> None:
        """A finished batch: `rows` rows produced `tokens` finished tokens in `seconds`."""
        self.batches += 1
        if self.fixed or not full or seconds <= 0:
            return
        r = tokens / seconds
        self.rate[rows] = r if rows not in self.rate else 0.5 * (self.rate[rows] + r)
        best = max(self.rate, key=lambda b: self.rate[b])
        largest = max(self.rate)
        if not self.growing:
            self.current = best
        elif best == largest:  # the largest size so far is the fastest: try twice as many
            self.current = max(self.current, 2 * largest)
        elif rows == largest:  # it is not: settle on the fastest
            self.growing = False
            self.current = best
        # else: a smaller size's batch finished late (batches run side by side); the largest
        # size's own result decides


def step_clock(torch: Any, tuner: ThreadTuner) -> Any:
    """A stopping criterion that never stops anything: it tells `tuner` a step has passed."""
    from transformers import StoppingCriteria

    class StepClock(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            tuner.step()
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    return StepClock()
