"""evalkit vs lm-evaluation-harness, whole CLI runs, interleaved pairs; how cost grows; CI cost;
torch threads under load; the board refresh an ``evalkit run`` pays.

Modes (one or more per invocation; each writes bench/out/speed-<mode>[-hog].json):

* ``pairs`` — FLORES-200 eng→nob devtest (1,012 sentences, lm-eval's FLORES prompt, greedy,
  stop at newline, 256 new tokens, no chat template) and IFEval en (chat template on both
  sides, greedy, ``--ifeval-max-new`` new tokens, prompts whose chat prompt plus that many
  tokens exceed the model's positions left out on both sides), each tool's whole CLI command
  timed, ``--pairs`` pairs per task, the order inside a pair alternating. Generations are
  compared text by text. lm-eval 0.4 runs its hf backend with ``--batch_size 32`` (its
  default is 1), its own thread defaults, dtype float32, from a local YAML task over the same
  data. ``--also-transformers`` adds a third arm, rotating with the others: evalkit with
  ``--engine transformers`` (transformers' model instead of the native Llama engine).
* ``scaling`` — wall time vs sample count (FLORES, 100/300/1,012 sentences) and vs number of
  LoRA adapters (1, 2, 4; evalkit evaluates them in one pass with ``--no-base``, lm-eval needs
  one call per adapter, ``peft=``), interleaved, ``--scaling-reps`` repetitions.
* ``ci`` — bootstrap CI cost on the same hypotheses, interleaved pairs: evalkit's 1,000
  resamples (resample draw + all three corpus metrics) vs lm-eval's ``bootstrap_stderr``
  (100 corpus BLEU recomputations, its cap for BLEU/chrF).
* ``threads`` — the hf backend generating 200 FLORES sentences one batch at a time with torch
  fixed at 1 thread, at all cores, and with evalkit's measured choice, and with the default
  batches side by side (``streams``, each on its share of the cores), interleaved.
* ``board`` — the leaderboard refresh that follows ``evalkit run`` for an output folder holding
  8 models × 2 FLORES tasks of the Basque board: the old full rebuild (with plots) vs
  ``update_for_run`` (statistics cache, plots on demand) after one model's run, interleaved.

``--hog`` starts one CPU-bound process (``python -c "while True: pass"``) for the duration
of the timed modes and says so in the output. The load average is recorded before every run.

Usage: python bench/bench_speed.py --model DIR [--modes pairs,ci] [--pairs 5] [--hog]
"""

from __future__ import annotations

import argparse
import contextlib
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
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# the lm_eval console script of whichever environment provides the package
LM_EVAL = [sys.executable, "-m", "lm_eval"]
FLORES_TASK = "flores:eng_Latn-nob_Latn"

FLORES_YAML = """task: bench_flores_eng_nob
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "English sentence: {{{{src}}}}\\nNorwegian Bokmål sentence:"
doc_to_target: "{{{{ref}}}}"
target_delimiter: ''
generation_kwargs:
  until:
    - "\\n"
  do_sample: false
  max_gen_toks: {max_new}
metric_list:
  - metric: bleu
    aggregation: bleu
    higher_is_better: true
  - metric: chrf
    aggregation: chrf
    higher_is_better: true
metadata:
  version: 1.0
"""

IFEVAL_YAML = """task: bench_ifeval_en
dataset_path: json
dataset_kwargs:
  data_files:
    train: {data}
test_split: train
output_type: generate_until
doc_to_text: prompt
doc_to_target: 0
generation_kwargs:
  until: []
  do_sample: false
  temperature: 0.0
  max_gen_toks: {max_new}
process_results: !function ifeval_utils.process_results
metric_list:
  - metric: prompt_level_strict_acc
    aggregation: mean
    higher_is_better: true
  - metric: inst_level_strict_acc
    aggregation: !function ifeval_utils.agg_inst_level_acc
    higher_is_better: true
  - metric: prompt_level_loose_acc
    aggregation: mean
    higher_is_better: true
  - metric: inst_level_loose_acc
    aggregation: !function ifeval_utils.agg_inst_level_acc
    higher_is_better: true
metadata:
  version: 4.0
"""

