"""Leaderboard generation vs its peers, in one run on one machine.

1. Significance step: evalkit's paired tests (every variant vs its base model, BLEU/chrF/chrF++,
   paired bootstrap 1,000, from the per-sentence statistics stored in the run records) vs
   sacrebleu's own `PairedTest` (what ``sacrebleu --paired-bs`` runs) on the same hypotheses;
   the p-values must be identical, the ratio is the time.
2. Board generation for N runs: `evalkit.leaderboard.build.generate` (tables with CIs, paired
   tests, rank score with CI, Markdown/CSV/HTML; with and without plots) vs a pandas-only,
   EuroEval-style CSV builder (read the summaries, pivot models × task metrics with CIs, write
   a CSV: no tests, no rank CI, no HTML).

Records are written by the real FLORES task scoring and `evalkit.runner.write_records` from
synthetic hypotheses (references with words dropped at a per-variant rate), so no model runs.

Usage: python bench/bench_leaderboard.py [--variants 8] [--sentences 200] [--repeat 3]
Writes bench/out/leaderboard.json and prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TASKS = ["flores:eng_Latn-eus_Latn:devtest", "flores:eus_Latn-eng_Latn:devtest"]


def make_records(root: Path, variants: int, sentences: int) -> dict[str, dict[str, list[str]]]:
    """Write one base model + (variants-1) adapters × TASKS; returns hyps[variant][task]."""
    from evalkit.data import DataLayer
    from evalkit.models import AdapterRef, ModelRef
    from evalkit.runner import Variant, load_task, write_records
    from evalkit.types import Generation, GenRequest, ScoringContext

    data = DataLayer(None)
    model = ModelRef("bench-model", "", "m" * 16)
    hyps: dict[str, dict[str, list[str]]] = {}
    for v in range(variants):
        adapter = None if v == 0 else AdapterRef(f"lora-{v}", "", f"a{v:015d}", 8, None, {})
        var = Variant(model, adapter)
        hyps[var.slug] = {}
        drop = 0.30 - 0.01 * v
        for name in TASKS:
            task = load_task(name)
            samples = task.samples(data)[:sentences]
            outs = []
            for s in samples:
                rnd = random.Random(zlib.crc32(s.id.encode()) * 31 + v)
                text = " ".join(w for w in s.reference.split() if rnd.random() > drop)
                outs.append([Generation((text,), (len(text.split()),), ("stop",))])
            scored = task.score(samples, outs, ScoringContext(options={}, data=data, seed=0))
            reqs = [task.requests(s, False) for s in samples]
            write_records(root / var.slug, var, task, samples,
                          [[GenRequest(p, g) for p, g in r] for r in reqs], outs, scored,
                          backend="scripted", seed=0, data=data, chat={"applied": False})
            hyps[var.slug][name] = [o[0].texts[0] for o in outs]
    return hyps


def pandas_board(root: Path, out: Path) -> None:
    """EuroEval-style: one CSV, models × dataset scores with CI bounds, from the summaries."""
    import pandas as pd

    rows = []
    for f in sorted(root.glob("*/summary.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            s = json.loads(line)
            model = s["model"] + (f" + {s['adapter']}" if s["adapter"] else "")
            for m, v in s["metrics"].items():
                ci = v.get("ci") or [None, None]
                rows.append({"model": model, "column": f"{s['task']}|{m}", "value": v["value"],
                             "ci_low": ci[0], "ci_high": ci[1], "created_at": s["created_at"]})
    df = pd.DataFrame(rows).sort_values("created_at").drop_duplicates(["model", "column"],
                                                                       keep="last")
    wide = df.pivot(index="model", columns="column", values=["value", "ci_low", "ci_high"])
    wide.columns = [f"{c} {k}" if k != "value" else c for k, c in wide.columns]
    out.mkdir(parents=True, exist_ok=True)
    wide.reset_index().to_csv(out / "board.csv", index=False)


def sacrebleu_significance(hyps: dict[str, dict[str, list[str]]], refs: dict[str, list[str]],
                           base: str) -> dict[tuple[str, str, str], float]:
    """sacrebleu's PairedTest (paired bootstrap 1000) per task, all variants vs base."""
    from sacrebleu.metrics import BLEU, CHRF
    from sacrebleu.significance import PairedTest

    out = {}
    for task in TASKS:
        systems = [(base, hyps[base][task])] + [(k, h[task]) for k, h in hyps.items()
                                                 if k != base]
        metrics = {"bleu": BLEU(), "chrf": CHRF(), "chrf++": CHRF(word_order=2)}
        _, scores = PairedTest(systems, metrics, [refs[task]], test_type="bs",
                               n_samples=1000)()
        for name, key in (("bleu", "BLEU"), ("chrf", "chrF2"), ("chrf++", "chrF2++")):
            for sys_name, res in zip(scores["System"][1:], scores[key][1:]):
                out[(sys_name, task, name)] = res.p_value
    return out


