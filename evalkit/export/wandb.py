"""Logging a run to Weights & Biases (``evalkit run --wandb-project P``).

One W&B run per `evalkit run`: its config (variants, tasks, backend, seed, versions), every
metric in the run summary (``<variant>/<task>/<metric>``), a ``summaries`` table (variant ×
task × metric with CI and n), a ``comparison`` table (each adapter against the base: Δ, CI,
p, Holm-corrected p, verdict) when the run has both, each updated board as HTML with its plots
as images, and per task a ``samples/<task>`` table (variant, sample id, prompt, response,
reference, pass/fail, reasons, per-sample metric values). The run's files go under
``<out>/wandb/``; ``WANDB_MODE=offline`` writes them without an account or network (``wandb
sync`` uploads them later). ``wandb`` is an optional extra: ``pip install 'evalkit[wandb]'``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.errors import BadInput

#: samples logged per variant × task (W&B tables are meant for browsing, the records keep all)
MAX_SAMPLE_ROWS = 2000


def _wandb() -> Any:
    try:
        import wandb
    except ImportError:
        raise BadInput("--wandb-project needs the wandb package: pip install 'evalkit[wandb]' "
                       "(WANDB_MODE=offline logs without an account)") from None
    return wandb


def log_run(summaries: Sequence[Any], out: Path, project: str,
            board_files: Sequence[Path] = ()) -> str:
    """Log the run behind `summaries` (records under `out`) to W&B project `project`; returns
    the run's URL (online) or its local directory (offline)."""
    wandb = _wandb()
    from evalkit.compare import compare_dirs
    from evalkit.export.common import outputs_text, per_item, reference_text
    from evalkit.leaderboard.collect import load_rows
    from evalkit.leaderboard.labels import metric_label, public_name
    from evalkit.view.build import explain

    out = Path(out)
    if board_files:  # `evalkit run` leaves plots to be drawn on demand; W&B logs them
        from evalkit.leaderboard.build import draw_plots

        draw_plots(out, board_files)
    slugs = sorted({s.run_id.split("@", 1)[0] for s in summaries})
    tasks = sorted({s.task for s in summaries})
    rows = [r for r in load_rows([out / k for k in slugs], tasks)]
    first = summaries[0]
    models = sorted({public_name(s.model) for s in summaries})
    config = {"variants": [r.label for r in rows], "tasks": tasks, "backend": first.backend,
              "seed": first.seed, "limit": first.limit, "models": models,
              "versions": dict(first.versions)}
    (out / "wandb").mkdir(parents=True, exist_ok=True)
    run = wandb.init(project=project, dir=str(out), config=config, job_type="evaluation",
                     name=f"{' + '.join(models)} ({len(rows)} variant(s), {len(tasks)} task(s))")
    try:
        table = wandb.Table(columns=["variant", "task", "metric", "label", "value", "ci_low",
                                     "ci_high", "n", "higher_is_better"])
        flat: dict[str, float] = {}
        for r in rows:
            for task, s in sorted(r.summaries.items()):
                for metric, m in s.metrics.items():
                    v = m.get("value")
                    ci = m.get("ci") or (None, None)
                    table.add_data(r.label, task, metric, metric_label(metric), v, ci[0], ci[1],
                                   m.get("n"), bool(m.get("higher_is_better", True)))
                    if isinstance(v, (int, float)):
                        flat[f"{r.label}/{task}/{metric}"] = v
        run.summary.update(flat)
        payload: dict[str, Any] = {"summaries": table}
        bases = [r for r in rows if r.adapter is None and "-merged" not in r.key]
        if len(bases) == 1 and len(rows) > 1:
            comp = wandb.Table(columns=["a", "b", "task", "metric", "label", "value_a",
                                        "value_b", "delta", "delta_ci_low", "delta_ci_high",
                                        "p", "p_holm", "test", "verdict"])
            for r in rows:
                if r is bases[0]:
                    continue
                common = [t for t in tasks if t in r.summaries and t in bases[0].summaries]
                if not common:
                    continue
                c = compare_dirs(bases[0].run_dir, r.run_dir, common)
                for x in c.rows:
                    lo, hi = x.delta_ci or (None, None)
                    comp.add_data(c.a, c.b, x.task, x.metric, x.label, x.a, x.b, x.delta, lo,
                                  hi, x.p_value, x.p_holm, x.test, x.verdict)
            payload["comparison"] = comp
        for page in board_files:
            page = Path(page)
            name = page.parent.name
            payload[f"board/{name}"] = wandb.Html(page.read_text(encoding="utf-8"))
            for png in sorted((page.parent / "plots").glob("*.png")):
                payload[f"board/{name}/{png.stem}"] = wandb.Image(str(png))
        for task in tasks:
            present = [r for r in rows if task in r.summaries and r.samples(task)]
            values = {r.key: per_item(r, task) for r in present}
            metrics = sorted({m for v in values.values() for m in v})
            t = wandb.Table(columns=["variant", "sample_id", "prompt", "response", "reference",
                                     "passed", "reasons", *metrics])
            for r in present:
                s = r.summaries[task]
                for rec in sorted(r.samples(task) or [],
                                  key=lambda x: x.sample_id)[:MAX_SAMPLE_ROWS]:
                    ok, _, _, why = explain(rec.scores, s)
                    t.add_data(r.label, rec.sample_id, rec.prompts[0] if rec.prompts else "",
                               "\n---\n".join(outputs_text(rec.outputs)),
                               reference_text(rec.reference), ok,
                               "; ".join(w[1] for w in why),
                               *[values[r.key].get(m, {}).get(rec.sample_id) for m in metrics])
            payload[f"samples/{task}"] = t
        run.log(payload)
        where = run.url or run.dir
    finally:
        run.finish()
    return str(where)
