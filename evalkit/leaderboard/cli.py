"""`evalkit leaderboard`: build boards from run records (typer only at import)."""

from __future__ import annotations

from pathlib import Path

import typer


def leaderboard(
    runs: list[Path] = typer.Argument(None, help="Run roots (`evalkit run --out DIR`) or their "
                                      "<model>-<hash> variant dirs (default: runs)."),
    config: str | None = typer.Option(None, "--config", "-c", help="Board config: a TOML "
                                         "file, or the name of a bundled board (basque, "
                                         "norwegian, sardinian); default: every task found, "
                                         "every metric."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output dir (default: "
                                       "<first run root>/leaderboards/<board name>/)."),
    strict: bool = typer.Option(False, help="Refuse mismatched runs instead of flagging them."),
    baseline: str | None = typer.Option(None, help="Baseline row (label or variant dir); "
                                           "overrides the config's (default: each adapter's "
                                           "base model)."),
    test: str | None = typer.Option(None, help="Paired test: bs | ar."),
    plots: bool = typer.Option(True, help="Write PNG/SVG plots (matplotlib)."),
) -> None:
    """Build a leaderboard (Markdown, CSV, HTML, plots) from saved run records."""
    from evalkit.errors import BadInput
    from evalkit.leaderboard.build import ALL_BOARD, generate
    from evalkit.leaderboard.config import find_config, load_config

    paths = list(runs) if runs else [Path("runs")]
    from evalkit.leaderboard.collect import find_variant_dirs

    find_variant_dirs(paths)  # every path must exist before anything is read or written
    root = paths[0].parent if (paths[0] / "summary.jsonl").exists() else paths[0]
    cfg = load_config(find_config(config, root)) if config is not None else None
    overrides: dict = {}
    if strict:
        overrides["strict"] = True
    if baseline:
        overrides["baseline"] = baseline
    if test:
        if test not in ("bs", "ar"):
            raise BadInput("--test must be bs or ar")
        overrides["test"] = test
    if not plots:
        overrides["plots"] = False
    if cfg is not None and overrides:
        cfg = cfg.model_validate({**cfg.model_dump(), **overrides})
    elif cfg is None and overrides:
        from evalkit.leaderboard.collect import load_rows
        from evalkit.leaderboard.config import auto_config

        tasks = sorted({t for r in load_rows(paths) for t in r.summaries})
        if not tasks:
            raise BadInput(f"no run records under {', '.join(map(str, paths))}")
        cfg = auto_config(ALL_BOARD, tasks)
        cfg = cfg.model_validate({**cfg.model_dump(), **overrides})
    target = out or root / "leaderboards" / (cfg.name if cfg else ALL_BOARD)
    from evalkit.locks import boards_lock, exclusive
    from evalkit.paths import ensure_writable_dir

    ensure_writable_dir(target)
    with exclusive(boards_lock(root), what=f"the boards of {root}"):
        board = generate(paths, cfg, target, cache=True)
    n_flag = len(board.mismatches)
    typer.echo(f"{board.config.name}: {len(board.rows)} models × {len(board.columns)} columns"
               f" → {target}/index.html" + (f" ({n_flag} mismatched cells flagged)"
                                           if n_flag else ""))
    from evalkit.view.build import build_view, default_out

    # the board's cells link into the run root's sample pages: keep them in step
    pages = build_view(paths, default_out(paths))
    typer.echo(f"samples: {pages[0]}")


def register(app: typer.Typer) -> None:
    """Add the `leaderboard` command."""
    app.command("leaderboard")(leaderboard)