IFEVAL_UTILS = "from lm_eval.tasks.ifeval.utils import agg_inst_level_acc, process_results\n"


def load() -> float:
    return round(os.getloadavg()[0], 2)


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if res.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{res.stderr[-3000:]}")
    return wall, res


@contextlib.contextmanager
def hog(on: bool):
    """One CPU-bound process beside the benchmark while the block runs."""
    if not on:
        yield None
        return
    p = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)
        yield p.pid
    finally:
        p.kill()
        p.wait()


class Setup:
    """Data files, lm-eval task YAMLs and environments shared by the modes."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data = Path(args.data_dir)
        self.model = args.model
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-speed-"))
        self.env = {**os.environ, "EVALKIT_DATA_DIR": str(self.data), "HF_HUB_OFFLINE": "1",
                    "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                    "HF_DATASETS_CACHE": str(self.tmp / "hf-datasets")}
        self.src = self._flores("eng_Latn")
        self.ref = self._flores("nob_Latn")
        self.tasks = self.tmp / "tasks"
        self.tasks.mkdir()
        self._flores_files: dict[int, Path] = {}

    def _flores(self, code: str) -> list[str]:
        raw = (self.data / f"flores200/devtest/{code}.devtest.gz").read_bytes()
        return gzip.decompress(raw).decode().splitlines()

    def flores_task(self, n: int) -> str:
        """lm-eval task name for the first `n` sentences (YAML written once)."""
        name = f"bench_flores_eng_nob_{n}"
        if n not in self._flores_files:
            f = self.tmp / f"flores-{n}.jsonl"
            f.write_text("".join(json.dumps({"src": s, "ref": r}, ensure_ascii=False) + "\n"
                                 for s, r in zip(self.src[:n], self.ref[:n])))
            (self.tasks / f"{name}.yaml").write_text(
                FLORES_YAML.replace("bench_flores_eng_nob", name).format(data=f, max_new=256))
            self._flores_files[n] = f
        return name

    def ifeval(self) -> tuple[Path, int, int]:
        """(evalkit data dir, prompts kept, prompts left out): a mirror copy of IFEval en
        without the prompts whose chat prompt + max new tokens exceed the model's positions."""
        from evalkit import chat_files

        max_new = self.args.ifeval_max_new
        tok = chat_files.load(self.model)
        assert tok is not None and tok.chat_template, "the bench model needs a chat template"
        cfg = json.loads((Path(self.model) / "config.json").read_text())
        limit = int(cfg.get("max_position_embeddings", 2048))
        rows = [json.loads(x) for x in (self.data / "ifeval/input_data.jsonl").read_text(
            encoding="utf-8").splitlines() if x.strip()]
        keep = [r for r in rows if len(tok.apply_chat_template(
            [{"role": "user", "content": r["prompt"]}], add_generation_prompt=True)) + max_new
            <= limit]
        d = self.tmp / "ifeval-data"
        (d / "ifeval").mkdir(parents=True, exist_ok=True)
        f = d / "ifeval" / "input_data.jsonl"
        f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in keep))
        (self.tasks / "bench_ifeval_en.yaml").write_text(
            IFEVAL_YAML.format(data=f, max_new=max_new))
        (self.tasks / "ifeval_utils.py").write_text(IFEVAL_UTILS)
        from evalkit.nltk_offline import ensure_punkt

        ensure_punkt("english")  # lm-eval's checkers need punkt_tab; offline, evalkit's copy
        self.env["NLTK_DATA"] = os.environ.get("NLTK_DATA", "")
        return d, len(keep), len(rows) - len(keep)


# -- one run of each tool ----------------------------------------------------------------------
def evalkit_flores(s: Setup, n: int, out: Path, adapters: list[str] = (),
                   engine: str | None = None) -> tuple[float, dict]:
    cmd = [str(BIN / "evalkit"), "run", s.model, "--tasks", FLORES_TASK, "--out", str(out),
           "--no-leaderboard", "--json", "--chat-template", "off"]
    if engine:
        cmd += ["--engine", engine]
    if n < len(s.src):
        cmd += ["--limit", str(n)]
    for a in adapters:
        cmd += ["--adapter", a]
    if adapters:
        cmd += ["--no-base"]
    wall, _ = timed(cmd, s.env)
    return wall, _evalkit_texts(out, FLORES_TASK + ":devtest")


