"""Running a grid: skip finished units, hand the rest to an executor, build the boards once.

Executors take the units still to run and yield one `UnitOutcome` per unit as each finishes:
`LocalExecutor` runs them one after another in this process, `evalkit.grid.ray_exec.RayExecutor`
as Ray tasks across a cluster. Whatever the executor, the records, the unit manifests, the grid
manifest (``<out>/grid/grid-<key>.json``: units, their status and where they ran, the cluster)
and the single leaderboard build at the end are the same.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import sys
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from evalkit.grid.units import GridPlan, Unit, UnitOutcome, finished
from evalkit.grid.work import absorb_records, execute_unit
from evalkit.records import RunSummary, write_text_atomic
from evalkit.types import stable_hash


class Reporter(Protocol):
    """What executors tell the driver's display."""

    def started(self, unit: Unit) -> None:
        """`unit` began running."""
        ...

    def generations(self, key: str, n: int) -> None:
        """Unit `key` has finished `n` generations so far."""
        ...


class Executor(Protocol):
    """Runs units, yielding each one's outcome as it finishes."""

    name: str

    def run(self, units: Sequence[Unit], plan: GridPlan, reporter: Reporter
            ) -> Generator[UnitOutcome, None, None]:
        """Run `units`, yielding each one's outcome as it finishes."""
        ...

    def cluster(self) -> dict[str, Any]:
        """Where the units ran (recorded in the grid summary)."""
        ...


class LocalExecutor:
    """One unit after another, in this process."""

    name = "local"

    def __init__(self, notify: Callable[[str], None] | None = None) -> None:
        self.notify = notify

    def run(self, units: Sequence[Unit], plan: GridPlan, reporter: Reporter
            ) -> Generator[UnitOutcome, None, None]:
        """Run the units in order, in this process."""
        for unit in units:
            reporter.started(unit)
            yield execute_unit(unit, plan, progress=_counting(unit.key, reporter),
                               notify=self.notify)

    def cluster(self) -> dict[str, Any]:
        """This machine."""
        from evalkit.grid.work import node_info

        return {"executor": "local", **node_info()}


def _counting(key: str, reporter: Reporter) -> Callable[..., None]:
    """A runner progress callback (``(label, done, total, tokens=...)``, `evalkit.progress`)
    that reports the unit's finished generations."""
    done: dict[str, int] = {}

    def progress(label: str, n: int, total: int, tokens: int | None = None) -> None:
        if label in ("generating", "log-likelihoods"):
            done[label] = n
            reporter.generations(key, sum(done.values()))

    return progress


class GridProgress:
    """One line across all workers: units done, running, generations and their rate."""

    def __init__(self, total: int, disable: bool = False) -> None:
        self.total, self.disable = total, disable
        self.done = self.failed = self.samples = 0
        self.running: set[str] = set()
        self.counts: dict[str, int] = {}
        self.t0 = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> GridProgress:
        if not self.disable and self.total:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=Console(stderr=True))
            self._bar.__enter__()
            self._task = self._bar.add_task("grid", total=self.total)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def started(self, unit: Unit) -> None:
        """Count `unit` as running."""
        self.running.add(unit.key)
        self._show()

    def generations(self, key: str, n: int) -> None:
        """Record unit `key`'s finished generations."""
        self.counts[key] = n
        self._show()

    def finished(self, outcome: UnitOutcome) -> None:
        """Count a finished (or failed) unit."""
        self.running.discard(outcome.key)
        self.done += 1
        self.failed += outcome.status == "failed"
        self.samples += outcome.n_samples
        self._show()

    def line(self) -> str:
        """``units 3/8 · 2 running · 1 failed · 412 generations (21.3/s) · 120 samples
        (6.2/s)``: samples count once their unit is scored and written."""
        n = sum(self.counts.values())
        dt = max(time.perf_counter() - self.t0, 1e-9)
        return (f"units {self.done}/{self.total} · {len(self.running)} running"
                + (f" · {self.failed} failed" if self.failed else "")
                + f" · {n} generations ({n / dt:.1f}/s) · {self.samples} samples "
                f"({self.samples / dt:.1f}/s)")

    def _show(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, description=self.line())