def evalkit_significance(root: Path) -> dict[tuple[str, str, str], float]:
    """The board's paired tests alone, from the stored statistics, as the board runs them:
    one set of sacrebleu draws per task, each model's resampled scores computed once (the
    baseline's are shared by all its adapters), sacrebleu's p-value formula."""
    from evalkit.leaderboard.collect import load_rows
    from evalkit.leaderboard.stats import (
        bootstrap_counts,
        bs_p_value,
        corpus_score,
        per_sample,
        replicates,
    )

    rows = load_rows([root], TASKS)
    base = next(r for r in rows if r.adapter is None)
    out = {}
    for task in TASKS:
        for name in ("bleu", "chrf", "chrf++"):
            b, _ = per_sample(name, base.summaries[task], base.samples(task))
            counts = bootstrap_counts(len(b.ids), 1000, 12345)
            rb, vb = replicates(b, counts), corpus_score(name, b.values)
            for r in rows:
                if r is base:
                    continue
                a, _ = per_sample(name, r.summaries[task], r.samples(task))
                out[(r.key, task, name)] = bs_p_value(replicates(a, counts), rb,
                                                      abs(vb - corpus_score(name, a.values)))
    return out


def timed(fn, repeat: int) -> float:  # noqa: ANN001
    """Median wall seconds of `repeat` calls."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    """Run the comparisons and print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", type=int, default=8)
    ap.add_argument("--sentences", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("EVALKIT_DATA_DIR", str(REPO.parent / "shared" / "data"))
    from evalkit.leaderboard.build import generate
    from evalkit.leaderboard.config import load_config
    from evalkit.records import read_sample_records

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        t0 = time.perf_counter()
        hyps = make_records(root, args.variants, args.sentences)
        t_records = time.perf_counter() - t0
        base = next(k for k in hyps if "+" not in k)
        refs = {t: [r.reference for r in sorted(read_sample_records(root / base, t),
                                                key=lambda r: r.sample_id)] for t in TASKS}
        # the same order as the records (sorted ids = original order here)
        p_ours = evalkit_significance(root)
        p_sb = sacrebleu_significance(hyps, refs, base)
        assert p_ours == p_sb, "p-values differ from sacrebleu's"
        t_sig_ours = timed(lambda: evalkit_significance(root), args.repeat)
        t_sig_sb = timed(lambda: sacrebleu_significance(hyps, refs, base), args.repeat)
        cfg = load_config(REPO / "leaderboards" / "basque.toml")
        generate([root], cfg, Path(tmp) / "warm")  # warm imports (matplotlib) once
        t_board = timed(lambda: generate([root], cfg.model_copy(update={"plots": False}),
                                         Path(tmp) / "b"), args.repeat)
        t_board_plots = timed(lambda: generate([root], cfg, Path(tmp) / "bp"), args.repeat)
        t_pandas = timed(lambda: pandas_board(root, Path(tmp) / "pd"), args.repeat)
    res = {"machine": f"{platform.machine()} {os.cpu_count()} cores (shared, noisy)",
           "python": platform.python_version(), "variants": args.variants,
           "tasks": len(TASKS), "sentences": args.sentences, "repeat": args.repeat,
           "records_s": round(t_records, 2),
           "significance_evalkit_s": round(t_sig_ours, 3),
           "significance_sacrebleu_s": round(t_sig_sb, 3),
           "significance_speedup": round(t_sig_sb / t_sig_ours, 2),
           "p_values_identical": True, "n_tests": len(p_ours),
           "board_s": round(t_board, 3), "board_with_plots_s": round(t_board_plots, 3),
           "pandas_csv_s": round(t_pandas, 3),
           "board_vs_pandas": round(t_board / t_pandas, 1),
           "board_with_plots_vs_pandas": round(t_board_plots / t_pandas, 1)}
    out = REPO / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "leaderboard.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))
    print(f"\n| step | evalkit | peer | ratio |\n|---|---:|---:|---:|\n"
          f"| paired bs 1000, {len(p_ours)} tests ({args.variants - 1} adapters × 2 tasks × 3 "
          f"metrics), {args.sentences} sentences | {t_sig_ours:.2f} s | sacrebleu PairedTest "
          f"{t_sig_sb:.2f} s | {t_sig_sb / t_sig_ours:.2f}× faster, p identical |\n"
          f"| board, {args.variants} models × 2 tasks, no plots | {t_board:.2f} s | pandas CSV "
          f"{t_pandas:.3f} s | {t_board / t_pandas:.0f}× slower (does tests, rank CI, HTML) |\n"
          f"| board with plots | {t_board_plots:.2f} s | pandas CSV {t_pandas:.3f} s | "
          f"{t_board_plots / t_pandas:.0f}× |", file=sys.stdout)


if __name__ == "__main__":
    main()
