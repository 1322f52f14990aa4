"""Training: KL-regularised LoRA SFT (evalkit's own small loop) and LoRA DPO (TRL's trainer).

The DPO step is TRL's `DPOTrainer` with a peft `LoraConfig`: with a peft config the reference
model is the adapter-disabled policy, so no second copy of the weights is held. The SFT stage is
a plain loop because its loss, ``CE + λ·KL(policy ‖ frozen base)``, needs the base model's
logits per token; with LoRA those come from the same model with the adapter disabled.

torch, transformers, peft, trl and datasets are imported inside the functions.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.dpo.config import DPOSettings, LoraSettings, SFTSettings
from evalkit.errors import BadInput

__all__ = ["build_dpo_trainer", "kl_sft_loss", "lora_config", "train_dpo", "train_kl_sft"]


def lora_config(lora: LoraSettings) -> Any:
    """The peft `LoraConfig` of SAGA's adapter (all linear layers by default)."""
    from peft import LoraConfig

    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=lora.target_modules, task_type="CAUSAL_LM", bias="none")


def _check_tokenizer(tok: Any, model_dir: str | Path) -> None:
    """DPO appends EOS to chosen/rejected and pads batches: the tokenizer must have both."""
    missing = [n for n in ("eos_token", "pad_token") if getattr(tok, n, None) is None]
    if missing:
        raise BadInput(f"tokenizer of {model_dir} has no {' or '.join(missing)}; DPO appends EOS "
                       "and pads batches: set them in tokenizer_config.json")


def kl_sft_loss(policy_logits: Any, ref_logits: Any, labels: Any, kl_weight: float
                ) -> tuple[Any, Any, Any]:
    """Next-token CE plus λ·KL(policy ‖ reference), both averaged over the labelled tokens.

    Args:
        policy_logits: ``[batch, seq, vocab]`` logits of the model being trained.
        ref_logits: the frozen base model's logits on the same input (no gradient needed).
        labels: ``[batch, seq]`` token ids, ``-100`` where no loss is taken (padding).
        kl_weight: λ (SAGA: 0.10).

    Returns:
        ``(total, ce, kl)`` scalar tensors; the KL is the exact per-position KL over the whole
        vocabulary (not a sampled estimate), so it is ≥ 0 and 0 iff the distributions agree.
    """
    import torch.nn.functional as F

    logits = policy_logits[:, :-1].float()
    ref = ref_logits[:, :-1].float().detach()
    tgt = labels[:, 1:]
    mask = tgt != -100
    if not bool(mask.any()):
        zero = logits.sum() * 0.0
        return zero, zero, zero
    ce = F.cross_entropy(logits[mask], tgt[mask])
    logp = F.log_softmax(logits[mask], dim=-1)
    logq = F.log_softmax(ref[mask], dim=-1)
    kl = (logp.exp() * (logp - logq)).sum(-1).mean()
    return ce + kl_weight * kl, ce, kl


