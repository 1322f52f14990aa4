"""Board generation: run records → Board → every output format, and the per-run update.

Where boards live (decided here; the README's leaderboard section describes it):

* Configs: ``$EVALKIT_LEADERBOARDS`` dirs, then ``<out>/leaderboards/*.toml``, then the
  checkout's ``leaderboards/*.toml`` (basque, norwegian, sardinian); first name wins.
* Outputs: always ``<out>/leaderboards/<board>/`` next to the runs they summarise
  (``index.html``, ``board.md``, ``board.csv``, ``board_long.csv``, ``board.json``,
  ``plots/``), never the source tree, so tests and users writing to ``--out DIR`` keep
  everything under DIR. `evalkit leaderboard --out` overrides this for one board.
* Sample pages: the HTML cells link to ``<run root>/view/<task>.html#v=<variant>``, which
  `evalkit view` writes (as do `evalkit run` and `evalkit leaderboard` after a board update).

`update_for_run` is what every `evalkit run` calls (unless ``--no-leaderboard``): it rebuilds
each board whose tasks overlap the run's tasks, and, when any of the run's tasks is on no
configured board, the catch-all ``all`` board (every task and metric under the run root).
`evalkit leaderboard DIR` with no config builds ``all`` on demand.

Keeping the per-run refresh cheap:

* Statistics are cached by content in ``<board dir>/.cache/`` (`evalkit.leaderboard.cache`):
  a refresh parses only the sample records whose bytes changed and recomputes only the
  bootstrap replicates and paired tests that touch them; the board is the same as a full
  rebuild's (a test compares them). `evalkit run` and `evalkit leaderboard` use the cache;
  `generate` without ``cache=True`` (the benchmarks' old path) computes everything.
* Plots are drawn on demand, never on a run's critical path: `update_for_run` writes the
  tables and pages without plots, removes the board's earlier plots (they would show older
  numbers) and says in the board's notes which command draws them; `evalkit leaderboard`
  draws them (as does `draw_plots`, which `evalkit run --wandb-project` calls for the pages
  it logs). A background drawer was not chosen: it would outlive the command that started
  it, race the next run's refresh, and leave callers unsure when a board is complete.
  The HTML references only plots written by the same build.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from evalkit.leaderboard.board import Board, build_board
from evalkit.leaderboard.collect import load_rows
from evalkit.leaderboard.config import BoardConfig, auto_config, discover_configs
from evalkit.locks import boards_lock, exclusive
from evalkit.records import RunSummary, write_text_atomic

ALL_BOARD = "all"


PLOT_FILES = ("metrics.png", "metrics.svg", "deltas.png", "deltas.svg")


def write_board(board: Board, out_dir: Path, view_dir: Path | None = None,
                draw: bool | None = None) -> list[Path]:
    """Write every format of `board` into `out_dir`; returns the files written.

    With `view_dir` (where `evalkit view` writes the run's sample pages) each HTML cell links,
    by a relative path, to the samples of its variant × task. `draw`: draw the plots
    (default: the config's ``plots``); False, for a board whose config wants plots, removes
    the earlier ones and notes how to draw them.
    """
    import os
    from urllib.parse import quote

    from evalkit.leaderboard.render import to_csv, to_html, to_long_csv, to_markdown, view_page_name

    out_dir = Path(out_dir)
    href = None
    if view_dir is not None:
        rel = Path(os.path.relpath(Path(view_dir).resolve(), out_dir.resolve())).as_posix()

        def href(task: str, variant: str) -> str:
            return f"{rel}/{quote(view_page_name(task))}#v={quote(variant, safe='')}"

    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    plots: list[Path] = []
    if draw is False and board.config.plots and board.rows:
        for name in PLOT_FILES:  # drawn from older records: never shown beside new numbers
            (out_dir / "plots" / name).unlink(missing_ok=True)
        board.notes.append("plots are not drawn by `evalkit run` (it keeps the refresh "
                           f"fast): `{_rebuild_command(board)}` draws them (RUN_DIR: the "
                           "run's --out folder)")
    elif board.config.plots and board.rows:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            board.notes.append("plots skipped: matplotlib is not installed "
                               "(pip install 'evalkit[plots]')")
        else:
            from evalkit.leaderboard.plots import write_plots

            plots = write_plots(board, out_dir / "plots")
            files += plots
    svgs = [p.relative_to(out_dir).as_posix() for p in plots if p.suffix == ".svg"]
    for name, text in (("board.md", to_markdown(board)), ("board.csv", to_csv(board)),
                       ("board_long.csv", to_long_csv(board)),
                       ("index.html", to_html(board, svgs, href)),
                       ("board.json", json.dumps(_as_json(board), indent=1, ensure_ascii=False))):
        path = out_dir / name
        write_text_atomic(path, text)
        files.append(path)
    return files


def _as_json(board: Board) -> dict:
    from evalkit.leaderboard.details import row_details

    cells = []
    for (key, col_id), c in board.cells.items():
        cells.append({"variant": key, "column": col_id, "value": c.value, "ci": c.ci, "n": c.n,
                      "delta": c.delta, "delta_ci": c.delta_ci, "p_value": c.p_value,
                      "p_holm": c.p_holm,
                      "test": c.test_method, "verdict": c.verdict, "comparable": c.comparable,
                      "flags": c.flags, "signature": c.signature})
    return {"config": board.config.model_dump(),
            "rows": [{"variant": r.key, "label": r.label, "baseline": board.baselines.get(r.key),
                      "rank_score": (board.rank[r.key].value if r.key in board.rank else None),
                      "rank_ci": (board.rank[r.key].ci if r.key in board.rank else None),
                      "details": dict(row_details(r))} for r in board.rows],
            "columns": [{"id": c.id, "task": c.task, "metric": c.metric, "label": c.label,
                         "metric_label": c.metric_label,
                         "group": c.group, "higher_is_better": c.higher_is_better,
                         "ranked": c.ranked} for c in board.columns],
            "cells": cells,
            "mismatches": [m.__dict__ for m in board.mismatches], "notes": board.notes}


def _rebuild_command(board: Board) -> str:
    # no machine path: the pages are publishable
    return "evalkit leaderboard RUN_DIR" + ("" if board.config.name == ALL_BOARD
                                            else f" -c {board.config.name}")


def generate(runs: Sequence[Path], config: BoardConfig | None, out_dir: Path, *,
             plots: bool | None = None, cache: bool = False) -> Board:
    """Build one board from run roots / variant dirs (every task found when `config` is None).

    `plots`: `write_board`'s `draw`. `cache`: look statistics up in, and store them to,
    ``<out_dir>/.cache/`` (callers hold the boards lock).
    """
    if config is None:
        rows = load_rows(runs)
        tasks: list[str] = []
        for r in rows:
            tasks += [t for t in r.summaries if t not in tasks]
        from evalkit.errors import BadInput

        if not tasks:
            raise BadInput(f"no run records under {', '.join(map(str, runs))}; run "
                           "`evalkit run MODEL --out DIR` first")
        config = auto_config(ALL_BOARD, sorted(tasks))
    else:
        rows = load_rows(runs, config.task_names)
    from evalkit.leaderboard.cache import CACHE_DIR, StatsCache

    stats = StatsCache(Path(out_dir) / CACHE_DIR if cache else None)
    board = build_board(config, rows, stats)
    first = Path(runs[0])
    root = first.parent if (first / "summary.jsonl").is_file() else first
    from evalkit.leaderboard.render import VIEW_DIR

    write_board(board, out_dir, root / VIEW_DIR, plots)
    stats.prune()
    return board


def update_for_run(out: Path, summaries: list[RunSummary]) -> list[Path]:
    """Rebuild the boards a run belongs to, under ``<out>/leaderboards/``; returns their pages.

    A board problem never loses a finished run: records are already on disk, so errors are
    reported on stderr with the command that rebuilds the board.
    """
    from evalkit.errors import EvalkitError

    out = Path(out)
    run_tasks = {s.task for s in summaries}
    written: list[Path] = []
    if not run_tasks:
        return written
    targets: list[tuple[str, BoardConfig | None]] = []
    try:
        for _, found in discover_configs(out):
            if found.name != ALL_BOARD and run_tasks & set(found.task_names):
                targets.append((found.name, found))
    except EvalkitError as exc:
        print(f"evalkit: warning: leaderboard configs not read: {exc}", file=sys.stderr)
    covered = {t for _, cfg in targets if cfg is not None for t in cfg.task_names}
    if run_tasks - covered:  # tasks no configured board holds: the catch-all board has them
        targets.append((ALL_BOARD, None))
    for name, cfg in targets:
        try:
            with exclusive(boards_lock(out), what=f"the boards of {out}"):
                generate([out], cfg, out / "leaderboards" / name, plots=False, cache=True)
            written.append(out / "leaderboards" / name / "index.html")
        except (EvalkitError, OSError) as exc:
            print(f"evalkit: warning: leaderboard {name!r} not updated: {exc} "
                  f"(rebuild with `evalkit leaderboard {out}`)", file=sys.stderr)
    return written


def draw_plots(out: Path, pages: Sequence[Path]) -> None:
    """Rebuild the boards of `pages` (``<out>/leaderboards/<board>/index.html``, as
    `update_for_run` returns them) with their plots, from the statistics cache.

    The board's config is the one its ``board.json`` records. Problems are warnings: the
    tables are already written.
    """
    from evalkit.errors import EvalkitError

    out = Path(out)
    for page in pages:
        board_dir = Path(page).parent
        try:
            doc = json.loads((board_dir / "board.json").read_text(encoding="utf-8"))
            cfg = BoardConfig.model_validate(doc["config"])
            if not cfg.plots:
                continue
            with exclusive(boards_lock(out), what=f"the boards of {out}"):
                generate([out], cfg, board_dir, cache=True)
        except (EvalkitError, OSError, ValueError, KeyError) as exc:
            print(f"evalkit: warning: plots of {board_dir.name!r} not drawn: {exc} "
                  f"(draw them with `evalkit leaderboard {out}`)", file=sys.stderr)
