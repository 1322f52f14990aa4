"""Δ-DPO loop: config, pair mining, KL-SFT loss, DPO changes the adapter, the loop end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.dpo.config import DPOLoopConfig, load_config
from evalkit.dpo.pairs import mine_pairs, pair_stats
from evalkit.errors import BadInput

REPO = Path(__file__).resolve().parent.parent


# -- config ---------------------------------------------------------------------------------
def test_defaults_are_sagas_settings() -> None:
    c = DPOLoopConfig()
    assert c.n_candidates == 8
    assert [(g.temperature, g.n) for g in c.candidates.groups] == [(0.7, 4), (1.1, 4)]
    assert c.candidates.repetition_penalty == 1.3
    assert (c.pairs.min_delta, c.pairs.min_chosen) == (0.25, 0.20)
    assert (c.lora.r, c.lora.alpha, c.lora.dropout, c.lora.target_modules) == (
        16, 32, 0.05, "all-linear")
    assert (c.dpo.beta, c.dpo.epochs) == (0.1, 2.0)
    assert (c.sft.threshold, c.sft.kl_weight, c.sft.n_sentences, c.sft.epochs) == (
        0.80, 0.10, 10_000, 3.0)
    assert c.oracles.mattr_weight == 0.2 and (c.oracles.train, c.oracles.heldout) == (
        "spacy-nob", "stanza-nob")
    assert (c.evaluation.temperature, c.evaluation.max_new_tokens) == (0.8, 60)
    assert c.candidates.prompts.file != c.evaluation.prompts.file


def test_every_field_is_documented() -> None:
    def walk(model: type) -> None:
        for name, f in model.model_fields.items():
            assert f.description, f"{model.__name__}.{name} has no docstring"
            ann = f.annotation
            if isinstance(ann, type) and hasattr(ann, "model_fields"):
                walk(ann)

    walk(DPOLoopConfig)


def test_config_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "c.toml"
    bad.write_text("[dpo]\nbeta = 0.1\nbta = 2\n")
    with pytest.raises(BadInput, match="dpo.bta"):
        load_config(bad)
    with pytest.raises(BadInput, match="not found"):
        load_config(tmp_path / "missing.toml")
    assert load_config(REPO / "examples" / "dpo_small.toml").dpo.learning_rate == 5e-4


# -- pair mining ----------------------------------------------------------------------------
PROMPTS = ["A", "B", "C"]
CANDS = [["a1", "a2", "a3", "a4"], ["b1", "b2", "b3", "b4"], ["c1", "c2", "c1", "c3"]]
SCORES = [[0.9, -1.0, 0.5, 0.3],   # A: pairs (a1,a2) Δ1.9 and (a3,a4) Δ0.2 → second dropped
          [0.1, -1.0, 0.15, 0.0],  # B: no candidate reaches 0.20 → no pair
          [0.8, 0.6, 0.8, 0.6]]    # C: duplicates merged → (c1,c2) Δ0.2 → dropped


def test_disjoint_pairs_on_hand_made_scores() -> None:
    pairs = mine_pairs(PROMPTS, CANDS, SCORES)
    assert [(p.prompt, p.chosen, p.rejected) for p in pairs] == [("A", "a1", "a2")]
    assert pairs[0].delta == pytest.approx(1.9)


def test_thresholds_are_inclusive_and_strategies() -> None:
    scores = [[0.20, -0.05, 0.5, 0.25]]
    p = mine_pairs(["P"], [["x", "y", "z", "w"]], scores)  # (z,y) Δ.55, (w,x) Δ.05 → 1
    assert [(x.chosen, x.rejected) for x in p] == [("z", "y")]
    edge = mine_pairs(["P"], [["x", "y"]], [[0.20, -0.05]])  # Δ = 0.25, chosen = 0.20 exactly
    assert len(edge) == 1
    every = mine_pairs(["P"], [["x", "y", "z", "w"]], scores, strategy="all")
    assert {(x.chosen, x.rejected) for x in every} == {("z", "y"), ("z", "x"), ("z", "w"),
                                                        ("w", "y"), ("x", "y")}
    assert len(mine_pairs(["P"], [["x", "y", "z", "w"]], scores, strategy="all",
                          max_per_prompt=2)) == 2
    assert len(mine_pairs(["P"], [["x", "y", "z", "w"]], scores, strategy="best_worst")) == 1


def test_pair_stats() -> None:
    pairs = mine_pairs(PROMPTS, CANDS, SCORES, strategy="all")
    st = pair_stats(pairs, SCORES)
    assert st.n_pairs == len(pairs) and st.n_prompts == 3 and st.n_candidates == 12
    assert st.mean_chosen == pytest.approx(sum(p.chosen_score for p in pairs) / len(pairs))
    assert st.mean_delta == pytest.approx(st.mean_chosen - st.mean_rejected)
    assert st.share_candidates_passing_min_chosen == pytest.approx(7 / 12)
    assert pair_stats([], [[-1.0]]).mean_chosen is None


# -- KL-SFT ---------------------------------------------------------------------------------
def test_kl_sft_term_nonzero_and_decreases_toward_reference() -> None:
    torch = pytest.importorskip("torch")
    from evalkit.dpo.train import kl_sft_loss

    g = torch.Generator().manual_seed(0)
    ref = torch.randn(2, 5, 11, generator=g)
    policy = ref + torch.randn(2, 5, 11, generator=g)
    labels = torch.randint(0, 11, (2, 5), generator=g)
    labels[1, 3:] = -100
    kls = []
    for t in (0.0, 0.5, 0.9, 1.0):  # move the policy toward the reference
        total, ce, kl = kl_sft_loss(ref + (1 - t) * (policy - ref), ref, labels, 0.1)
        assert float(total) == pytest.approx(float(ce) + 0.1 * float(kl))
        kls.append(float(kl))
    assert kls[0] > 0.05
    assert kls[0] > kls[1] > kls[2] > kls[3]
    assert kls[3] == pytest.approx(0.0, abs=1e-6)


def test_kl_term_has_gradient_toward_reference() -> None:
    torch = pytest.importorskip("torch")
    from evalkit.dpo.train import kl_sft_loss

    ref = torch.zeros(1, 4, 7)
    policy = torch.randn(1, 4, 7, generator=torch.Generator().manual_seed(1)).requires_grad_()
    labels = torch.tensor([[1, 2, 3, 4]])
    _, _, kl = kl_sft_loss(policy, ref, labels, 0.1)
    kl.backward()
    with torch.no_grad():
        _, _, kl2 = kl_sft_loss(policy - 0.5 * policy.grad, ref, labels, 0.1)
    assert float(kl2) < float(kl.detach())


# -- DPO changes the adapter (TRL-style) ----------------------------------------------------
def test_short_dpo_run_changes_every_lora_parameter(tiny_model: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("trl")
    from evalkit.dpo.config import DPOSettings, LoraSettings
    from evalkit.dpo.train import build_dpo_trainer

    rows = [{"prompt": "Norsk er", "chosen": " et språk.", "rejected": " er er er"},
            {"prompt": "Hunden", "chosen": " løper i parken.", "rejected": " ,,, ..."}] * 4
    trainer = build_dpo_trainer(tiny_model, rows, tmp_path, DPOSettings(batch_size=4),
                                LoraSettings(r=4, alpha=8), seed=0, max_steps=3)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()
              if p.requires_grad}
    assert before and all("lora_" in n for n in before)
    trainer.train()
    for n, p in trainer.model.named_parameters():
        if n in before:
            assert not torch.equal(before[n], p), f"{n} did not change"


# -- the loop -------------------------------------------------------------------------------
def _tiny_cfg(model: Path, data_dir: Path, **over: object) -> DPOLoopConfig:
    base = {
        "model": str(model), "data_dir": str(data_dir), "seed": 0, "threads": 2,
        "oracles": {"train": "fake", "heldout": "fake",
                    "heldout_options": {"bad": ["Jeg liker kaffe."]}},
        "evaluation": {"prompts": {"n": 4}, "seeds": [0, 1], "max_new_tokens": 16},
        "candidates": {"prompts": {"n": 6}, "max_new_tokens": 20},
        "pairs": {"min_delta": 0.25, "min_chosen": -1.0},
        "lora": {"r": 4, "alpha": 8},
        "dpo": {"epochs": 1, "batch_size": 4},
        "sft": {"threshold": 0.0, "n_sentences": 16, "epochs": 1, "batch_size": 8},
    }
    for k, v in over.items():
        base[k] = {**base[k], **v} if isinstance(v, dict) else v  # type: ignore[dict-item]
    return DPOLoopConfig.model_validate(base)


def test_loop_end_to_end_and_resume(tiny_model: Path, data_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("trl")
    from evalkit.dpo.loop import run_loop

    cfg = _tiny_cfg(tiny_model, data_dir)
    out = tmp_path / "run"
    res = run_loop(cfg, out)
    for f in ("config.json", "prompts.json", "eval/base/metrics.json", "sft.json",
              "round1/candidates.jsonl", "round1/scores.jsonl", "round1/pairs.jsonl",
              "round1/pair_stats.json", "round1/adapter/adapter_config.json",
              "round1/adapter/evalkit_dpo.json", "eval/round1/metrics.json", "report.json",
              "report.md", "timings.json"):
        assert (out / f).exists(), f
    cands = [json.loads(x) for x in (out / "round1/candidates.jsonl").read_text().splitlines()]
    assert len(cands) == 6 and all(len(c["candidates"]) == 8 for c in cands)
    assert cands[0]["temperatures"] == [0.7] * 4 + [1.1] * 4
    rep = res.report
    assert rep["pairs"][0]["n_pairs"] >= 1
    assert rep["reward_hacking_gap"] == pytest.approx(
        rep["ps_gain"]["train_oracle"] - rep["ps_gain"]["heldout_evaluator"])
    assert json.loads((out / "sft.json").read_text())["ran"] is False  # τ = 0: skipped
    meta = json.loads((out / "round1/adapter/evalkit_dpo.json").read_text())
    assert len(meta["pairs_sha256"]) == 64 and meta["train"]["steps"] >= 1
    # a crash after training: the report is redone from artefacts, nothing regenerated
    (out / "report.json").unlink()
    (out / "eval/round1/metrics.json").unlink()
    stamp = (out / "round1/candidates.jsonl").stat().st_mtime_ns
    timings = json.loads((out / "timings.json").read_text())
    again = run_loop(cfg, out)
    assert (out / "round1/candidates.jsonl").stat().st_mtime_ns == stamp
    assert again.report["final"] == rep["final"]
    assert again.timings["round1_training"] == timings["round1_training"]
    # a different config in the same directory is refused
    with pytest.raises(BadInput, match="different config"):
        run_loop(_tiny_cfg(tiny_model, data_dir, seed=1), out)
    _trained_tokens_are_the_sampled_ones(cfg, out, str(tiny_model))


def _trained_tokens_are_the_sampled_ones(cfg: object, out: Path, model_dir: str) -> None:
    """Every pair trains on the prompt's token ids as generated, followed by the candidate's
    token ids as sampled; TRL's re-tokenisation (and its boundary warning) never happens."""
    import logging

    from transformers import AutoTokenizer

    from evalkit.dpo.loop import training_rows
    from evalkit.dpo.pairs import Pair
    from evalkit.dpo.train import build_dpo_trainer

    cands = {c["prompt_id"]: c for c in
             (json.loads(x) for x in (out / "round1/candidates.jsonl").read_text().splitlines())}
    pairs = [Pair(**json.loads(x)) for x in (out / "round1/pairs.jsonl").read_text().splitlines()]
    rows = training_rows(pairs, list(cands.values()))
    tok = AutoTokenizer.from_pretrained(model_dir)
    merged = 0
    for x, row in zip(pairs, rows):
        c = cands[x.prompt_id]
        assert row["prompt_ids"] == c["prompt_ids"] == tok(x.prompt)["input_ids"]
        assert row["chosen_ids"] == c["candidate_ids"][c["candidates"].index(x.chosen)]
        assert row["rejected_ids"] == c["candidate_ids"][c["candidates"].index(x.rejected)]
        whole = tok(x.prompt + x.chosen)["input_ids"]
        merged += whole != row["prompt_ids"] + row["chosen_ids"]
    # re-tokenising the text gives other tokens than were sampled: the case this guards
    assert merged > 0
    seen: list[str] = []

    class _Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = _Catch()
    logging.getLogger("trl").addHandler(handler)
    try:
        trainer = build_dpo_trainer(model_dir, rows, out / "check", cfg.dpo, cfg.lora,
                                    max_steps=1)
    finally:
        logging.getLogger("trl").removeHandler(handler)
    assert not [m for m in seen if "not a prefix" in m]
    eos = tok.eos_token_id
    for row, ex in zip(rows, trainer.train_dataset):
        assert ex["prompt_ids"] == row["prompt_ids"]
        assert ex["chosen_ids"] == row["chosen_ids"] + [eos]
        assert ex["rejected_ids"] == row["rejected_ids"] + [eos]


