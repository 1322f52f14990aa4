"""Merge time and peak memory: `evalkit merge diploma` vs mergekit's CLI on the same inputs.

    python bench/bench_merge.py [--hidden 1024 --layers 12 --vocab 32000] [--mergekit BIN]
    python bench/bench_merge.py --sweep-default   # α sweep on the embedded-default family

Builds three random tied-embedding Llama checkpoints offline (bf16, base + two perturbed
copies: "cpt" and "instruct"), then runs, each as its own process under `/usr/bin/time` (peak RSS
from GNU time) with /proc sampling (peak anonymous vs file-backed RSS):

* ``evalkit merge diploma --alpha A`` (streamed, float32 arithmetic, bf16 output), and
* ``mergekit-yaml`` with ``merge_method: task_arithmetic``, base = base, models cpt (weight 1)
  and instruct (weight A), ``dtype: float32``, ``out_dtype: bfloat16`` — DIPLomA in mergekit
  terms.

mergekit lives in a separate venv (default /tmp/mkvenv); both outputs are compared tensor by
tensor. `--sweep-default` derives "cpt"/"instruct" variants of the embedded default model by
adding Gaussian noise (0.02 × each tensor's std; seeds 1, 2) and runs `evalkit sweep` over
three α on flores:eng_Latn-nob_Latn (`--limit 8`, 32 new tokens).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ENV = {**os.environ, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "HF_HUB_OFFLINE": "1",
       "TRANSFORMERS_OFFLINE": "1"}


def build_family(root: Path, hidden: int, layers: int, vocab: int) -> dict[str, Path]:
    """Three random bf16 Llama checkpoints sharing one tokenizer (written tensor by tensor)."""
    import torch
    from safetensors.torch import save_file

    from evalkit.testing import build_tokenizer

    tok = build_tokenizer()
    inter = int(hidden * 2.75) // 64 * 64
    heads = hidden // 64
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": hidden,
           "intermediate_size": inter, "num_hidden_layers": layers,
           "num_attention_heads": heads, "num_key_value_heads": heads, "head_dim": 64,
           "vocab_size": vocab, "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
           "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": True,
           "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
           "torch_dtype": "bfloat16"}
    shapes = {"model.embed_tokens.weight": (vocab, hidden), "model.norm.weight": (hidden,)}
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes.update({p + "self_attn.q_proj.weight": (hidden, hidden),
                       p + "self_attn.k_proj.weight": (hidden, hidden),
                       p + "self_attn.v_proj.weight": (hidden, hidden),
                       p + "self_attn.o_proj.weight": (hidden, hidden),
                       p + "mlp.gate_proj.weight": (inter, hidden),
                       p + "mlp.up_proj.weight": (inter, hidden),
                       p + "mlp.down_proj.weight": (hidden, inter),
                       p + "input_layernorm.weight": (hidden,),
                       p + "post_attention_layernorm.weight": (hidden,)})
    out = {}
    for role, seed in (("base", 0), ("cpt", 1), ("instruct", 2)):
        d = root / role
        out[role] = d
        if (d / "model.safetensors").is_file():
            continue
        d.mkdir(parents=True, exist_ok=True)
        g0, g = torch.Generator().manual_seed(0), torch.Generator().manual_seed(seed)
        sd = {}
        for name, shape in shapes.items():  # base weights + a role-specific perturbation
            w = torch.randn(shape, generator=g0) * 0.02
            if seed:
                w += torch.randn(shape, generator=g) * 0.002
            sd[name] = w.to(torch.bfloat16)
        save_file(sd, d / "model.safetensors", metadata={"format": "pt"})
        del sd
        (d / "config.json").write_text(json.dumps(cfg, indent=2))
        tok.save_pretrained(d)
    return out


def measure(cmd: list[str], work: Path) -> dict[str, float]:
    """Wall time, peak RSS (GNU time's %M, from a small parent: a fork of this big bench
    process would carry its RSS into ru_maxrss) and sampled peak anonymous/file RSS."""
    tfile = work / "time.txt"
    t0 = time.perf_counter()
    proc = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", str(tfile), *cmd], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peaks = {"anon": 0, "file": 0}

    def sample() -> None:
        kids = f"/proc/{proc.pid}/task/{proc.pid}/children"
        while proc.poll() is None:
            try:
                for pid in open(kids).read().split():
                    for line in open(f"/proc/{pid}/status").read().splitlines():
                        if line.startswith(("RssAnon:", "RssFile:")):
                            k = "anon" if line.startswith("RssAnon") else "file"
                            peaks[k] = max(peaks[k], int(line.split()[1]))
            except (OSError, ValueError):
                pass
            time.sleep(0.02)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.wait()
    wall = time.perf_counter() - t0
    th.join()
    if proc.returncode:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {err[-2000:]}")
    return {"wall_s": wall, "peak_rss_mb": int(tfile.read_text().split()[-1]) / 1024,
            "peak_anon_mb": peaks["anon"] / 1024, "peak_file_mb": peaks["file"] / 1024}


def compare(a: Path, b: Path) -> dict[str, float]:
    """Tensor-by-tensor comparison of two checkpoints (bf16 ulps differ at most by rounding)."""
    from safetensors import safe_open

    def files(d: Path) -> dict[str, Path]:
        m = {}
        for f in d.glob("*.safetensors"):
            with safe_open(f, "pt") as h:
                m.update({k: f for k in h.keys()})
        return m

    fa, fb = files(a), files(b)
    common = sorted(set(fa) & set(fb))
    n = diff = 0
    worst = 0.0
    for k in common:
        with safe_open(fa[k], "pt") as ha, safe_open(fb[k], "pt") as hb:
            x, y = ha.get_tensor(k).float(), hb.get_tensor(k).float()
        n += x.numel()
        diff += int((x != y).sum())
        worst = max(worst, float((x - y).abs().max()))
    return {"tensors_compared": len(common), "only_in_evalkit": len(set(fa) - set(fb)),
            "only_in_mergekit": len(set(fb) - set(fa)), "elements_differing": diff,
            "elements": n, "max_abs_diff": worst}


def bench(args: argparse.Namespace) -> dict:
    root = Path(args.work)
    fam = build_family(root / "inputs", args.hidden, args.layers, args.vocab)
    ours_out, mk_out = root / "out-evalkit", root / "out-mergekit"
    import shutil

    for d in (ours_out, mk_out):
        shutil.rmtree(d, ignore_errors=True)
    cache = root / "evalkit-cache"
    shutil.rmtree(cache, ignore_errors=True)  # hashes of the inputs are computed, not memoised
    ENV["EVALKIT_CACHE"] = str(cache)
    ours = measure([sys.executable, "-m", "evalkit.cli", "merge", "diploma",
                    "--base", str(fam["base"]), "--cpt", str(fam["cpt"]),
                    "--instruct", str(fam["instruct"]), "--alpha", str(args.alpha),
                    "--out", str(ours_out)], root)
    rec = json.loads((ours_out / "evalkit_merge.json").read_text())
    n_params = rec["n_parameters"]
    cfg = root / "mergekit.yml"
    cfg.write_text(
        "merge_method: task_arithmetic\n"
        f"base_model: {fam['base']}\n"
        "models:\n"
        f"  - model: {fam['cpt']}\n    parameters:\n      weight: 1.0\n"
        f"  - model: {fam['instruct']}\n    parameters:\n      weight: {args.alpha}\n"
        "dtype: float32\nout_dtype: bfloat16\n")
    mk = measure([args.mergekit, str(cfg), str(mk_out), "--quiet", "--no-write-model-card",
                  "-j", "2"], root)
    result = {"params": n_params, "input_gb_each": rec["weight_bytes"] / 1e9,
              "alpha": args.alpha, "evalkit": ours, "evalkit_inprocess_s": rec["seconds"],
              "mergekit": mk, "equality": compare(ours_out, mk_out),
              "ratio_wall_mergekit_over_evalkit": mk["wall_s"] / ours["wall_s"],
              "ratio_peak_rss_mergekit_over_evalkit": mk["peak_rss_mb"] / ours["peak_rss_mb"]}
    return result


def sweep_default(args: argparse.Namespace) -> None:
    """Derive cpt/instruct from the embedded default model and sweep three α."""
    import torch
    from safetensors.torch import load_file, save_file

    from evalkit.embedded import ensure_default_model

    src = ensure_default_model()
    root = Path(args.work) / "default-family"
    import shutil

    for role, seed in (("cpt", 1), ("instruct", 2)):
        d = root / role
        if d.exists():
            continue
        shutil.copytree(src, d)
        g = torch.Generator().manual_seed(seed)
        sd = load_file(d / "model.safetensors")
        for k, v in sd.items():
            if v.is_floating_point() and v.numel() > 1:
                sd[k] = v + torch.randn(v.shape, generator=g) * 0.02 * float(v.float().std())
        save_file(sd, d / "model.safetensors", metadata={"format": "pt"})
    out = Path(args.work) / "default-sweep"
    cmd = [sys.executable, "-m", "evalkit.cli", "sweep", "diploma", "--base", str(src),
           "--cpt", str(root / "cpt"), "--instruct", str(root / "instruct"),
           "--alpha", "0.5,1.0,1.5", "--tasks", "flores:eng_Latn-nob_Latn", "--limit", "8",
           "--max-new-tokens", "32", "--out", str(out), "--select", "chrf++", "--with-inputs"]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=ENV, check=True)
    print(f"sweep wall {time.perf_counter() - t0:.1f} s; board: {out}/leaderboards/")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default="/tmp/bench_merge")
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--mergekit", default="/tmp/mkvenv/bin/mergekit-yaml")
    ap.add_argument("--sweep-default", action="store_true")
    args = ap.parse_args()
    if args.sweep_default:
        sweep_default(args)
        return
    if not Path(args.mergekit).exists():
        raise SystemExit(f"{args.mergekit} not found: python -m venv /tmp/mkvenv && "
                         "/tmp/mkvenv/bin/pip install torch==2.13.0 mergekit")
    print(json.dumps(bench(args), indent=1))


if __name__ == "__main__":
    main()