def _evalkit_texts(out: Path, task: str) -> dict[str, dict[str, str]]:
    """variant dir -> sample id -> first text."""
    from evalkit.records import read_sample_records

    texts = {}
    for d in sorted(p for p in out.iterdir() if (p / "samples").is_dir()):
        texts[d.name] = {r.sample_id: r.outputs[0]["texts"][0]
                         for r in read_sample_records(d, task)}
    return texts


def lmeval(s: Setup, task: str, out: Path, *, peft: str | None = None,
           chat: bool = False) -> tuple[float, list[str]]:
    args = f"pretrained={s.model},dtype=float32" + (f",peft={peft}" if peft else "")
    cmd = [*LM_EVAL, "--model", "hf", "--model_args", args, "--tasks", task,
           "--include_path", str(s.tasks), "--batch_size", str(s.args.lm_eval_batch),
           "--device", "cpu", "--output_path", str(out), "--log_samples"]
    if chat:
        cmd += ["--apply_chat_template"]
    wall, _ = timed(cmd, s.env)
    samples = [json.loads(x) for x in next(out.rglob("samples_*.jsonl")).read_text(
        encoding="utf-8").splitlines()]
    samples.sort(key=lambda x: x["doc_id"])
    return wall, [x["filtered_resps"][0] for x in samples]


def same(ek: list[str], le: list[str]) -> int:
    return sum(a.strip() == b.strip() for a, b in zip(ek, le))


# -- modes -------------------------------------------------------------------------------------
def mode_pairs(s: Setup) -> dict[str, Any]:
    res: dict[str, Any] = {}
    ife_data, kept, left = s.ifeval()
    ife_env = {**s.env, "EVALKIT_DATA_DIR": str(ife_data)}
    ife_task = f"ifeval:en:max_new_tokens={s.args.ifeval_max_new}"
    for task in s.args.tasks.split(","):
        rows = []
        for i in range(s.args.pairs):
            row: dict[str, Any] = {"pair": i + 1}
            tools = ["evalkit", "lm_eval"] + (["evalkit_transformers"]
                                              if s.args.also_transformers else [])
            order = tools[i % len(tools):] + tools[:i % len(tools)]
            texts: dict[str, list[str]] = {}
            for tool in order:
                out = s.tmp / f"{task}-{tool}-{i}"
                row[f"load_{tool}"] = load()
                n = min(s.args.flores_n, len(s.src))
                engine = "transformers" if tool == "evalkit_transformers" else None
                if task == "flores" and tool.startswith("evalkit"):
                    wall, t = evalkit_flores(s, n, out, engine=engine)
                    texts[tool] = [v for _, v in sorted(next(iter(t.values())).items())]
                elif task == "flores":
                    wall, texts[tool] = lmeval(s, s.flores_task(n), out)
                elif tool.startswith("evalkit"):
                    cmd = [str(BIN / "evalkit"), "run", s.model, "--tasks", ife_task, "--out",
                           str(out), "--no-leaderboard", "--json"]
                    if engine:
                        cmd += ["--engine", engine]
                    wall, _ = timed(cmd, ife_env)
                    by_id = next(iter(_evalkit_texts(out, ife_task).values()))
                    keys = [json.loads(x)["key"] for x in (ife_data / "ifeval" /
                            "input_data.jsonl").read_text().splitlines()]
                    texts[tool] = [by_id[str(k)] for k in keys]
                else:
                    wall, texts[tool] = lmeval(s, "bench_ifeval_en", out, chat=True)
                row[f"{tool}_s"] = round(wall, 2)
            row["ratio"] = round(row["evalkit_s"] / row["lm_eval_s"], 3)
            row["identical"] = f"{same(texts['evalkit'], texts['lm_eval'])}/{len(texts['evalkit'])}"
            if "evalkit_transformers" in texts:
                row["ratio_transformers_engine"] = round(
                    row["evalkit_transformers_s"] / row["lm_eval_s"], 3)
                row["identical_transformers_engine"] = (
                    f"{same(texts['evalkit_transformers'], texts['lm_eval'])}/"
                    f"{len(texts['evalkit_transformers'])}")
            rows.append(row)
            print(json.dumps({task: row}), flush=True)
        ratios = [r["ratio"] for r in rows]
        if s.args.also_transformers:
            tr = [r["ratio_transformers_engine"] for r in rows]
            res.setdefault("transformers_engine", {})[task] = {
                "median_ratio": statistics.median(tr), "min_ratio": min(tr),
                "max_ratio": max(tr), "median_s": statistics.median(
                    r["evalkit_transformers_s"] for r in rows)}
        res[task] = {"pairs": rows, "median_ratio": statistics.median(ratios),
                     "min_ratio": min(ratios), "max_ratio": max(ratios),
                     "median_evalkit_s": statistics.median(r["evalkit_s"] for r in rows),
                     "median_lm_eval_s": statistics.median(r["lm_eval_s"] for r in rows)}
        if task == "ifeval":
            res[task]["prompts"] = {"kept": kept, "left_out_too_long": left,
                                    "max_new_tokens": s.args.ifeval_max_new}
    return res


