"""Wall time of one grid: Ray with 2 single-thread workers, and with 1, vs local sequential.

    python bench/bench_grid.py [--pairs 3] [--limit 20] [--max-new-tokens 32] [--hidden 256]

The grid is the one tests/test_grid.py runs: 2 tiny random Llama base models (built offline,
`evalkit.testing`) × (base + 2 LoRA adapters) × 2 tasks (flores:eng_Latn-nob_Latn generation,
scala:nob log-likelihoods), hf backend, chat template off. Each measurement is one
`evalkit grid` process into a fresh output folder (nothing skipped), timed from start to exit:

* ``local``: ``--executor local`` (units one after another in the process);
* ``ray2``: ``--executor ray`` on the local Ray cluster it starts (2 CPUs, one unit per CPU:
  two workers);
* ``ray1``: the same with ``--cpus-per-unit 2`` (one unit at a time: Ray's overhead);
* ``ray1-attached``: ``--ray-address`` of a one-CPU cluster started once before the runs
  (`evalkit.grid.local_cluster`), as on a real cluster: the cluster's start-up is not in the
  time, connecting to it is.

Every process runs with OMP_NUM_THREADS=1 (single-thread torch; Ray keeps a set value), so
``ray2`` can at best halve the time on two free cores. The three modes are interleaved, the
order rotating per pair; the report gives each ratio's median and range over the pairs and
checks that every Ray run's metrics equal the local run's. It also splits each run's wall time
into the units' own seconds (from the grid manifest) and the rest (process and cluster
start-up, dispatch, collecting results): the rest, minus the local run's, over the local run's
wall time is Ray's overhead, which a loaded machine disturbs less than the wall ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
       "TRANSFORMERS_OFFLINE": "1", "RAY_AUTH_MODE": "disabled",
       "RAY_USAGE_STATS_ENABLED": "0"}
MODES = {"local": ["--executor", "local"], "ray2": ["--executor", "ray"],
         "ray1": ["--executor", "ray", "--cpus-per-unit", "2"],
         "ray1-attached": ["--executor", "ray", "--ray-address"]}
TASKS = ["flores:eng_Latn-nob_Latn", "scala:nob"]


def build(root: Path, hidden: int, layers: int) -> Path:
    """The grid's models and adapters (kept between runs of the bench) and its file."""
    from evalkit.testing import build_tiny_adapter, build_tiny_model

    for i, seed in enumerate((0, 7)):
        m = root / f"m{i}"
        if not (m / "config.json").exists():
            build_tiny_model(m, seed=seed, hidden=hidden, layers=layers, heads=hidden // 32)
        for j in range(2):
            a = root / f"m{i}-a{j}"
            if not (a / "adapter_config.json").exists():
                build_tiny_adapter(m, a, seed=10 + 3 * i + j)
    grid = root / "grid.toml"
    grid.write_text(f"tasks = {json.dumps(TASKS)}\n\n[options]\nchat_template = \"off\"\n\n"
                    + "".join(f"[[models]]\nmodel = \"m{i}\"\n"
                              f"adapters = [\"a=m{i}-a0\", \"b=m{i}-a1\"]\n\n" for i in (0, 1)))
    return grid


def run_once(grid: Path, out: Path, mode: str, args: argparse.Namespace, address: str
             ) -> float:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "evalkit.cli", "grid", str(grid), "--out", str(out),
           "--limit", str(args.limit), "--max-new-tokens", str(args.max_new_tokens),
           "--no-leaderboard", "--json", *MODES[mode]]
    if mode.endswith("attached"):
        cmd.append(address)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{mode} failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return wall


def outside_units(out: Path, wall: float, parallel: bool) -> float:
    """Seconds of the run spent outside any unit (start-up, cluster, dispatch, collection):
    wall time minus the units' own seconds (their sum, or the longest when they ran at the
    same time), read from the grid manifest."""
    doc = json.loads(next((out / "grid").glob("grid-*.json")).read_text())
    secs = [u["seconds"] for u in doc["units"]]
    return wall - (max(secs) if parallel else sum(secs))


def metrics(out: Path) -> dict[str, dict]:
    from evalkit.records import read_summaries

    return {f"{d.name}|{s.task}": s.metrics for d in sorted(out.iterdir())
            if (d / "summary.jsonl").is_file() for s in read_summaries(d)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--work", default="/tmp/evalkit-bench-grid")
    args = ap.parse_args()
    root = Path(args.work)
    root.mkdir(parents=True, exist_ok=True)
    grid = build(root, args.hidden, args.layers)
    walls: dict[str, list[float]] = {m: [] for m in MODES}
    outside: dict[str, list[float]] = {m: [] for m in MODES}
    same = True
    order = list(MODES)
    from evalkit.grid.local_cluster import LocalCluster

    with LocalCluster(cpus=[1], env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}) as c:
        for i in range(args.pairs):
            outs = {}
            k = i % len(order)
            for mode in order[k:] + order[:k]:
                outs[mode] = root / f"out-{mode}"
                walls[mode].append(run_once(grid, outs[mode], mode, args, c.address))
                outside[mode].append(outside_units(outs[mode], walls[mode][-1],
                                                   parallel=mode == "ray2"))
                print(json.dumps({"pair": i, "mode": mode, "wall_s": round(walls[mode][-1], 2),
                                  "outside_units_s": round(outside[mode][-1], 2)}), flush=True)
            ref = metrics(outs["local"])
            same &= bool(ref) and all(metrics(outs[m]) == ref for m in order if m != "local")
    ratios = {m: [r / loc for r, loc in zip(walls[m], walls["local"])] for m in order[1:]}
    report = {"config": {"pairs": args.pairs, "limit": args.limit,
                         "max_new_tokens": args.max_new_tokens, "hidden": args.hidden,
                         "layers": args.layers, "cpus": os.cpu_count(),
                         "load_avg_at_end": os.getloadavg()},
              "wall_s": {m: [round(w, 2) for w in v] for m, v in walls.items()},
              "median_wall_s": {m: round(statistics.median(v), 2) for m, v in walls.items()},
              "median_outside_units_s": {m: round(statistics.median(v), 2)
                                         for m, v in outside.items()},
              # what Ray adds outside the units, as a share of the local run's wall time
              "ray_overhead_share": {m: round(statistics.median(
                  [(o - lo) / lw for o, lo, lw in zip(outside[m], outside["local"],
                                                       walls["local"])]), 3)
                  for m in order[1:]},
              "ratio_to_local": {m: {"median": round(statistics.median(v), 3),
                                     "min": round(min(v), 3), "max": round(max(v), 3)}
                                 for m, v in ratios.items()},
              "ray_metrics_equal_local": same}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
