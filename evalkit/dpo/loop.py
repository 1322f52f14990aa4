"""The Δ-DPO loop, stage by stage, each stage resumable from its artefacts.

Layout of the output directory (every file is written atomically; a stage is done when its
last file exists, so a killed run restarts at the stage it died in)::

    config.json                 the resolved config (a different config in the same dir is refused)
    prompts.json                training and evaluation prompts
    eval/<variant>/seed<S>.jsonl  evaluation generations; eval/<variant>/metrics.json
    sft.json                    the auto-SFT decision (and stats); sft/model/ the merged SFT model
    round<K>/candidates.jsonl   N candidates per training prompt
    round<K>/scores.jsonl       training-oracle reward per candidate
    round<K>/pairs.jsonl, pair_stats.json
    round<K>/adapter/           the LoRA adapter (+ evalkit_dpo.json: config, pair hash, stats)
    timings.json                seconds per stage (generation / scoring / training split)
    report.json, report.md      before/after under both oracles, reward-hacking gap
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evalkit.data import DataLayer
from evalkit.dpo.config import DPOLoopConfig
from evalkit.dpo.pairs import Pair, mine_pairs, pair_stats
from evalkit.dpo.stages import (
    backend_for,
    build_prompts,
    generate,
    rule_config,
    sample,
    sft_sentences,
)
from evalkit.errors import BadInput, EvalkitError
from evalkit.oracles.rule import parse_stats
from evalkit.oracles.specs import load_oracle
from evalkit.types import GenParams, sha256_text, stable_hash

__all__ = ["LoopResult", "NoPairsError", "run_loop"]

Log = Callable[[str], None]


class NoPairsError(EvalkitError):
    """No candidate pair met the thresholds: nothing to train on."""


@dataclass
class LoopResult:
    """Where the loop left its outputs and the headline numbers."""

    out: Path
    report: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


# -- small I/O helpers ------------------------------------------------------------------------
def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n",
                   encoding="utf-8")
    tmp.replace(path)


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(path)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


class _Timer:
    """Accumulates seconds per stage into timings.json (resumed stages keep earlier figures)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.t: dict[str, float] = _read_json(path) if path.exists() else {}

    def add(self, key: str, seconds: float) -> None:
        self.t[key] = round(self.t.get(key, 0.0) + seconds, 2)
        _write_json(self.path, self.t)