def _adapters(s: Setup, k: int) -> list[str]:
    from evalkit.testing import build_tiny_adapter

    out = []
    for i in range(k):
        d = s.tmp / "adapters" / f"a{i}"
        if not d.exists():
            build_tiny_adapter(Path(s.model), d, seed=100 + i, scale=0.02)
        out.append(str(d))
    return out


def mode_scaling(s: Setup) -> dict[str, Any]:
    res: dict[str, Any] = {"samples": [], "adapters": []}
    parts = set(s.args.scaling_parts.split(","))
    for rep in range(s.args.scaling_reps):
        for n in ((100, 300, len(s.src)) if "samples" in parts else ()):
            row = {"rep": rep + 1, "n": n, "load": load()}
            ek, t = evalkit_flores(s, n, s.tmp / f"sc-ek-{n}-{rep}")
            row["load_lm_eval"] = load()
            le, le_texts = lmeval(s, s.flores_task(n), s.tmp / f"sc-le-{n}-{rep}")
            ek_texts = [v for _, v in sorted(next(iter(t.values())).items())]
            row.update(evalkit_s=round(ek, 2), lm_eval_s=round(le, 2), ratio=round(ek / le, 3),
                       identical=f"{same(ek_texts, le_texts)}/{n}")
            res["samples"].append(row)
            print(json.dumps({"samples": row}), flush=True)
        n = s.args.adapter_sentences
        for k in ((1, 2, 4) if "adapters" in parts else ()):
            ads = _adapters(s, k)
            row = {"rep": rep + 1, "adapters": k, "n": n, "load": load()}
            ek, t = evalkit_flores(s, n, s.tmp / f"sc-ek-a{k}-{rep}", ads)
            row["load_lm_eval"] = load()
            le_total, identical = 0.0, 0
            by_adapter = {name: [v for _, v in sorted(texts.items())] for name, texts in t.items()}
            for j, a in enumerate(ads):
                wall, le_texts = lmeval(s, s.flores_task(n), s.tmp / f"sc-le-a{k}-{j}-{rep}",
                                        peft=a)
                le_total += wall
                match = [name for name in by_adapter
                         if _variant_adapter(s.tmp / f"sc-ek-a{k}-{rep}" / name) == _hash(a)]
                identical += same(by_adapter[match[0]], le_texts) if match else 0
            row.update(evalkit_s=round(ek, 2), lm_eval_s=round(le_total, 2),
                       ratio=round(ek / le_total, 3), identical=f"{identical}/{n * k}")
            res["adapters"].append(row)
            print(json.dumps({"adapters": row}), flush=True)
    return res


def _hash(adapter_dir: str) -> str:
    from evalkit.models import resolve_adapters

    return resolve_adapters([adapter_dir])[0].hash


