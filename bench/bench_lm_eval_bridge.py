"""lm-eval tasks through evalkit (``evalkit run --tasks lm-eval:…``) vs ``lm_eval`` (hf model).

Same model, same local YAML tasks (tests/data/lm_eval_tasks: FLORES dev eng→nob generative task
written from the mirror, and the tiny multiple-choice task), same --limit, in one run: wall time
of each whole CLI command (start-up, task loading, model load, requests, scoring), their ratio,
and whether every metric is identical.

Usage: python bench/bench_lm_eval_bridge.py [--model DIR] [--limit N] [--max-gen-toks K]
       [--lm-eval-batch B] [--repeats R]
Writes bench/out/lm_eval_bridge.json and prints a Markdown row for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GEN, MC = "evalkit_flores_eng_nob", "evalkit_tiny_mc"


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{res.stderr[-3000:]}")
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None, help="model dir (default: a fresh tiny Llama)")
    ap.add_argument("--limit", type=int, default=64)
    ap.add_argument("--max-gen-toks", type=int, default=32)
    ap.add_argument("--lm-eval-batch", default="32")
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args()
    sys.path.insert(0, str(REPO / "tests"))
    from test_lm_eval_bridge import materialise  # the same fixture materialisation as tests

    tmp = Path(tempfile.mkdtemp(prefix="bench_lmeb_"))
    model = Path(a.model) if a.model else None
    if model is None:
        from evalkit.testing import build_tiny_model

        model = build_tiny_model(tmp / "tiny")
    data = Path(os.environ.get("EVALKIT_DATA_DIR", REPO.parent / "shared" / "data"))
    tasks = materialise(data, tmp / "tasks", n=max(a.limit, 6))
    y = tasks / "flores_eng_nob.yaml"
    y.write_text(y.read_text().replace("max_gen_toks: 8", f"max_gen_toks: {a.max_gen_toks}"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "2", "TOKENIZERS_PARALLELISM": "false"}
    ek_t, lm_t = [], []
    for r in range(a.repeats):
        ek_out, lm_out = tmp / f"ek{r}", tmp / f"lm{r}"
        ek_t.append(_timed([str(BIN / "evalkit"), "run", str(model), "--tasks",
                            f"lm-eval:{GEN}@{tasks},lm-eval:{MC}@{tasks}", "--limit",
                            str(a.limit), "--dtype", "float32", "--out", str(ek_out),
                            "--no-leaderboard"], env))
        lm_t.append(_timed([str(BIN / "lm_eval"), "--model", "hf", "--model_args",
                            f"pretrained={model},dtype=float32", "--tasks", f"{GEN},{MC}",
                            "--include_path", str(tasks), "--device", "cpu", "--batch_size",
                            a.lm_eval_batch, "--limit", str(a.limit), "--output_path",
                            str(lm_out)], env))
    ours: dict[str, dict[str, float]] = {}
    for line in next(ek_out.glob("*/summary.jsonl")).read_text().splitlines():
        s = json.loads(line)
        ours[s["task"].split(":", 1)[1].split("@")[0]] = {
            k: m["value"] for k, m in s["metrics"].items()}
    ref = json.loads(next(lm_out.rglob("results_*.json")).read_text())["results"]
    mismatches = [f"{t}/{k}" for t in (GEN, MC) for k, v in ref[t].items()
                  if "," in k and "_stderr" not in k
                  and abs(ours[t].get(k, 1e9) - float(v)) > 1e-12]
    ek, lm = statistics.median(ek_t), statistics.median(lm_t)
    res = {"machine": f"{platform.machine()} {os.cpu_count()} cores (shared, noisy)",
           "model": str(model) if a.model else "tiny Llama (2 layers, 64 hidden, fp32)",
           "limit": a.limit, "max_gen_toks": a.max_gen_toks, "lm_eval_batch": a.lm_eval_batch,
           "evalkit_s": ek_t, "lm_eval_s": lm_t, "ratio": ek / lm,
           "metrics_identical": not mismatches, "mismatches": mismatches,
           "scores": {t: ours[t] for t in (GEN, MC)}}
    (REPO / "bench" / "out").mkdir(parents=True, exist_ok=True)
    (REPO / "bench" / "out" / "lm_eval_bridge.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))
    print(f"| {a.limit} docs × 2 tasks, {a.max_gen_toks} gen toks | {ek:.1f} s | {lm:.1f} s "
          f"(batch {a.lm_eval_batch}) | {ek / lm:.2f}× | {'yes' if not mismatches else 'NO'} |")


if __name__ == "__main__":
    main()
