"""Benchmarks of the embedded default model.

    python bench/bench_embedded.py build [--steps N] [--out DIR] [--samples]
    python bench/bench_embedded.py omp [--pairs 5] [--steps 15]
    python bench/bench_embedded.py ready [--pairs 5]

``build``: trains the recipe into a fresh directory (default: a temp dir; the cache and the
shipped model are not touched) and prints build_info's timings and perplexities, optionally a
few greedy samples. ``omp``: the OpenMP wait policy evalkit sets on import (PASSIVE) against
the OpenMP default (ACTIVE), as interleaved pairs of short training runs in fresh processes;
median ratio of training tokens/s with the spread. ``ready``: seconds until ``default`` is a
loaded model in a fresh process: the shipped checkpoint against a 1-step build (data, tokenizer,
one step, evaluation, save: a floor under any rebuild), interleaved.
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

from evalkit import embedded as E

PROMPTS = [
    "Jeg ser et",
    "Regjeringen vil",
    "Det er viktig å",
    E.flores_prompt("eng_Latn", "nob_Latn", "The weather is nice today."),
    E.flores_prompt("eng_Latn", "eus_Latn", "I love my family."),
]

_TRAIN = """
import json, sys, time
from evalkit.embedded import train as T
from evalkit.embedded.corpus import load_corpus
import torch
torch.set_num_threads(2)
c = load_corpus(limit=3000)
tok = T.train_tokenizer([t for _, t in c.docs], vocab_size=2000)
docs, _ = T.encode_docs(tok, c)
from transformers import LlamaForCausalLM
torch.manual_seed(0)
m = LlamaForCausalLM(T.model_config(tok))
t = time.perf_counter()
T.train(m, docs, steps=int(sys.argv[1]), seq_len=256, batch_size=8, lr=1e-3, seed=0,
        progress=lambda *a: None, log=None)
print(json.dumps({"tok_s": int(sys.argv[1]) * 8 * 256 / (time.perf_counter() - t)}))
"""

_READY = """
import sys, time
t = time.perf_counter()
from evalkit import embedded as E
from transformers import AutoModelForCausalLM
if sys.argv[1] == "shipped":
    path = E.ensure_default_model()
else:
    import tempfile
    path = E.ensure_default_model(cache_dir=tempfile.mkdtemp(), steps=1, quiet=True)
AutoModelForCausalLM.from_pretrained(path)
print(time.perf_counter() - t)
"""


def _py(code: str, *args: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, check=True)
    return out.stdout.strip().splitlines()[-1]


def _summary(name: str, a: list[float], b: list[float], unit: str) -> dict:
    ratios = [x / y for x, y in zip(a, b)]
    return {"what": name, "unit": unit, "a": [round(x, 2) for x in a],
            "b": [round(x, 2) for x in b], "median_ratio_a_over_b": round(
                statistics.median(ratios), 3),
            "ratio_min_max": [round(min(ratios), 3), round(max(ratios), 3)],
            "load_average": os.getloadavg(), "cpu_count": os.cpu_count()}


def bench_omp(pairs: int, steps: int) -> dict:
    """Training tokens/s with OMP_WAIT_POLICY=PASSIVE (a) vs ACTIVE (b), interleaved."""
    a, b = [], []
    for i in range(pairs):
        for policy, acc in ((("PASSIVE", a), ("ACTIVE", b)) if i % 2 == 0
                            else (("ACTIVE", b), ("PASSIVE", a))):
            acc.append(json.loads(_py(_TRAIN, str(steps),
                                      env={"OMP_WAIT_POLICY": policy}))["tok_s"])
    return _summary("training tokens/s, PASSIVE (a) vs ACTIVE (b)", a, b, "tok/s")


def bench_ready(pairs: int) -> dict:
    """Seconds to a loaded `default`: shipped (a) vs a 1-step build (b), interleaved."""
    a, b = [], []
    for i in range(pairs):
        order = (("shipped", a), ("build", b)) if i % 2 == 0 else (("build", b), ("shipped", a))
        for kind, acc in order:
            acc.append(float(_py(_READY, kind)))
    return _summary("seconds to a loaded default model, shipped (a) vs 1-step build (b)", a, b,
                    "s")


def bench_build(steps: int, out: Path | None, samples: bool) -> dict:
    """Build the recipe (or `steps` of it) once and report build_info's numbers."""
    out = out or Path(tempfile.mkdtemp(prefix="bench-embedded-")) / "model"
    t0 = time.perf_counter()
    info = E.build_default_model(out, steps=steps, overwrite=True, log=E.BuildLog())
    wall = time.perf_counter() - t0
    t = info["training"]
    res = {
        "steps": t["steps"], "batch_size": t["batch_size"], "seq_len": t["seq_len"],
        "tokens_seen": t["tokens_seen"], "epochs": round(t["epochs"], 2),
        "train_tokens_per_s": round(t["tokens_per_s"]), "build_wall_s": round(wall, 1),
        "train_s": round(info["wall_s"]["train"], 1),
        "val_ppl_ud_dev": round(info["val"]["ppl"], 1),
        "test_ppl_ud_test": round(info["test"]["ppl"], 1),
        "load_average": os.getloadavg(), "cpu_count": os.cpu_count(),
    }
    if samples:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(2)
        tok = AutoTokenizer.from_pretrained(out)
        model = AutoModelForCausalLM.from_pretrained(out)
        res["samples"] = {}
        for p in PROMPTS:
            ids = tok(p, return_tensors="pt")
            gen = model.generate(**ids, max_new_tokens=30, do_sample=False)
            res["samples"][p] = tok.decode(gen[0][ids["input_ids"].shape[1]:],
                                           skip_special_tokens=True)
    return res


def main() -> None:
    """Parse the mode and print its JSON result."""
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("build", "omp", "ready"), nargs="?", default="build")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--samples", action="store_true")
    args = ap.parse_args()
    if args.mode == "omp":
        res = bench_omp(args.pairs, args.steps or 15)
    elif args.mode == "ready":
        res = bench_ready(args.pairs)
    else:
        res = bench_build(args.steps or E.DEFAULT_STEPS, args.out, args.samples)
    print(json.dumps(res, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