def _variant_adapter(variant_dir: Path) -> str | None:
    """The adapter hash a variant directory's records were made with (run dirs are named by a
    hash of model + adapter, so the records say which adapter it is)."""
    from evalkit.records import read_summaries

    return next((x.adapter_hash for x in read_summaries(variant_dir)), None)


def mode_ci(s: Setup) -> dict[str, Any]:
    from lm_eval.api.metrics import bleu, bootstrap_stderr

    from evalkit import mt_metrics

    eng = s.src
    hyps = [" ".join(r.split()[::2]) if i % 3 else e for i, (r, e) in enumerate(zip(s.ref, eng))]
    stats = {m: mt_metrics.corpus(m, hyps, s.ref).stats for m in ("bleu", "chrf", "chrf++")}
    rows = []
    for i in range(s.args.pairs):
        row: dict[str, Any] = {"pair": i + 1, "load": load()}
        mt_metrics._weights.cache_clear()  # pay for the resample draw every time
        t = time.perf_counter()
        for m, st in stats.items():
            mt_metrics.bootstrap_scores(m, st, 1000, seed=i)
        row["evalkit_1000_bleu_chrf_chrfpp_s"] = round(time.perf_counter() - t, 4)
        t = time.perf_counter()
        with contextlib.redirect_stderr(open(os.devnull, "w")):
            bootstrap_stderr(bleu, list(zip(s.ref, hyps)), iters=100)
        row["lm_eval_100_bleu_s"] = round(time.perf_counter() - t, 3)
        row["times_less"] = round(
            row["lm_eval_100_bleu_s"] / row["evalkit_1000_bleu_chrf_chrfpp_s"], 1)
        rows.append(row)
        print(json.dumps({"ci": row}), flush=True)
    return {"pairs": rows, "median_times_less": statistics.median(r["times_less"] for r in rows),
            "min_times_less": min(r["times_less"] for r in rows)}


def mode_threads(s: Setup) -> dict[str, Any]:
    code = (
        "import evalkit, json, sys, time, torch\n"
        "from evalkit.backends.base import HFConfig\n"
        "from evalkit.backends.hf import HFBackend\n"
        "from evalkit.prompts import translation_prompt\n"
        "from evalkit.types import GenRequest\n"
        "from evalkit.tasks.flores import GEN\n"
        "model, mode, src = sys.argv[1], sys.argv[2], json.loads(sys.stdin.read())\n"
        "b = HFBackend(HFConfig(model=model, streams=None if mode == 'streams' else 1))\n"
        "if mode not in ('measured', 'streams'):\n"
        "    b._threads = None; torch.set_num_threads(int(mode))\n"
        "reqs = [GenRequest(translation_prompt('eng_Latn', 'nob_Latn', x), GEN) for x in src]\n"
        "t = time.perf_counter(); out = dict(b.generate(reqs)); wall = time.perf_counter() - t\n"
        "tuners = [x for x in [b._threads, *b._streams.tuners] if x is not None]\n"
        "print(json.dumps({'wall': wall, 'texts': [out[i].texts[0] for i in range(len(reqs))],\n"
        "                  'streams': b.streams if mode == 'streams' else 1,\n"
        "                  'trials': [t.history for t in tuners] or None}))\n")
    cores = os.cpu_count() or 1
    # one batch at a time on 1 thread, on every core, on the measured choice; and the default:
    # batches side by side (streams), each on its share of the cores
    modes = ["1", str(cores), "measured", "streams"]
    rows = []
    for i in range(s.args.pairs):
        row: dict[str, Any] = {"round": i + 1}
        texts = {}
        for m in (modes if i % 2 == 0 else modes[::-1]):
            row[f"load_{m}"] = load()
            res = subprocess.run([sys.executable, "-c", code, s.model, m],
                                 input=json.dumps(s.src[:200]), capture_output=True, text=True,
                                 env=s.env)
            if res.returncode != 0:
                raise SystemExit(res.stderr[-3000:])
            got = json.loads(res.stdout.strip().splitlines()[-1])
            row[f"threads_{m}_s"] = round(got["wall"], 2)
            texts[m] = got["texts"]
            if m in ("measured", "streams"):
                row[f"{m}_trials"] = got["trials"]
        row["identical_across_settings"] = all(texts[m] == texts["1"] for m in modes)
        rows.append(row)
        print(json.dumps({"threads": row}), flush=True)
    return {"rounds": rows, "sentences": 200, **{
        f"median_{m}_s": statistics.median(r[f"threads_{m}_s"] for r in rows) for m in modes}}


