"""What identity by content costs: hashing the model and adapters vs a whole FLORES run.

Every run hashes the base model's files and every adapter's (sha256 over file hashes,
memoised by path + size + mtime in ``$EVALKIT_CACHE/file_hashes.json``) once per run, never per
request. This measures, interleaved in one invocation (``--pairs`` rounds):

* identity, cold: `resolve_model` + `resolve_adapters` with an empty hash memo (first run);
* identity, warm: the same with the memo filled (every later run);
* the whole ``evalkit run MODEL --adapter A --adapter B -t flores:eng_Latn-nob_Latn`` CLI
  command, from a fresh output folder each time.

Reports the median (and min–max) of each and identity's share of the run's wall time.
Usage: python bench/bench_identity.py [--model default] [--limit N] [--pairs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _identity(model: str, adapters: list[str], cache: Path, cold: bool) -> float:
    code = (
        "import time,sys\n"
        "from evalkit.models import resolve_model, resolve_adapters\n"
        "t=time.perf_counter()\n"
        f"m=resolve_model({model!r})\n"
        f"a=resolve_adapters({adapters!r})\n"
        "print(time.perf_counter()-t)\n")
    env = {**os.environ, "EVALKIT_CACHE": str(cache)}
    if cold:
        (cache / "file_hashes.json").unlink(missing_ok=True)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    return float(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--pairs", type=int, default=3)
    args = ap.parse_args()
    from evalkit.models import resolve_model
    from evalkit.testing import build_tiny_adapter

    model_dir = resolve_model(args.model).path
    tmp = Path(tempfile.mkdtemp(prefix="bench_identity_"))
    adapters = [str(build_tiny_adapter(Path(model_dir), tmp / f"round{k}" / "adapter", seed=k))
                for k in (1, 2)]
    cache = Path(os.environ.get("EVALKIT_CACHE", Path.home() / ".cache" / "evalkit"))
    rows: dict[str, list[float]] = {"identity_cold": [], "identity_warm": [], "run": []}
    for i in range(args.pairs):
        rows["identity_cold"].append(_identity(model_dir, adapters, cache, cold=True))
        rows["identity_warm"].append(_identity(model_dir, adapters, cache, cold=False))
        cmd = [sys.executable, "-m", "evalkit.cli", "run", model_dir, "-t",
               "flores:eng_Latn-nob_Latn", "--out", str(tmp / f"out{i}"), "--no-leaderboard",
               "--json", *[x for a in adapters for x in ("--adapter", a)],
               *(["--limit", str(args.limit)] if args.limit else [])]
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        rows["run"].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in rows.items()}
    doc = {"model": args.model, "limit": args.limit, "pairs": args.pairs, "seconds": rows,
           "median": med, "share_cold": med["identity_cold"] / med["run"],
           "share_warm": med["identity_warm"] / med["run"]}
    out = Path(__file__).resolve().parent / "out" / "identity.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(doc, indent=1))
    print("| measure | median s | min–max s |\n|---|---|---|")
    for k, v in rows.items():
        print(f"| {k} | {med[k]:.3f} | {min(v):.3f}–{max(v):.3f} |")
    print(f"\nidentity share of the run: cold {doc['share_cold']:.2%}, "
          f"warm {doc['share_warm']:.2%}")


if __name__ == "__main__":
    main()
