"""`evalkit view` on a large run, and board building now vs the code it replaced.

1. View: build time of the viewer for an N-sample FLORES-shaped run with 3 variants
   (`evalkit.view.build.build_view`), and the page's load time in headless Chromium
   (navigation start → first page of samples rendered, the page's own ``__viewReadyMs``), plus
   one full-text search over all samples; several repeats, median and range.
2. Boards: `evalkit.leaderboard.build.generate` on the same run, this checkout vs the commit
   this work branched from (`git merge-base HEAD main`, extracted to a temporary folder), each
   timed inside its own fresh interpreter (imports excluded), interleaved in pairs; median ratio
   (now / before) with its range. The new board does more per build (per-sample values behind
   rates, Holm's correction, details rows, two plot figures with one panel per scale).

Records are synthetic (random words, valid sacrebleu statistics; `tests/scripted_runs.py`
`synthetic_run`), written as evalkit records, so no model runs.

Usage: python bench/bench_view.py [--samples 10000] [--board-samples 2000] [--pairs 5]
Prints Markdown for BENCHMARKS.md and writes bench/out/view.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

BOARD_TIMER = r"""
import json, sys, time
from pathlib import Path
from evalkit.leaderboard.build import generate
from evalkit.leaderboard.config import auto_config
run, out, plots = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1"
cfg = auto_config("bench", ["flores:eng_Latn-eus_Latn:devtest"]).model_copy(
    update={"plots": plots})
t = time.perf_counter()
generate([run], cfg, out)
print(json.dumps({"seconds": time.perf_counter() - t}))
"""


def _summary(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}–{max(xs):.2f})"


def bench_view(root: Path, n: int, repeat: int) -> dict:
    from cdp import Chromium, chromium_binary
    from scripted_runs import FLORES, synthetic_run

    from evalkit.view.build import build_view, page_name

    run = synthetic_run(root / "view-run", n, 3)
    builds, loads, searches = [], [], []
    for i in range(repeat):
        t = time.perf_counter()
        build_view([run], root / f"view-{i}")
        builds.append(time.perf_counter() - t)
    page = root / "view-0" / page_name(FLORES)
    exe = chromium_binary()
    if exe is not None:
        with Chromium(exe, root / "profile", width=1400, height=1000) as b:
            for _ in range(repeat):
                b.open("about:blank")
                b.open(page.as_uri())
                loads.append(b.eval("window.__viewReadyMs") / 1000)
                t = time.perf_counter()
                b.type("#q", "ka")
                b.wait(f"!document.getElementById('count').textContent.startsWith('{n} of')")
                searches.append(time.perf_counter() - t)
    return {"samples": n, "variants": 3, "page_mb": page.stat().st_size / 1e6,
            "build_s": builds, "load_s": loads, "search_s": searches}


def _old_tree(root: Path) -> Path:
    base = subprocess.run(["git", "merge-base", "HEAD", "main"], cwd=REPO, capture_output=True,
                          text=True, check=True).stdout.strip()
    tree = root / "before"
    tree.mkdir()
    archive = subprocess.run(["git", "archive", base, "evalkit", "tasks", "oracles"], cwd=REPO,
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    # the installed layout: tasks/ and oracles/ live inside the package
    (tree / "tasks").rename(tree / "evalkit" / "tasks")
    (tree / "oracles").rename(tree / "evalkit" / "oracles")
    return tree


def _time_board(python_path: Path | None, run: Path, out: Path, plots: bool) -> float:
    env = dict(__import__("os").environ)
    if python_path is not None:
        env["PYTHONPATH"] = str(python_path)
    code = ("import evalkit, sys; from pathlib import Path; "
            "assert Path(evalkit.__file__).parent == "
            f"Path({str((python_path or REPO) / 'evalkit')!r})"
            "; exec(sys.stdin.read())")
    res = subprocess.run([sys.executable, "-c", code, str(run), str(out), "1" if plots else "0"],
                         input=BOARD_TIMER, capture_output=True, text=True, env=env,
                         cwd=str(out.parent))
    if res.returncode:
        raise RuntimeError(res.stderr[-2000:])
    return json.loads(res.stdout.strip().splitlines()[-1])["seconds"]


def bench_boards(root: Path, n: int, pairs: int) -> dict:
    from scripted_runs import synthetic_run

    run = synthetic_run(root / "board-run", n, 3)
    old = _old_tree(root)
    out: dict = {"samples": n, "variants": 3}
    for plots in (False, True):
        before, now = [], []
        for i in range(pairs):
            before.append(_time_board(old, run, root / f"b-old-{plots}-{i}", plots))
            now.append(_time_board(None, run, root / f"b-new-{plots}-{i}", plots))
        out["plots" if plots else "tables"] = {
            "before_s": before, "now_s": now,
            "ratio": [a / b for a, b in zip(now, before)]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=10000)
    ap.add_argument("--board-samples", type=int, default=2000)
    ap.add_argument("--pairs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        view = bench_view(root, args.samples, args.pairs)
        boards = bench_boards(root, args.board_samples, args.pairs)
    doc = {"machine": f"{platform.processor() or platform.machine()}, python "
                      f"{platform.python_version()}", "view": view, "boards": boards}
    (REPO / "bench" / "out").mkdir(exist_ok=True)
    (REPO / "bench" / "out" / "view.json").write_text(json.dumps(doc, indent=1))
    print(f"| `evalkit view`, {view['samples']:,} samples × 3 variants "
          f"({view['page_mb']:.1f} MB page) | median (range), s |")
    print("|---|---:|")
    print(f"| build (Python: read records, per-sample values, write) | "
          f"{_summary(view['build_s'])} |")
    if view["load_s"]:
        print(f"| page load in Chromium (navigation → first 50 samples shown) | "
              f"{_summary(view['load_s'])} |")
        print(f"| full-text search over every sample and variant | "
              f"{_summary(view['search_s'])} |")
    print()
    print(f"| board build, {boards['samples']:,} samples × 3 variants | before, s | now, s | "
          "now / before |")
    print("|---|---:|---:|---:|")
    for k in ("tables", "plots"):
        b = boards[k]
        print(f"| {'tables + HTML' if k == 'tables' else 'with plots'} | "
              f"{_summary(b['before_s'])} | {_summary(b['now_s'])} | {_summary(b['ratio'])} |")


if __name__ == "__main__":
    main()
