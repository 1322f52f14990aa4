"""Benchmark and validate evalkit's Norwegian grammar oracles; writes BENCHMARKS.md's section.

    python bench/bench_oracles.py [--oracle spacy --oracle stanza] [--n-process 1]

Same as ``evalkit oracle validate --benchmarks BENCHMARKS.md --out bench/out/oracles.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from evalkit.oracles.validate import render, validate

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--oracle", action="append", default=None)
    ap.add_argument("--n-process", type=int, default=1)
    ap.add_argument("--nocola-per-class", type=int, default=1000)
    ap.add_argument("--reuse", action="store_true", help="reuse bench/out/oracles.json results "
                    "of oracles whose model hash is unchanged")
    args = ap.parse_args()
    results = validate(args.oracle or ["spacy", "stanza"], n_process=args.n_process,
                       nocola_per_class=args.nocola_per_class,
                       out_json=ROOT / "bench" / "out" / "oracles.json",
                       benchmarks=ROOT / "BENCHMARKS.md",
                       reuse=ROOT / "bench" / "out" / "oracles.json" if args.reuse else None)
    print(render(results))
