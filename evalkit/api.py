"""The Python API: ``evalkit.evaluate(model, tasks=..., adapters=..., **options)``.

The ``evalkit run`` command calls the same function, so a notebook and the command line give
the same records and numbers::

    import evalkit
    res = evalkit.evaluate("default", tasks=["flores:eng_Latn-nob_Latn"], limit=20, out="runs")
    res.to_pandas()                       # variant × task × metric, value, CI, n
    res.samples("flores:eng_Latn-nob_Latn")   # one row per sample: prompt, response, scores

Options are the fields of `evalkit.runner.RunConfig` (``limit``, ``seed``, ``backend``,
``chat_template``, ``max_new_tokens``, ``task_options``, ``backend_options``, ``out``, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from evalkit.errors import BadInput
from evalkit.progress import ProgressFn
from evalkit.records import RunSummary, read_sample_records

__all__ = ["Results", "evaluate"]


@dataclass(frozen=True)
class Results:
    """What one evaluation wrote: its summaries and where the records live."""

    summaries: list[RunSummary]
    out: Path
    variant_dirs: dict[str, Path]  # run_id → variant directory
    board_files: list[Path]
    view_page: Path | None = None  # the sample viewer's index page, when written

    def to_pandas(self) -> Any:
        """One row per variant × task × metric: value, CI, n, direction, CI method."""
        import pandas as pd

        rows = []
        for s in self.summaries:
            for name, m in s.metrics.items():
                ci = m.get("ci") or (None, None)
                rows.append({"model": s.model, "adapter": s.adapter_label or s.adapter,
                             "task": s.task, "metric": name, "value": m.get("value"),
                             "ci_low": ci[0], "ci_high": ci[1], "n": m.get("n"),
                             "higher_is_better": m.get("higher_is_better", True),
                             "ci_method": m.get("ci_method"), "limit": s.limit,
                             "variant_dir": str(self.variant_dirs[s.run_id])})
        return pd.DataFrame(rows)

    def samples(self, task: str, adapter: str | None = None) -> Any:
        """The task's per-sample records as a flat table (base model unless `adapter` is a
        label or path of an evaluated adapter): id, prompt, response, reference, scores."""
        import pandas as pd

        names = {s.task for s in self.summaries}
        if task not in names:  # as the user wrote it: flores:en-nb, flores:a-b (no split)
            from evalkit.registry import load_task

            try:
                task = load_task(task).name
            except Exception:  # noqa: BLE001 - an unknown name is reported below
                pass
        picked = [s for s in self.summaries if s.task == task
                  and (adapter is None and s.adapter is None
                       or adapter is not None and adapter in (s.adapter_label, s.adapter))]
        if not picked:
            have = sorted({s.task for s in self.summaries})
            raise BadInput(f"no records of task {task!r}"
                           + (f" for adapter {adapter!r}" if adapter else "")
                           + f" in these results (tasks: {', '.join(have)})")
        rows = []
        for r in read_sample_records(self.variant_dirs[picked[-1].run_id], task):
            texts = [t for o in r.outputs for t in o.get("texts", [])]
            flat_scores = {k: v for k, v in r.scores.items()
                           if isinstance(v, (int, float, str, bool)) or v is None}
            rows.append({"id": r.sample_id, "prompt": r.prompts[0] if r.prompts else None,
                         "response": texts[0] if len(texts) == 1 else texts,
                         "reference": r.reference, **flat_scores})
        return pd.DataFrame(rows)


def evaluate(model: str, tasks: Sequence[str] | str = (), adapters: Sequence[str] = (),
             *, suites: Sequence[str] = (), leaderboards: bool = True,
             progress: ProgressFn | None = None,
             notify: Callable[[str], None] | None = None, **options: Any) -> Results:
    """Evaluate `model` (and `adapters`) on `tasks`; write records (and refresh boards).

    Raises:
        evalkit.errors.EvalkitError: a user-fixable problem (message names the fix).
    """
    from evalkit.runner import RunConfig, expand_task_names, run

    known = {f.name for f in fields(RunConfig)} - {"model", "tasks", "adapters"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise BadInput(f"unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    if "out" in options:
        options["out"] = Path(options["out"])
    names = expand_task_names([tasks] if isinstance(tasks, str) else list(tasks), list(suites))
    cfg = RunConfig(model=model, tasks=names, adapters=list(adapters), **options)
    summaries = run(cfg, progress=progress, notify=notify)
    out = Path(cfg.out)
    dirs = {s.run_id: out / s.run_id.split("@", 1)[0] for s in summaries}
    boards: list[Path] = []
    view_page = None
    if leaderboards and cfg.update_leaderboards:
        from evalkit.leaderboard import update_for_run

        boards = update_for_run(out, summaries) or []
        from evalkit.errors import EvalkitError
        from evalkit.view.build import build_view

        try:  # the boards' cells link into these pages
            view_page = build_view([out], out / "view")[0]
        except (EvalkitError, OSError) as exc:
            if notify:
                notify(f"sample viewer not written: {exc} (rebuild with `evalkit view {out}`)")
    return Results(summaries, out, dirs, boards, view_page)