# -- the loop ---------------------------------------------------------------------------------
class _Loop:
    def __init__(self, cfg: DPOLoopConfig, out: Path, force_sft: bool, log: Log) -> None:
        self.cfg, self.out, self.force_sft, self.log = cfg, out, force_sft, log
        self.data = DataLayer(Path(cfg.data_dir) if cfg.data_dir else None)
        self.rule = rule_config(cfg.oracles)
        self.timer = _Timer(out / "timings.json")
        self._oracles: dict[str, Any] = {}

    def oracle(self, role: str) -> Any:
        o = self.cfg.oracles
        name, opts = (o.train, o.train_options) if role == "train" else (o.heldout,
                                                                          o.heldout_options)
        if role not in self._oracles:
            t0 = time.perf_counter()
            self._oracles[role] = load_oracle(name, opts)
            self.timer.add(f"oracle_load_{role}", time.perf_counter() - t0)
        return self._oracles[role]

    def judge(self, role: str, texts: Sequence[str]) -> list[Any]:
        from evalkit.oracles.rule import judge

        return judge(self.oracle(role), list(texts), self.rule)

    # -- config and prompts -------------------------------------------------------------------
    def check_config(self) -> None:
        record = {"config": self.cfg.model_dump(mode="json"), "force_sft": self.force_sft}
        path = self.out / "config.json"
        if path.exists():
            old = _read_json(path)
            if stable_hash(old) != stable_hash(record):
                raise BadInput(f"{self.out} holds a run with a different config (or --force-sft); "
                               "use another --out, or delete the directory to start over")
        else:
            _write_json(path, record)

    def prompts(self) -> tuple[list[str], list[str]]:
        path = self.out / "prompts.json"
        if path.exists():
            d = _read_json(path)
            return d["train"], d["eval"]
        train = build_prompts(self.cfg.candidates.prompts, self.data)
        ev = build_prompts(self.cfg.evaluation.prompts, self.data)
        overlap = set(train) & set(ev)
        if self.cfg.candidates.prompts.file == self.cfg.evaluation.prompts.file:
            raise BadInput("training and evaluation prompts come from the same file; use a "
                           "different source for candidates.prompts (e.g. UD Bokmål dev)")
        _write_json(path, {"train": train, "eval": ev, "shared_prompt_texts": sorted(overlap)})
        return train, ev

    # -- evaluation -----------------------------------------------------------------------------
    def evaluate(self, name: str, model_dir: str, adapter: str | None, prompts: list[str]
                 ) -> dict[str, Any]:
        """PS etc. of one variant, per seed, under both oracles (cached in eval/<name>/)."""
        d = self.out / "eval" / name
        done = d / "metrics.json"
        if done.exists():
            return _read_json(done)
        ev = self.cfg.evaluation
        missing = [s for s in ev.seeds if not (d / f"seed{s}.jsonl").exists()]
        if missing:
            t0 = time.perf_counter()
            from evalkit.models import resolve_adapter

            refs = [resolve_adapter(adapter)] if adapter else []
            backend = backend_for(self.cfg, model_dir, refs, self.cfg.seed)
            try:
                for s in missing:
                    p = GenParams(max_new_tokens=ev.max_new_tokens, temperature=ev.temperature,
                                  seed=s)
                    drawn = generate(backend, prompts, [p],
                                     refs[0].backend_id if refs else None)
                    _write_jsonl(d / f"seed{s}.jsonl",
                                 [{"prompt": pr, "continuation": t[0]}
                                  for pr, t in zip(prompts, drawn)])
            finally:
                backend.close()
            self.timer.add(f"eval_generation_{name}", time.perf_counter() - t0)
        result: dict[str, Any] = {"model": model_dir, "adapter": adapter, "seeds": {}}
        t0 = time.perf_counter()
        for s in ev.seeds:
            rows = _read_jsonl(d / f"seed{s}.jsonl")
            texts = [r["prompt"] + r["continuation"] for r in rows]
            result["seeds"][str(s)] = {
                role: asdict(parse_stats(self.judge(role, texts))) for role in ("train", "heldout")}
        self.timer.add(f"eval_scoring_{name}", time.perf_counter() - t0)
        result["mean"] = _mean_over_seeds(result["seeds"])
        _write_json(done, result)
        self.log(f"[eval] {name}: PS train-oracle {result['mean']['train']['ps']:.3f}, "
                 f"held-out {result['mean']['heldout']['ps']:.3f}")
        return result

    # -- auto-SFT -------------------------------------------------------------------------------
    def sft(self, base_dir: str, base_ps: float) -> str:
        """Run KL-SFT when base PS < τ (or forced); returns the model dir DPO starts from."""
        path = self.out / "sft.json"
        model_dir = self.out / "sft" / "model"
        if path.exists():
            d = _read_json(path)
            return str(model_dir) if d["ran"] else base_dir
        s = self.cfg.sft
        run = self.force_sft or base_ps < s.threshold
        reason = ("forced (--force-sft)" if self.force_sft else
                  f"base PS {base_ps:.3f} {'<' if run else '>='} τ {s.threshold}")
        self.log(f"[sft] {'running' if run else 'skipped'}: {reason}")
        record: dict[str, Any] = {"ran": run, "reason": reason, "base_ps": base_ps}
        if run:
            from evalkit.dpo.train import train_kl_sft

            t0 = time.perf_counter()
            texts = sft_sentences(Path(self.cfg.data_dir) if self.cfg.data_dir else None,
                                  s.n_sentences, self.cfg.seed)
            record["stats"] = train_kl_sft(base_dir, texts, model_dir, s, self.cfg.lora,
                                           self.cfg.seed)
            self.timer.add("sft_training", time.perf_counter() - t0)
            st = record["stats"]
            self.log(f"[sft] {st['steps']} steps, KL first/last tenth "
                     f"{st['kl_first_tenth']:.4f}/{st['kl_last_tenth']:.4f}")
        _write_json(path, record)
        return str(model_dir) if run else base_dir

    # -- one round ------------------------------------------------------------------------------
    def round(self, k: int, policy_dir: str, prompts: list[str]) -> Path:
        """Candidates → scores → pairs → DPO adapter for round k; returns the adapter dir."""
        d = self.out / f"round{k}"
        cand_path, score_path, pair_path = (d / "candidates.jsonl", d / "scores.jsonl",
                                            d / "pairs.jsonl")
        c = self.cfg.candidates
        if not cand_path.exists():
            groups = [GenParams(max_new_tokens=c.max_new_tokens, temperature=g.temperature, n=g.n,
                                repetition_penalty=c.repetition_penalty,
                                seed=self.cfg.seed * 1000 + 100 * k + j)
                      for j, g in enumerate(c.groups)]
            t0 = time.perf_counter()
            backend = backend_for(self.cfg, policy_dir, [], self.cfg.seed)
            try:
                cands = sample(backend, prompts, groups)
            finally:
                backend.close()
            self.timer.add(f"round{k}_generation", time.perf_counter() - t0)
            temps = [g.temperature for g in c.groups for _ in range(g.n)]
            _write_jsonl(cand_path, [
                {"prompt_id": i, "prompt": p, "candidates": [x.text for x in cs],
                 "temperatures": temps,
                 "prompt_ids": list(cs[0].prompt_token_ids) if cs else [],
                 "candidate_ids": [list(x.token_ids) for x in cs]}
                for i, (p, cs) in enumerate(zip(prompts, cands))])
            self.log(f"[round {k}] {sum(map(len, cands))} candidates")
        cand_rows = _read_jsonl(cand_path)
        if not score_path.exists():
            t0 = time.perf_counter()
            flat = [r["prompt"] + t for r in cand_rows for t in r["candidates"]]
            verdicts = self.judge("train", flat)
            self.timer.add(f"round{k}_scoring", time.perf_counter() - t0)
            it = iter(verdicts)
            _write_jsonl(score_path, [
                {"prompt_id": r["prompt_id"],
                 "rewards": [v.reward for v in vs], "passed": [v.passed for v in vs]}
                for r in cand_rows for vs in [[next(it) for _ in r["candidates"]]]])
        scores = [r["rewards"] for r in _read_jsonl(score_path)]
        p = self.cfg.pairs
        if not pair_path.exists():
            pairs = mine_pairs([r["prompt"] for r in cand_rows],
                               [r["candidates"] for r in cand_rows], scores,
                               min_delta=p.min_delta, min_chosen=p.min_chosen,
                               strategy=p.strategy, max_per_prompt=p.max_per_prompt)
            stats = pair_stats(pairs, scores, p.min_chosen).to_json()
            _write_json(d / "pair_stats.json", stats)
            if not pairs:
                raise NoPairsError(
                    f"round {k}: no usable preference pairs (Δ ≥ {p.min_delta}, chosen ≥ "
                    f"{p.min_chosen}) from {stats['n_candidates']} candidates; mean candidate "
                    f"score {stats['mean_candidate_score']}, share with score ≥ {p.min_chosen}: "
                    f"{stats['share_candidates_passing_min_chosen']:.3f}. The model rarely writes "
                    "a sentence the oracle accepts: train the base longer or run KL-SFT "
                    f"(--force-sft); details in {d / 'pair_stats.json'}")
            _write_jsonl(pair_path, [x.to_json() for x in pairs])
            self.log(f"[round {k}] {stats['n_pairs']} pairs, mean chosen "
                     f"{stats['mean_chosen']:.3f}, rejected {stats['mean_rejected']:.3f}")
        adapter = d / "adapter"
        if not (adapter / "evalkit_dpo.json").exists():
            from evalkit.dpo.train import train_dpo

            rows = _read_jsonl(pair_path)
            pairs = [Pair(**r) for r in rows]
            meta = {"config": self.cfg.model_dump(mode="json"), "round": k,
                    "policy_model": policy_dir,
                    "pairs_sha256": sha256_text(pair_path.read_text(encoding="utf-8")),
                    "pair_stats": _read_json(d / "pair_stats.json")}
            t0 = time.perf_counter()
            stats = train_dpo(policy_dir, training_rows(pairs, cand_rows), adapter, self.cfg.dpo,
                              self.cfg.lora, self.cfg.seed, meta)
            self.timer.add(f"round{k}_training", time.perf_counter() - t0)
            self.log(f"[round {k}] DPO {stats['steps']} steps, loss {stats['loss_first']} → "
                     f"{stats['loss_last']}")
        return adapter


