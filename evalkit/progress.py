"""Rich progress bars for generation and scoring, driven by the runner's callback."""

from __future__ import annotations

from typing import Any


class Progress:
    """Context manager; `update(label, done, total)` creates/advances one bar per label."""

    def __init__(self, disable: bool = False) -> None:
        self.disable = disable
        self._bars: dict[str, Any] = {}
        self._progress: Any = None

    def __enter__(self) -> Progress:
        if not self.disable:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RP,
                                       TextColumn, TimeElapsedColumn, TimeRemainingColumn)

            self._progress = RP(TextColumn("{task.description}"), BarColumn(),
                                MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                                transient=False)
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def update(self, label: str, done: int, total: int) -> None:
        """Advance the bar named `label`."""
        if self._progress is None:
            return
        if label not in self._bars:
            self._bars[label] = self._progress.add_task(label, total=total)
        self._progress.update(self._bars[label], completed=done, total=total)