@dataclass
class GridResult:
    """What a grid run gave, in unit order."""

    outcomes: list[UnitOutcome]
    manifest: Path
    board_files: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    labels: dict[str, str] = field(default_factory=dict)  # unit key → label

    @property
    def summaries(self) -> list[RunSummary]:
        """Every summary of every finished or skipped unit."""
        return [s for o in self.outcomes for s in o.summaries]

    @property
    def failed(self) -> list[UnitOutcome]:
        """Units that did not finish."""
        return [o for o in self.outcomes if o.status == "failed"]


def grid_manifest_path(plan: GridPlan) -> Path:
    """``<out>/grid/grid-<key>.json``, the key hashing the units' keys."""
    key = stable_hash(sorted(u.key for u in plan.units))[:16]
    return Path(plan.out) / "grid" / f"grid-{key}.json"


def run_grid(plan: GridPlan, executor: Executor, *, show_progress: bool = True,
             notify: Callable[[str], None] | None = None, fail_fast: bool = False
             ) -> GridResult:
    """Run every unit of `plan` not finished before; boards are rebuilt once at the end.

    A failed unit does not stop the others unless `fail_fast` (then units not yet finished
    are left out of the result).
    """
    from evalkit.paths import ensure_writable_dir

    t0 = time.perf_counter()
    out = Path(plan.out)
    ensure_writable_dir(out)
    by_key = {u.key: u for u in plan.units}
    outcomes: dict[str, UnitOutcome] = {}
    todo: list[Unit] = []
    for u in plan.units:
        prev = finished(out, u)
        if prev is not None:
            outcomes[u.key] = prev
        else:
            todo.append(u)
    path = grid_manifest_path(plan)
    old = _read_json(path)
    cluster: dict[str, Any] = {}
    if todo:
        with GridProgress(len(todo), disable=not show_progress) as display, \
                contextlib.closing(executor.run(todo, plan, display)) as stream:
            for outcome in stream:
                unit = by_key[outcome.key]
                if outcome.status == "done" and outcome.records is not None:
                    absorb_records(plan, unit, outcome)
                outcomes[outcome.key] = outcome
                display.finished(outcome)
                if outcome.status == "failed":
                    if notify:
                        notify(f"unit {unit.label} failed: {outcome.error}")
                    if fail_fast:
                        break
            cluster = executor.cluster()
        if notify and show_progress:
            notify(f"grid: {display.line()}")
    ordered = [outcomes[u.key] for u in plan.units if u.key in outcomes]
    summaries = [s for o in ordered for s in o.summaries]
    boards: list[Path] = []
    built = bool(old.get("boards_built")) and not todo
    if plan.leaderboards and summaries and not built:
        from evalkit.leaderboard import update_for_run

        boards = update_for_run(out, summaries) or []
        built = True
    doc = {"units": [_unit_doc(u, outcomes[u.key]) for u in plan.units if u.key in outcomes],
           "tasks": plan.tasks, "run_options": plan.run_options,
           "executor": executor.name if todo else old.get("executor"),
           "cluster": cluster or old.get("cluster", {}), "boards_built": built,
           "updated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    if todo or not old:
        write_text_atomic(path, json.dumps(doc, indent=1, ensure_ascii=False, default=str)
                          + "\n")
    return GridResult(ordered, path, boards, time.perf_counter() - t0,
                      {u.key: u.label for u in plan.units})


def _unit_doc(unit: Unit, o: UnitOutcome) -> dict[str, Any]:
    return {"key": unit.key, "label": unit.label, "status": o.status, "model": o.model,
            "seed": unit.seed, "n_samples": o.n_samples, "seconds": round(o.seconds, 3),
            "worker": o.worker, "error": o.error}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def print_failures(result: GridResult) -> None:
    """Tracebacks of unexpected unit failures, on stderr."""
    for o in result.failed:
        if o.detail:
            print(o.detail, file=sys.stderr)
