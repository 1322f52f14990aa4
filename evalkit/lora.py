"""Merging a LoRA adapter into its base model: one implementation for every caller.

Used by the vLLM backend (``--merge-adapter``) and the Δ-DPO loop (each round's policy).
The merged checkpoint is written to a temporary sibling and renamed into place, so a crash
never leaves a half-written model where a later run would find it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from evalkit.errors import BadInput


def merge_adapter(model: str | Path, adapter: str | Path, out: Path) -> Path:
    """Merge `adapter` into `model` (fp32) and save weights + tokenizer to `out`."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = Path(out)
    base = AutoModelForCausalLM.from_pretrained(str(model), dtype=torch.float32)
    try:
        merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    except Exception as exc:  # noqa: BLE001 - peft raises many types for bad dirs
        raise BadInput(f"adapter {adapter} could not be merged into {model}: "
                       f"{str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}"
                       "; check that the adapter was trained for this base model") from None
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(str(model)).save_pretrained(tmp)
    if out.exists():
        shutil.rmtree(out)
    tmp.replace(out)
    return out
