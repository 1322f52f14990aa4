"""Progress bars that move: one per stage, advanced per finished item, with rates and an ETA.

The runner calls ``update(label, done, total, tokens=…)`` every time a request finishes (the
backends hand back each finished sequence, not whole batches), scoring calls it per judged
chunk, builds per step. Each bar shows done/total, items/s, generated tokens/s (when given) and
an ETA from the measured rate. On a terminal this is a live rich display; when stderr is not a
terminal (CI logs, pipes) it prints one plain line per stage at most every 10 s and at the end,
so logs show movement without drowning in redraws.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Protocol


class ProgressFn(Protocol):
    """``progress(label, done, total, tokens=None)``: the runner's report per finished request
    (`tokens`: generated tokens so far, for generation stages)."""

    def __call__(self, label: str, done: int, total: int, /,
                 tokens: int | None = None) -> None:
        """Report `done` of `total` items of stage `label`."""


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "-:--"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class _Stage:
    def __init__(self, total: int) -> None:
        self.t0 = time.monotonic()
        self.total = total
        self.done = 0
        self.tokens: int | None = None
        self.last_print = 0.0

    def rates(self) -> tuple[float, float | None, float | None]:
        """(items/s, tokens/s or None, ETA seconds or None)."""
        dt = max(time.monotonic() - self.t0, 1e-6)
        rate = self.done / dt
        tok = self.tokens / dt if self.tokens is not None else None
        eta = (self.total - self.done) / rate if rate > 0 else None
        return rate, tok, eta

    def describe(self) -> str:
        rate, tok, eta = self.rates()
        text = f"{rate:.1f}/s"
        if tok is not None:
            text += f", {tok:.0f} tok/s"
        return text + f", ETA {_fmt_eta(eta) if self.done < self.total else '0:00'}"


class Progress:
    """Context manager; `update(label, done, total, tokens=None)` drives one bar per label."""

    def __init__(self, disable: bool = False, live: bool | None = None) -> None:
        self.disable = disable
        self.live = sys.stderr.isatty() if live is None else live
        self._stages: dict[str, _Stage] = {}
        self._bars: dict[str, Any] = {}
        self._progress: Any = None

    def __enter__(self) -> Progress:
        if not self.disable and self.live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._progress = RichProgress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rates]}"), TimeElapsedColumn(),
                console=Console(stderr=True), transient=False)
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def update(self, label: str, done: int, total: int, tokens: int | None = None) -> None:
        """Advance the bar named `label` to `done` of `total` (`tokens` generated so far)."""
        if self.disable:
            return
        st = self._stages.get(label)
        if st is None or done < st.done:
            st = self._stages[label] = _Stage(total)
        st.done, st.total = done, total
        if tokens is not None:
            st.tokens = tokens
        if self._progress is not None:
            if label not in self._bars:
                self._bars[label] = self._progress.add_task(label, total=total, rates="")
            self._progress.update(self._bars[label], completed=done, total=total,
                                  rates=st.describe() if done else "")
            return
        now = time.monotonic()
        if done >= total or now - st.last_print >= 10.0 or st.last_print == 0.0:
            st.last_print = now
            print(f"evalkit: {label} {done}/{total} ({st.describe()})", file=sys.stderr,
                  flush=True)