def train_kl_sft(model_dir: str | Path, texts: Sequence[str], out_dir: Path, sft: SFTSettings,
                 lora: LoraSettings, seed: int = 0, max_steps: int | None = None) -> dict[str, Any]:
    """LoRA SFT with a KL penalty to the frozen base; saves the merged model to ``out_dir``.

    The adapter is merged afterwards so that DPO trains a fresh adapter on top of the SFT
    weights (SAGA's KL-SFT → Δ-DPO chain) and evaluation loads one checkpoint.

    Returns:
        Training statistics (steps, first/last loss, CE and KL, seconds).
    """
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not texts:
        raise BadInput("KL-SFT got no training sentences; check sft settings and the data mirror")
    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(model_dir)
    _check_tokenizer(tok, model_dir)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = get_peft_model(base, lora_config(lora))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=sft.learning_rate, weight_decay=0.0)
    rng = random.Random(seed)
    order = list(range(len(texts)))
    steps_per_epoch = math.ceil(len(texts) / sft.batch_size)
    total = math.ceil(steps_per_epoch * sft.epochs)
    if max_steps is not None:
        total = min(total, max_steps)
    log: list[dict[str, float]] = []
    t0 = time.perf_counter()
    step = 0
    while step < total:
        rng.shuffle(order)
        for start in range(0, len(order), sft.batch_size):
            if step >= total:
                break
            batch = [texts[i] + (tok.eos_token or "") for i in order[start:start + sft.batch_size]]
            enc = tok(batch, return_tensors="pt", padding=True, truncation=True,
                      max_length=sft.max_length)
            labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
            with torch.no_grad(), model.disable_adapter():
                ref_logits = model(**enc).logits
            logits = model(**enc).logits
            loss, ce, kl = kl_sft_loss(logits, ref_logits, labels, sft.kl_weight)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            # linear decay: the last steps refine rather than jump
            for g in opt.param_groups:
                g["lr"] = sft.learning_rate * (1.0 - step / total)
            opt.step()
            log.append({"loss": loss.item(), "ce": ce.item(), "kl": kl.item()})
            step += 1
    merged = model.merge_and_unload()
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    first, last = log[0], log[-1]
    k = max(1, len(log) // 10)  # report means over the first/last tenth: single steps are noisy
    stats = {
        "steps": len(log), "sentences": len(texts), "seconds": round(time.perf_counter() - t0, 1),
        "loss_first": first["loss"], "loss_last": last["loss"],
        "ce_first_tenth": sum(x["ce"] for x in log[:k]) / k,
        "ce_last_tenth": sum(x["ce"] for x in log[-k:]) / k,
        "kl_first_tenth": sum(x["kl"] for x in log[:k]) / k,
        "kl_last_tenth": sum(x["kl"] for x in log[-k:]) / k,
    }
    (out_dir / "evalkit_sft.json").write_text(json.dumps(stats, indent=2) + "\n")
    return stats


def build_dpo_trainer(model_dir: str | Path, rows: Sequence[dict[str, Any]], out_dir: Path,
                      dpo: DPOSettings, lora: LoraSettings, seed: int = 0,
                      max_steps: int | None = None) -> Any:
    """A TRL `DPOTrainer` with a LoRA config over ``{"prompt", "chosen", "rejected"}`` rows,
    tokenized as given when every row also holds ``prompt_ids``/``chosen_ids``/``rejected_ids``."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging
    from trl import DPOConfig, DPOTrainer

    hf_logging.set_verbosity_error()
    if not rows:
        raise BadInput("no preference pairs to train on")
    tok = AutoTokenizer.from_pretrained(model_dir)
    _check_tokenizer(tok, model_dir)
    cuda = torch.cuda.is_available()
    bf16 = cuda if dpo.bf16 is None else dpo.bf16
    if bf16 and not cuda:
        raise BadInput("dpo.bf16 = true needs a GPU; leave it unset on CPU")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    args = DPOConfig(
        output_dir=str(out_dir / "trainer"), beta=dpo.beta, num_train_epochs=dpo.epochs,
        learning_rate=dpo.learning_rate, per_device_train_batch_size=dpo.batch_size,
        warmup_steps=dpo.warmup_steps, max_length=dpo.max_length, bf16=bf16,
        use_cpu=not cuda, seed=seed, data_seed=seed, save_strategy="no", report_to=[],
        logging_steps=max(1, len(rows) // dpo.batch_size // 10), disable_tqdm=True,
        max_steps=max_steps if max_steps is not None else -1)
    tokenized = all("prompt_ids" in r for r in rows)
    if tokenized:  # the exact sampled tokens, EOS appended as TRL does to text completions
        eos = [tok.eos_token_id]
        ds = Dataset.from_list([{"prompt_ids": list(r["prompt_ids"]),
                                 "chosen_ids": list(r["chosen_ids"]) + eos,
                                 "rejected_ids": list(r["rejected_ids"]) + eos} for r in rows])
    else:
        ds = Dataset.from_list([{"prompt": r["prompt"], "chosen": r["chosen"],
                                 "rejected": r["rejected"]} for r in rows])
    trainer = _trainer_class(DPOTrainer)(model=model, args=args, train_dataset=ds,
                                         processing_class=tok, peft_config=lora_config(lora))
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # evalkit logs its own one-line summary
    return trainer


def _trainer_class(base: type) -> type:
    """`DPOTrainer` that takes rows already tokenized (``prompt_ids``/``chosen_ids``/
    ``rejected_ids``) as they are. TRL always re-tokenizes ``prompt``/``chosen``/``rejected``
    text, and a tokenizer may merge tokens across the prompt/completion boundary, so the model
    would be trained on a context it never saw when sampling."""

    class PretokenizedDPOTrainer(base):
        def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any,
                             dataset_name: str) -> Any:
            if "prompt_ids" not in next(iter(dataset)):
                return super()._prepare_dataset(dataset, processing_class, args, dataset_name)
            if args.max_length is not None and args.truncation_mode == "keep_start":
                # as TRL does: a prompt that fills max_length leaves nothing to learn from
                dataset = dataset.filter(lambda ex: len(ex["prompt_ids"]) < args.max_length)
            return dataset

    return PretokenizedDPOTrainer


def train_dpo(model_dir: str | Path, rows: Sequence[dict[str, Any]], out_dir: Path,
              dpo: DPOSettings, lora: LoraSettings, seed: int = 0,
              meta: dict[str, Any] | None = None, max_steps: int | None = None
              ) -> dict[str, Any]:
    """Train a LoRA adapter with DPO and save it (plus ``evalkit_dpo.json``) to ``out_dir``.

    Returns:
        Training statistics: steps, seconds, first/last logged loss and reward accuracy.
    """
    t0 = time.perf_counter()
    trainer = build_dpo_trainer(model_dir, rows, out_dir, dpo, lora, seed, max_steps)
    result = trainer.train()
    history = [h for h in trainer.state.log_history if "loss" in h]
    stats = {
        "steps": trainer.state.global_step, "pairs": len(rows),
        "seconds": round(time.perf_counter() - t0, 1),
        "train_loss": float(result.training_loss),
        "loss_first": history[0]["loss"] if history else None,
        "loss_last": history[-1]["loss"] if history else None,
        "reward_accuracy_last": history[-1].get("rewards/accuracies") if history else None,
        "reward_margin_last": history[-1].get("rewards/margins") if history else None,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    trainer.model.save_pretrained(out_dir)
    (out_dir / "evalkit_dpo.json").write_text(
        json.dumps({**(meta or {}), "train": stats}, indent=2, default=str) + "\n")
    import shutil

    shutil.rmtree(out_dir / "trainer", ignore_errors=True)
    return stats