def test_zero_pairs_stops_with_statistics(tiny_model: Path, data_dir: Path,
                                          tmp_path: Path) -> None:
    pytest.importorskip("trl")
    from evalkit.dpo.loop import NoPairsError, run_loop

    cfg = _tiny_cfg(tiny_model, data_dir, pairs={"min_delta": 5.0, "min_chosen": 0.2},
                    evaluation={"prompts": {"n": 2}, "seeds": [0], "max_new_tokens": 8})
    with pytest.raises(NoPairsError, match="no usable preference pairs"):
        run_loop(cfg, tmp_path / "run")
    stats = json.loads((tmp_path / "run/round1/pair_stats.json").read_text())
    assert stats["n_pairs"] == 0 and stats["n_candidates"] == 48


def test_kl_sft_stage_runs_when_forced(tiny_model: Path, data_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("trl")
    from evalkit.dpo.config import LoraSettings, SFTSettings
    from evalkit.dpo.train import train_kl_sft

    texts = ["Hunden løper i parken.", "Norsk er et språk.", "Jeg liker kaffe."] * 4
    stats = train_kl_sft(tiny_model, texts, tmp_path / "m", SFTSettings(batch_size=4, epochs=2,
                         learning_rate=1e-2), LoraSettings(r=4, alpha=8), max_steps=6)
    assert stats["steps"] == 6
    assert stats["kl_first_tenth"] >= 0.0 and stats["kl_last_tenth"] > 0.0  # moved off the base
    assert stats["ce_last_tenth"] < stats["ce_first_tenth"]
    assert (tmp_path / "m" / "config.json").exists()


def test_cli_bad_config_is_one_line_exit_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "c.toml"
    bad.write_text("[pairs]\nmin_delta = -1\n")
    r = subprocess.run([sys.executable, "-m", "evalkit.cli", "dpo", str(bad)],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "pairs.min_delta" in r.stderr
