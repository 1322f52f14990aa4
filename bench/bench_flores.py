"""FLORES eng→nob: evalkit vs lm-evaluation-harness (hf backend), same model, data, settings.

Measures, in one run on one machine:
1. wall time of the whole CLI command (start-up, model load, generation, scoring, CIs) for
   ``evalkit run`` and ``lm_eval`` (hf backend; batch size 1 = its default, and a batched
   setting), and checks that generations and BLEU/chrF agree;
2. CI cost: evalkit's 1,000-resample bootstrap on sufficient statistics vs lm-eval's
   ``bootstrap_stderr`` (100 corpus recomputations, its cap for BLEU/chrF);
3. ``evalkit --help`` vs ``lm_eval --help`` start-up.

Usage: python bench/bench_flores.py [--model DIR|default] [--limit N] [--lm-eval-batch 1,32]
Writes bench/out/flores.json and prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import gzip
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

# the lm-eval task and the timing helper are bench_speed's (run from bench/ or as a script)
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_speed import FLORES_YAML as YAML  # noqa: E402
from bench_speed import timed  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--lm-eval-batch", default="1,32")
    ap.add_argument("--data-dir", default=os.environ.get("EVALKIT_DATA_DIR",
                                                         str(REPO.parent / "shared" / "data")))
    args = ap.parse_args()
    data = Path(args.data_dir)
    model = args.model
    if model == "default":
        sys.path.insert(0, str(REPO))
        from evalkit.embedded import ensure_default_model

        model = str(ensure_default_model())
    tmp = Path(tempfile.mkdtemp(prefix="bench-flores-"))
    src = gzip.decompress((data / "flores200/devtest/eng_Latn.devtest.gz").read_bytes()
                          ).decode().splitlines()
    ref = gzip.decompress((data / "flores200/devtest/nob_Latn.devtest.gz").read_bytes()
                          ).decode().splitlines()
    n = args.limit or len(src)
    (tmp / "flores.jsonl").write_text("".join(
        json.dumps({"src": s, "ref": r}, ensure_ascii=False) + "\n"
        for s, r in zip(src[:n], ref[:n])))
    (tmp / "tasks").mkdir()
    (tmp / "tasks" / "bench_flores.yaml").write_text(
        YAML.format(data=tmp / "flores.jsonl", max_new=args.max_new_tokens))
    env = {**os.environ, "EVALKIT_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    out: dict = {"machine": f"{platform.node()} {os.cpu_count()} CPU cores (shared)",
                 "model": model, "sentences": n, "max_new_tokens": args.max_new_tokens}

    # 1. evalkit, whole CLI
    ek_cmd = [str(BIN / "evalkit"), "run", model, "--tasks", "flores:eng_Latn-nob_Latn",
              "--out", str(tmp / "ek"), "--no-leaderboard", "--json", "--chat-template", "off",
              "--max-new-tokens", str(args.max_new_tokens)]
    if args.limit:
        ek_cmd += ["--limit", str(args.limit)]
    ek_wall, res = timed(ek_cmd, env)
    ek = json.loads(res.stdout.strip().splitlines()[-1])
    ek_dir = next(p for p in (tmp / "ek").iterdir() if p.name != "cache")
    ek_hyps = [json.loads(x)["outputs"][0]["texts"][0] for x in
               next((ek_dir / "samples").glob("*.jsonl")).read_text().splitlines()]
    out["evalkit"] = {"wall_s": ek_wall, "bleu": ek["metrics"]["bleu"]["value"],
                      "chrf": ek["metrics"]["chrf"]["value"],
                      "bleu_ci": ek["metrics"]["bleu"].get("ci")}

    # 2. lm-eval, whole CLI, at each batch size
    out["lm_eval"] = {}
    for bs in [int(b) for b in args.lm_eval_batch.split(",")]:
        le_out = tmp / f"le{bs}"
        cmd = [str(BIN / "lm_eval"), "--model", "hf", "--model_args",
               f"pretrained={model},dtype=float32", "--tasks", "bench_flores_eng_nob",
               "--include_path", str(tmp / "tasks"), "--batch_size", str(bs), "--device", "cpu",
               "--output_path", str(le_out), "--log_samples"]
        wall, _ = timed(cmd, env)
        res_file = next(le_out.rglob("results_*.json"))
        r = json.loads(res_file.read_text())["results"]["bench_flores_eng_nob"]
        samples = [json.loads(x) for x in next(le_out.rglob("samples_*.jsonl")
                                               ).read_text().splitlines()]
        samples.sort(key=lambda s: s["doc_id"])
        hyps = [s["filtered_resps"][0] for s in samples]
        same = sum(a.strip() == b.strip() for a, b in zip(hyps, ek_hyps))
        out["lm_eval"][bs] = {"wall_s": wall, "bleu": r["bleu,none"], "chrf": r["chrf,none"],
                              "identical_generations": f"{same}/{n}",
                              "ratio_evalkit_over_lm_eval": ek_wall / wall}

    # 3. CI cost on the same hypotheses
    sys.path.insert(0, str(REPO))
    from lm_eval.api.metrics import bleu, bootstrap_stderr

    from evalkit import mt_metrics

    t = time.perf_counter()
    mt_metrics.corpus_metric("bleu", ek_hyps, ref[:n], resamples=1000)
    ek_ci = time.perf_counter() - t
    items = list(zip(ref[:n], ek_hyps))
    t = time.perf_counter()
    bootstrap_stderr(bleu, items, iters=100)
    le_ci = time.perf_counter() - t
    out["ci"] = {"evalkit_1000_resamples_s": ek_ci, "lm_eval_100_resamples_s": le_ci,
                 "speedup_per_resample": (le_ci / 100) / (ek_ci / 1000)}

    # 4. --help start-up
    def med(cmd: list[str]) -> float:
        ts = []
        for _ in range(5):
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, env=env)
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    out["help"] = {"evalkit_s": med([str(BIN / "evalkit"), "--help"]),
                   "lm_eval_s": med([str(BIN / "lm_eval"), "--help"])}
    (REPO / "bench" / "out").mkdir(parents=True, exist_ok=True)
    (REPO / "bench" / "out" / "flores.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
