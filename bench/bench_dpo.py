"""One Δ-DPO round, timed stage by stage, against generation alone (the raw engine) in one run.

A round = N candidates per prompt (the backend's n-sampling) → training-oracle scoring → pair
mining → TRL LoRA DPO. Generation is what any preference-training loop pays anyway; the goal is
that oracle scoring adds little on top of it (scoring / generation small, round / generation
reported honestly: DPO training is a real cost of its own).

Measures in one process, same model, prompts and settings as `evalkit dpo`:
  generation (candidates), scoring (oracle.parse + rule over every candidate), pair mining,
  DPO training; ratios scoring/generation and round/generation.

Usage:
  python bench/bench_dpo.py                       # embedded model + spaCy oracle, 200 prompts
  python bench/bench_dpo.py --tiny --oracle fake  # seconds-long smoke run
Writes bench/out/dpo.json and prints a Markdown row for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default", help="checkpoint dir or 'default'")
    ap.add_argument("--tiny", action="store_true", help="use a random tiny model (smoke test)")
    ap.add_argument("--oracle", default="spacy-nob")
    ap.add_argument("--prompts", type=int, default=200)
    ap.add_argument("--backend", default="hf")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "dpo.json")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    from evalkit.data import DataLayer
    from evalkit.dpo.config import DPOLoopConfig
    from evalkit.dpo.pairs import mine_pairs, pair_stats
    from evalkit.dpo.stages import backend_for, build_prompts, generate, rule_config
    from evalkit.dpo.train import train_dpo
    from evalkit.models import resolve_model
    from evalkit.oracles.rule import judge
    from evalkit.oracles.specs import load_oracle
    from evalkit.types import GenParams

    tmp = Path(tempfile.mkdtemp(prefix="bench_dpo_"))
    if args.tiny:
        from evalkit.testing import build_tiny_model

        model_dir = str(build_tiny_model(tmp / "tiny"))
    else:
        model_dir = resolve_model(args.model).path
    cfg = DPOLoopConfig.model_validate({
        "model": model_dir, "backend": args.backend, "seed": args.seed,
        "oracles": {"train": args.oracle},
        "candidates": {"prompts": {"n": args.prompts}}})
    prompts = build_prompts(cfg.candidates.prompts, DataLayer(None))
    c = cfg.candidates
    groups = [GenParams(max_new_tokens=c.max_new_tokens, temperature=g.temperature, n=g.n,
                        repetition_penalty=c.repetition_penalty, seed=args.seed * 1000 + j)
              for j, g in enumerate(c.groups)]
    t = {}
    t0 = time.perf_counter()
    oracle = load_oracle(args.oracle, {})
    t["oracle_load"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    backend = backend_for(cfg, model_dir, [], args.seed)
    t["backend_load"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    cands = generate(backend, prompts, groups)
    t["generation"] = time.perf_counter() - t0
    backend.close()
    texts = [p + x for p, cs in zip(prompts, cands) for x in cs]
    rule = rule_config(cfg.oracles)
    t0 = time.perf_counter()
    verdicts = judge(oracle, texts, rule)
    t["scoring"] = time.perf_counter() - t0
    n = cfg.n_candidates
    scores = [[v.reward for v in verdicts[i * n:(i + 1) * n]] for i in range(len(prompts))]
    t0 = time.perf_counter()
    pairs = mine_pairs(prompts, cands, scores, min_delta=cfg.pairs.min_delta,
                       min_chosen=cfg.pairs.min_chosen)
    stats = pair_stats(pairs, scores, cfg.pairs.min_chosen)
    t["pair_mining"] = time.perf_counter() - t0
    train = {}
    if pairs:
        t0 = time.perf_counter()
        train = train_dpo(model_dir, [{"prompt": p.prompt, "chosen": p.chosen,
                                       "rejected": p.rejected} for p in pairs],
                          tmp / "adapter", cfg.dpo, cfg.lora, args.seed)
        t["training"] = time.perf_counter() - t0
    else:
        t["training"] = 0.0
    round_s = t["generation"] + t["scoring"] + t["pair_mining"] + t["training"]
    n_words = sum(len(x.split()) for x in texts)
    result = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
        "note": "shared 2-core CPU; other engineers' jobs ran at the same time: noisy",
        "model": cfg.model if not args.tiny else "tiny-random", "oracle": args.oracle,
        "backend": args.backend, "prompts": len(prompts), "candidates": len(texts),
        "words_scored": n_words, "seconds": {k: round(v, 2) for k, v in t.items()},
        "round_s": round(round_s, 2),
        "ratio_round_over_generation": round(round_s / t["generation"], 3),
        "ratio_scoring_over_generation": round(t["scoring"] / t["generation"], 3),
        "ratio_gen_plus_scoring_over_generation": round(
            (t["generation"] + t["scoring"]) / t["generation"], 3),
        "scoring_words_per_s": round(n_words / t["scoring"]) if t["scoring"] else None,
        "pairs": stats.to_json(), "train": train,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    s = result["seconds"]
    print("| model | oracle | prompts×N | generation s | scoring s | training s | pairs | "
          "scoring/gen | (gen+scoring)/gen | round/gen |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {result['model'] if not args.tiny else 'tiny'} | {args.oracle} | "
          f"{len(prompts)}×{n} | {s['generation']} | {s['scoring']} | {s['training']} | "
          f"{stats.n_pairs} | {result['ratio_scoring_over_generation']} | "
          f"{result['ratio_gen_plus_scoring_over_generation']} | "
          f"{result['ratio_round_over_generation']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