def training_rows(pairs: Sequence[Pair], cand_rows: Sequence[dict[str, Any]]
                  ) -> list[dict[str, Any]]:
    """DPO rows that keep the generation's tokenization: the prompt's ids as the model saw
    them and each continuation's ids as sampled. Text is kept beside them for the record;
    candidate files without ids (written before ids were kept) give text-only rows."""
    by_prompt: dict[int, tuple[list[int], dict[str, list[int]]]] = {}
    for r in cand_rows:
        ids = r.get("candidate_ids") or []
        first: dict[str, list[int]] = {}
        for text, cid in zip(r["candidates"], ids):
            first.setdefault(text, cid)  # duplicates were merged by text when pairing
        by_prompt[r["prompt_id"]] = (r.get("prompt_ids") or [], first)
    rows = []
    for x in pairs:
        row: dict[str, Any] = {"prompt": x.prompt, "chosen": x.chosen, "rejected": x.rejected}
        prompt_ids, ids = by_prompt.get(x.prompt_id, ([], {}))
        if prompt_ids and x.chosen in ids and x.rejected in ids:
            row.update(prompt_ids=prompt_ids, chosen_ids=ids[x.chosen],
                       rejected_ids=ids[x.rejected])
        rows.append(row)
    return rows


def _saga_suite(cfg: DPOLoopConfig, out: Path, base_dir: str, policy: str, adapter: Path
                ) -> dict[str, Any]:
    """`evalkit run --suite saga` on the base model and on policy + adapter (cached)."""
    path = out / "saga" / "summary.json"
    if path.exists():
        return _read_json(path)
    from evalkit.registry import SUITES
    from evalkit.runner import RunConfig, run

    result: dict[str, Any] = {}
    for name, model, adapters in (("base", base_dir, []), ("final", policy, [str(adapter)])):
        rc = RunConfig(model=model, tasks=list(SUITES["saga"]), adapters=adapters,
                       include_base=not adapters, backend=cfg.backend,
                       limit=cfg.evaluation.saga_limit, seed=cfg.seed, out=out / "saga",
                       backend_options=dict(cfg.backend_options),
                       update_leaderboards=False)
        result[name] = {s.task: {k: v.get("value") for k, v in s.metrics.items()}
                        for s in run(rc)}
    _write_json(path, result)
    return result