def _board_variant(m: int, shape: str) -> Any:
    from evalkit.models import AdapterRef, ModelRef, Variant

    if shape == "base":
        return Variant(ModelRef(f"bench-model-{m}", "", f"{m:064x}"), None)
    base = ModelRef("bench-model", "", "b" * 64)  # "adapters": a base model + 7 adapters
    return Variant(base, None if m == 0 else AdapterRef(f"lora-{m}", "", f"{m:064x}", 8, None,
                                                        {}))


def _board_records(s: Setup, out: Path, m: int, shape: str, salt: int = 0) -> list[Any]:
    """Score synthetic hypotheses (references with words dropped) of model `m` and write its
    records as `evalkit run` does; `salt` changes the outputs (a re-run)."""
    import random
    import zlib

    from evalkit.data import DataLayer
    from evalkit.records import RunInfo, write_task_records
    from evalkit.registry import load_task
    from evalkit.types import Generation, GenRequest, ScoringContext

    data = DataLayer(s.data)
    v = _board_variant(m, shape)
    written = []
    for name in BOARD_TASKS:
        task = load_task(name)
        samples = task.samples(data)[:s.args.board_sentences]
        outs = []
        for smp in samples:
            rnd = random.Random(zlib.crc32(smp.id.encode()) * 31 + m + 1000 * salt)
            text = " ".join(w for w in smp.reference.split() if rnd.random() > 0.1 + 0.03 * m)
            outs.append([Generation((text,), (len(text.split()),), ("stop",))])
        scored = task.score(samples, outs, ScoringContext(options={}, data=data, seed=0))
        reqs = [[GenRequest(p, g) for p, g in task.requests(x, False)] for x in samples]
        written.append(write_task_records(out / v.slug, v, task, samples, reqs, outs, scored,
                                          RunInfo(backend="scripted", seed=0,
                                                  data_hashes=data.hashes)))
    return written


BOARD_TASKS = ["flores:eng_Latn-eus_Latn:devtest", "flores:eus_Latn-eng_Latn:devtest"]


