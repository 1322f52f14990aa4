"""`evalkit export`: run records in the formats other tools read.

* ``--format lm-eval``: lm-evaluation-harness's ``results_<date>.json`` and
  ``samples_<task>_<date>.jsonl`` per variant (`evalkit.export.lm_eval`), so tools built for
  lm-eval output (its table printer, its file-name utilities, ``datasets``' JSON loader) read
  evalkit runs;
* ``--format eee``: the Every Eval Ever schema (aggregate JSON plus instance-level JSONL,
  `evalkit.export.eee`), the shared results format lm-eval, Inspect and HELM convert to.

`evalkit.export.wandb` logs a run to Weights & Biases (``evalkit run --wandb-project``).
Importing this package stays light (typer only).
"""

from __future__ import annotations

from pathlib import Path

import typer

FORMATS = ("lm-eval", "eee")


def export(
    runs: list[Path] = typer.Argument(..., help="Run roots (`evalkit run --out DIR`) or their "
                                      "<model>-<hash> variant directories."),
    fmt: str = typer.Option(..., "--format", "-f", help="lm-eval | eee."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (default: "
                                       "<first run root>/export/<format>)."),
    task: list[str] = typer.Option([], "--task", "-t", help="Only this task (repeatable)."),
    organization: str = typer.Option("unknown", help="eee: who ran the evaluation "
                                     "(source_organization_name)."),
    relationship: str = typer.Option("other", help="eee: evaluator's relationship to the "
                                     "model: first_party | third_party | collaborative | other."),
) -> None:
    """Export run records as lm-eval results/samples files or Every Eval Ever records."""
    from evalkit.errors import BadInput

    if fmt not in FORMATS:
        raise BadInput(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    first = Path(runs[0])
    root = first.parent if (first / "summary.jsonl").is_file() else first
    target = out or root / "export" / fmt
    if fmt == "lm-eval":
        from evalkit.export.lm_eval import export_lm_eval

        files = export_lm_eval(runs, target, task or None)
    else:
        from evalkit.export.eee import RELATIONSHIPS, export_eee

        if relationship not in RELATIONSHIPS:
            raise BadInput(f"--relationship must be one of {', '.join(RELATIONSHIPS)}")
        files = export_eee(runs, target, task or None, organization=organization,
                           relationship=relationship)
    typer.echo(f"{fmt}: {len(files)} file(s) under {target}")


def register(app: typer.Typer) -> None:
    """Add the `export` command."""
    app.command("export")(export)