def _mean_over_seeds(seeds: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for role in ("train", "heldout"):
        rows = [v[role] for v in seeds.values()]
        m: dict[str, Any] = {}
        for key in rows[0]:
            vals = [r[key] for r in rows if r[key] is not None]
            m[key] = sum(vals) / len(vals) if vals else None
        m["ps_per_seed"] = [r["ps"] for r in rows]
        out[role] = m
    return out


def _merge(model_dir: str, adapter: Path, out: Path) -> str:
    """Merge `adapter` into `model_dir` (for round k + 1's policy); returns the merged dir."""
    if (out / "config.json").exists():
        return str(out)
    from evalkit.lora import merge_adapter

    return str(merge_adapter(model_dir, adapter, out))


def build_report(base: dict[str, Any], final: dict[str, Any], sft_eval: dict[str, Any] | None,
                 rounds: list[dict[str, Any]], timings: dict[str, float]) -> dict[str, Any]:
    """Before/after under both oracles, the reward-hacking gap and the acceptance checks."""
    def delta(role: str, key: str) -> float | None:
        a, b = base["mean"][role].get(key), final["mean"][role].get(key)
        return None if a is None or b is None else b - a

    gain_train, gain_held = delta("train", "ps"), delta("heldout", "ps")
    before, after = base["mean"]["train"]["ps_per_seed"], final["mean"]["train"]["ps_per_seed"]
    n_pairs = sum(r["n_pairs"] for r in rounds)
    d_complete = delta("train", "complete_share")
    d_mattr = delta("train", "mattr")
    checks = {  # the loop's success criteria, reported, never used to alter anything
        "ps_gain_train_oracle_ge_0.05": gain_train is not None and gain_train >= 0.05,
        "lowest_seed_after_ge_highest_before": min(after) >= max(before),
        "pairs_ge_200": n_pairs >= 200,
        "complete_share_within_0.02": d_complete is not None and abs(d_complete) <= 0.02,
        "mattr_within_0.05": d_mattr is not None and abs(d_mattr) <= 0.05,
    }
    return {
        "base": base["mean"], "final": final["mean"],
        "after_sft": sft_eval["mean"] if sft_eval else None,
        "ps_gain": {"train_oracle": gain_train, "heldout_evaluator": gain_held},
        "reward_hacking_gap": (None if gain_train is None or gain_held is None
                               else gain_train - gain_held),
        "delta_complete_share": d_complete, "delta_mattr": d_mattr,
        "pairs": rounds, "checks": checks, "timings_s": timings,
    }


def _report_md(r: dict[str, Any], cfg: DPOLoopConfig) -> str:
    def f(x: Any) -> str:
        return "—" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)

    o = cfg.oracles
    lines = ["# Δ-DPO report", "",
             f"model `{cfg.model}`, training oracle `{o.train}`, held-out evaluator `{o.heldout}`"
             f", seeds {cfg.evaluation.seeds}, {cfg.evaluation.prompts.n} held-out prompts", "",
             "| variant | oracle | PS | PS per seed | parse score | complete | MATTR |",
             "|---|---|---:|---|---:|---:|---:|"]
    variants = [("base", r["base"]), ("after SFT", r["after_sft"]), ("final", r["final"])]
    for name, m in variants:
        if m is None:
            continue
        for role, label in (("train", o.train), ("heldout", o.heldout)):
            x = m[role]
            lines.append(f"| {name} | {label} | {f(x['ps'])} | "
                         f"{', '.join(f(v) for v in x['ps_per_seed'])} | {f(x['parse_score'])} | "
                         f"{f(x['complete_share'])} | {f(x['mattr'])} |")
    g = r["ps_gain"]
    lines += ["", f"PS gain: training oracle {f(g['train_oracle'])}, held-out evaluator "
              f"{f(g['heldout_evaluator'])}; **reward-hacking gap {f(r['reward_hacking_gap'])}** "
              "(training-oracle gain minus held-out gain).", "",
              "pairs: " + "; ".join(f"round {i + 1}: {p['n_pairs']} (chosen {f(p['mean_chosen'])},"
                                    f" rejected {f(p['mean_rejected'])}, Δ {f(p['mean_delta'])})"
                                    for i, p in enumerate(r["pairs"])), "",
              "checks: " + ", ".join(f"{k} {'yes' if v else 'NO'}"
                                                 for k, v in r["checks"].items()), "",
              "timings (s): " + ", ".join(f"{k} {v}" for k, v in r["timings_s"].items())]
    return "\n".join(lines) + "\n"


