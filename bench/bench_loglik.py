"""Log-likelihood throughput: evalkit's hf backend vs lm-eval's HFLM, same model and requests.

The workload is the SAGA log-likelihood suite as evalkit plans it: every ``ppl:nob`` sentence
and every ScaLA-nb text (correct and corrupted), each BOS-prefixed (empty context), i.e. the
requests ``evalkit run --tasks ppl:nob,scala:nob`` sends. Both libraries score the *same*
``(context, continuation)`` pairs in one process, one after the other (order alternated over
repeats), with 2 torch threads, fp32 on CPU (or the GPU with ``--device cuda``). Reported:
scored continuation tokens per second, the ratio evalkit / lm-eval, and the largest absolute
difference between the two libraries' log-probabilities (they must agree).

Usage: python bench/bench_loglik.py [--model random|default|DIR] [--limit N]
       [--lm-eval-batch 1,64] [--repeats 2] [--device cpu]
Writes bench/out/loglik.json and prints it.
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


def build_model(kind: str, data_dir: Path) -> str:
    """A checkpoint dir: a random 256-wide 4-layer Llama (BPE on Bokmål text), the embedded
    default model, or a given directory."""
    if kind == "default":
        from evalkit.embedded import ensure_default_model

        return str(ensure_default_model())
    if kind != "random":
        return kind
    from evalkit.testing import build_tiny_model

    texts = (data_dir / "nob_sentences" / "ud_no_bokmaal-dev.sentences.txt").read_text(
        encoding="utf-8").splitlines()
    out = Path(tempfile.mkdtemp(prefix="bench-loglik-")) / "model"
    return str(build_tiny_model(out, hidden=256, layers=4, heads=4, vocab_size=4096,
                                texts=texts))


def saga_requests(data_dir: Path, limit: int | None) -> list[tuple[str, str]]:
    """(context, continuation) pairs of ppl:nob and scala:nob, as the runner plans them."""
    from evalkit.data import DataLayer
    from evalkit.runner import load_task

    data = DataLayer(data_dir)
    pairs: list[tuple[str, str]] = []
    for name in ("ppl:nob", "scala:nob"):
        task = load_task(name)
        for s in task.samples(data):
            pairs += [(r.context, r.continuation) for r in task.requests(s, False)]
    return pairs[:limit] if limit else pairs


def run_evalkit(model: str, pairs: list[tuple[str, str]], device: str
                ) -> tuple[float, list[float], int]:
    from evalkit.backends.base import HFConfig
    from evalkit.backends.hf import HFBackend
    from evalkit.types import LoglikRequest

    backend = HFBackend(HFConfig(model=model, dtype="float32", device=device))
    reqs = [LoglikRequest(c, k) for c, k in pairs]
    t = time.perf_counter()
    res = dict(backend.loglikelihood(reqs))
    wall = time.perf_counter() - t
    backend.close()
    return wall, [res[i].logprob for i in range(len(reqs))], sum(r.n_tokens for r in res.values())


def run_lm_eval(model: str, pairs: list[tuple[str, str]], batch: int, device: str
                ) -> tuple[float, list[float]]:
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model, device=device, dtype="float32", batch_size=batch)
    insts = [Instance("loglikelihood", {}, (c, k), i) for i, (c, k) in enumerate(pairs)]
    t = time.perf_counter()
    res = lm.loglikelihood(insts, disable_tqdm=True)
    wall = time.perf_counter() - t
    del lm
    return wall, [lp for lp, _ in res]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="random")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--lm-eval-batch", default="1,64")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data-dir", default=os.environ.get("EVALKIT_DATA_DIR",
                                                         str(REPO.parent / "shared" / "data")))
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("EVALKIT_CACHE", tempfile.mkdtemp(prefix="bench-cache-"))
    import torch

    torch.set_num_threads(args.threads)
    data_dir = Path(args.data_dir)
    model = build_model(args.model, data_dir)
    pairs = saga_requests(data_dir, args.limit)
    batches = [int(b) for b in args.lm_eval_batch.split(",")]
    ek_walls: list[float] = []
    le_walls: dict[int, list[float]] = {b: [] for b in batches}
    max_diff: dict[int, float] = {}
    ntok = 0
    for rep in range(args.repeats):
        order = ["ek"] + batches if rep % 2 == 0 else batches + ["ek"]
        ek_lp: list[float] = []
        le_lp: dict[int, list[float]] = {}
        for who in order:
            if who == "ek":
                wall, ek_lp, ntok = run_evalkit(model, pairs, args.device)
                ek_walls.append(wall)
            else:
                wall, le_lp[who] = run_lm_eval(model, pairs, who, args.device)
                le_walls[who].append(wall)
        for b in batches:
            d = max(abs(a - c) for a, c in zip(ek_lp, le_lp[b]))
            max_diff[b] = max(max_diff.get(b, 0.0), d)
    best_ek = min(ek_walls)
    out = {
        "machine": f"{platform.node()} {os.cpu_count()} CPU cores (shared, noisy), "
                   f"torch threads {args.threads}, device {args.device}"
                   + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda")
                      else ""),
        "model": args.model, "requests": len(pairs), "scored_tokens": ntok,
        "repeats": args.repeats, "metric": "best-of-repeats wall time of the loglikelihood call",
        "evalkit": {"wall_s": ek_walls, "tokens_per_s": ntok / best_ek},
        "lm_eval": {str(b): {"wall_s": le_walls[b], "tokens_per_s": ntok / min(le_walls[b]),
                             "evalkit_speedup": min(le_walls[b]) / best_ek,
                             "max_abs_logprob_diff": max_diff[b]} for b in batches},
    }
    (REPO / "bench" / "out").mkdir(parents=True, exist_ok=True)
    (REPO / "bench" / "out" / "loglik.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
