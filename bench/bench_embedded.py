"""Benchmark of the embedded default model's build: wall time, training tokens/s, held-out ppl.

    python bench/bench_embedded.py [--steps N] [--out DIR] [--samples]

Builds the recipe into a fresh directory (default: a temp dir; the cache is not touched), then
prints build_info's timings and perplexities, and optionally a few greedy samples.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads; see evalkit.embedded

from evalkit import embedded as E  # noqa: E402

PROMPTS = [
    "Jeg ser et",
    "Regjeringen vil",
    "Det er viktig å",
    E.flores_prompt("eng_Latn", "nob_Latn", "The weather is nice today."),
    E.flores_prompt("eng_Latn", "eus_Latn", "I love my family."),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=E.DEFAULT_STEPS)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--samples", action="store_true")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-embedded-")) / "model"
    t0 = time.perf_counter()
    info = E.build_default_model(out, args.data_dir, steps=args.steps, overwrite=True)
    wall = time.perf_counter() - t0
    t = info["training"]
    print(json.dumps({
        "steps": t["steps"], "batch_size": t["batch_size"], "seq_len": t["seq_len"],
        "tokens_seen": t["tokens_seen"], "epochs": round(t["epochs"], 2),
        "train_tokens_per_s": round(t["tokens_per_s"]), "build_wall_s": round(wall, 1),
        "train_s": round(info["wall_s"]["train"], 1),
        "val_ppl_ud_dev": round(info["val"]["ppl"], 1),
        "test_ppl_ud_test": round(info["test"]["ppl"], 1),
        "load_average": os.getloadavg(), "cpu_count": os.cpu_count(),
    }, indent=2))
    if args.samples:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(2)
        tok = AutoTokenizer.from_pretrained(out)
        model = AutoModelForCausalLM.from_pretrained(out)
        for p in PROMPTS:
            ids = tok(p, return_tensors="pt")
            gen = model.generate(**ids, max_new_tokens=30, do_sample=False)
            print(repr(p), "->", repr(tok.decode(gen[0][ids["input_ids"].shape[1]:],
                                                 skip_special_tokens=True)))


if __name__ == "__main__":
    main()