def run_loop(cfg: DPOLoopConfig, out: Path, force_sft: bool = False,
             log: Log | None = None) -> LoopResult:
    """Run (or resume) the whole loop; returns the report.

    Raises:
        NoPairsError: a round produced no usable pairs (its statistics are on disk).
        EvalkitError: bad config, missing data or oracles.
    """
    log = log or (lambda _m: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(cfg.threads))
    loop = _Loop(cfg, out, force_sft, log)
    loop.check_config()
    from evalkit.models import resolve_model

    base_dir = resolve_model(cfg.model).path
    train_prompts, eval_prompts = loop.prompts()
    base = loop.evaluate("base", base_dir, None, eval_prompts)
    policy = loop.sft(base_dir, base["mean"]["train"]["ps"])
    sft_eval = loop.evaluate("sft", policy, None, eval_prompts) if policy != base_dir else None
    rounds: list[dict[str, Any]] = []
    adapter: Path | None = None
    for k in range(1, cfg.rounds + 1):
        if adapter is not None:  # round k samples from round k-1's result, merged
            policy = _merge(policy, adapter, out / f"round{k - 1}" / "merged")
        adapter = loop.round(k, policy, train_prompts)
        rounds.append(_read_json(out / f"round{k}" / "pair_stats.json"))
    assert adapter is not None
    final = loop.evaluate(f"round{cfg.rounds}", policy, str(adapter), eval_prompts)
    report = build_report(base, final, sft_eval, rounds, loop.timer.t)
    report["final_model"] = {"base_for_adapter": policy, "adapter": str(adapter)}
    if cfg.evaluation.saga_suite:
        t0 = time.perf_counter()
        report["saga_suite"] = _saga_suite(cfg, out, base_dir, policy, adapter)
        loop.timer.add("saga_suite", time.perf_counter() - t0)
    _write_json(out / "report.json", report)
    (out / "report.md").write_text(_report_md(report, cfg), encoding="utf-8")
    return LoopResult(out, report, dict(loop.timer.t))


def replace_cfg(cfg: DPOLoopConfig, **changes: Any) -> DPOLoopConfig:
    """A copy of `cfg` with top-level fields changed (validated)."""
    return DPOLoopConfig.model_validate({**cfg.model_dump(), **changes})