def mode_board(s: Setup) -> dict[str, Any]:
    """The board refresh `evalkit run` pays (8 models × 2 FLORES tasks, the Basque board):
    the old path (a full rebuild: every record parsed, every bootstrap and test computed,
    plots drawn as the config says, no cache) vs the new `update_for_run` (statistics cache,
    plots on demand) right after one model's run was added: before each pair the last model
    is re-run with other outputs (records rewritten, untimed), so its statistics are new and
    the other seven come from the cache. Pairs interleaved, order alternating."""
    import shutil

    from evalkit.leaderboard.build import generate, update_for_run
    from evalkit.leaderboard.config import find_config, load_config

    result: dict[str, Any] = {"models": 8, "tasks": BOARD_TASKS,
                              "sentences": s.args.board_sentences}
    for shape in s.args.board_shapes.split(","):
        out = s.tmp / f"board-{shape}"
        for m in range(8):
            _board_records(s, out, m, shape)
        cfg = load_config(find_config("basque", out))
        board_dir = out / "leaderboards" / "basque"

        def old(out: Path = out, cfg: Any = cfg, board_dir: Path = board_dir) -> None:
            shutil.rmtree(board_dir, ignore_errors=True)  # no cache, no earlier output
            generate([out], cfg, board_dir)  # plots as configured (on)

        def new(last: list[Any], out: Path = out) -> None:
            update_for_run(out, last)

        # warm imports (matplotlib, sacrebleu) once, outside the timings; fill the cache
        old()
        last = _board_records(s, out, 7, shape, salt=1)
        new(last)
        rows = []
        for i in range(s.args.board_reps):
            last = _board_records(s, out, 7, shape, salt=2 + i)  # one model's new run
            row: dict[str, Any] = {"rep": i + 1, "load": load()}
            for which in (("new", "old") if i % 2 else ("old", "new")):
                if which == "old":
                    # the old path sees the same records; the new one then finds the cache
                    # wiped by it, so the old path works in a copy of the board's folder
                    saved = s.tmp / "board-saved"
                    shutil.rmtree(saved, ignore_errors=True)
                    shutil.copytree(board_dir, saved)
                    t = time.perf_counter()
                    old()
                    row["old_s"] = round(time.perf_counter() - t, 3)
                    shutil.rmtree(board_dir)
                    shutil.copytree(saved, board_dir)
                else:
                    t = time.perf_counter()
                    new(last)
                    row["new_s"] = round(time.perf_counter() - t, 3)
            row["ratio"] = round(row["old_s"] / row["new_s"], 1)
            rows.append(row)
            print(json.dumps({"board": shape, **row}), flush=True)
        old_med = statistics.median(r["old_s"] for r in rows)
        new_med = statistics.median(r["new_s"] for r in rows)
        result[shape] = {
            "reps": rows, "median_old_s": old_med, "median_new_s": new_med,
            "min_max_old_s": [min(r["old_s"] for r in rows), max(r["old_s"] for r in rows)],
            "min_max_new_s": [min(r["new_s"] for r in rows), max(r["new_s"] for r in rows)],
            "median_ratio": statistics.median(r["ratio"] for r in rows),
            "min_max_ratio": [min(r["ratio"] for r in rows), max(r["ratio"] for r in rows)]}
    return result


MODES = {"pairs": mode_pairs, "scaling": mode_scaling, "ci": mode_ci, "threads": mode_threads,
         "board": mode_board}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="checkpoint dir (the embedded default's)")
    ap.add_argument("--modes", default="pairs,ci")
    ap.add_argument("--tasks", default="flores,ifeval")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--flores-n", type=int, default=1012, help="sentences in pairs mode")
    ap.add_argument("--hog", action="store_true")
    ap.add_argument("--lm-eval-batch", type=int, default=32)
    ap.add_argument("--ifeval-max-new", type=int, default=64)
    ap.add_argument("--also-transformers", action="store_true",
                    help="pairs mode: a third arm, evalkit with --engine transformers")
    ap.add_argument("--scaling-reps", type=int, default=1)
    ap.add_argument("--scaling-parts", default="samples,adapters",
                    help="scaling mode: samples, adapters or both")
    ap.add_argument("--adapter-sentences", type=int, default=300)
    ap.add_argument("--board-sentences", type=int, default=1012)
    ap.add_argument("--board-reps", type=int, default=5)
    ap.add_argument("--board-shapes", default="base,adapters",
                    help="board mode: 'base' (8 base models: no paired tests) and/or "
                    "'adapters' (a base model + 7 adapters: 7 × 8 paired tests)")
    ap.add_argument("--data-dir", default=os.environ.get("EVALKIT_DATA_DIR",
                                                         str(REPO.parent / "shared" / "data")))
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    s = Setup(args)
    (REPO / "bench" / "out").mkdir(parents=True, exist_ok=True)
    for mode in args.modes.split(","):
        with hog(args.hog) as pid:
            res = {"mode": mode, "machine": f"{platform.node()} {os.cpu_count()} CPU cores "
                   "(shared with other engineers' jobs)", "model": args.model,
                   "hog": f"one CPU-bound process (pid {pid}) beside it" if pid else None,
                   "started": time.strftime("%Y-%m-%d %H:%M:%S"), "load_start": load(),
                   "result": MODES[mode](s)}
        res["load_end"] = load()
        name = f"speed-{mode}{'-hog' if args.hog else ''}.json"
        (REPO / "bench" / "out" / name).write_text(json.dumps(res, indent=1))
        print(json.dumps({k: v for k, v in res.items() if k != "result"}), flush=True)


if __name__ == "__main__":
    main()
