"""`evalkit view`: a static, offline HTML viewer of the per-sample records.

Importing this package stays light (typer only); `evalkit.view.build` does the work. Pages go to
``<run root>/view/`` by default, where the boards' cells link (``../../view/<task>.html#v=``).
"""

from __future__ import annotations

from pathlib import Path

import typer


def view(
    runs: list[Path] = typer.Argument(..., help="Run roots (`evalkit run --out DIR`) or their "
                                      "<model>-<hash> variant directories."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (default: "
                                       "<first run root>/view)."),
    task: list[str] = typer.Option([], "--task", "-t", help="Only this task (repeatable)."),
) -> None:
    """Write a static HTML viewer of every sample: prompts, responses, scores and reasons."""
    from evalkit.view.build import build_view, default_out

    target = out or default_out(runs)
    pages = build_view(runs, target, task or None)
    typer.echo(f"view: {pages[0]} ({len(pages) - 1} task page(s))")


def register(app: typer.Typer) -> None:
    """Add the `view` command."""
    app.command("view")(view)
