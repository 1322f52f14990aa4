"""Model metadata for a board's details rows: identity, size, adapter rank, merge recipe and
the settings each task ran with, from the run records and, when the checkpoint recorded in a
run is a directory on this machine, its own small metadata files (never its weights)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from evalkit.leaderboard.collect import Row
from evalkit.leaderboard.labels import public_name


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def checkpoint_parameters(model_dir: Path) -> int | None:
    """Parameters of a local safetensors checkpoint, from the files' headers (no weights read)."""
    import struct

    total, seen = 0, False
    try:
        files = sorted(Path(model_dir).glob("*.safetensors"))
    except OSError:
        return None
    for f in files:
        try:
            with open(f, "rb") as fh:
                (n,) = struct.unpack("<Q", fh.read(8))
                if n > 100_000_000:
                    return None
                header = json.loads(fh.read(n))
        except (OSError, ValueError, struct.error):
            return None
        for name, t in header.items():
            if name != "__metadata__" and isinstance(t, dict) and isinstance(t.get("shape"), list):
                total += math.prod(int(x) for x in t["shape"])
                seen = True
    return total if seen else None


def _count(n: int) -> str:
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return str(n)


def _tasks(names: list[str]) -> str:
    if len(names) <= 4:
        return ", ".join(names)
    return f"{', '.join(names[:3])} and {len(names) - 3} more"


def row_details(row: Row) -> list[tuple[str, str]]:
    """What a board shows about a row's model: identity, size, adapter, merge recipe, and the
    settings each task ran with. Names only, never a path of the machine that made the run.

    Parameters, adapter rank and merge recipe come from the checkpoint's own files
    (safetensors headers, ``adapter_config.json``, ``evalkit_merge.json``) when the model or
    adapter recorded in the run is a directory on this machine; otherwise they are left out.
    """
    out: list[tuple[str, str]] = [("model", f"{public_name(row.model)} · sha256 "
                                            f"{row.model_hash[:12]}")]
    model_dir = Path(row.model).expanduser()
    local = model_dir.is_dir()
    merge = _read_json(model_dir / "evalkit_merge.json") if local else None
    n_params = checkpoint_parameters(model_dir) if local else None
    if n_params is None and merge and isinstance(merge.get("n_parameters"), int):
        n_params = merge["n_parameters"]
    if n_params:
        out.append(("parameters", f"{_count(n_params)} ({n_params:,})"))
    if merge:
        parts = [str(merge.get("recipe", "?"))]
        if merge.get("formula"):
            parts.append(str(merge["formula"]))
        if merge.get("alpha") is not None:
            parts.append(f"α = {merge['alpha']}")
        inputs = merge.get("inputs") or {}
        if isinstance(inputs, dict) and inputs:
            parts.append("inputs " + ", ".join(
                f"{role}: {public_name(str((v or {}).get('name', '')))}"
                for role, v in inputs.items()))
        out.append(("merge recipe", " · ".join(parts)))
    if row.adapter:
        out.append(("adapter", f"{row.adapter_label or public_name(row.adapter)} · sha256 "
                               f"{(row.adapter_hash or '')[:12]}"))
        cfg = _read_json(Path(row.adapter).expanduser() / "adapter_config.json")
        if cfg:
            bits = [f"r = {cfg['r']}"] if cfg.get("r") is not None else []
            if cfg.get("lora_alpha") is not None:
                bits.append(f"alpha = {cfg['lora_alpha']}")
            targets = cfg.get("target_modules")
            if isinstance(targets, (list, str)) and targets:
                bits.append("on " + (", ".join(sorted(targets)) if isinstance(targets, list)
                                     else targets))
            if bits:
                out.append(("adapter rank", ", ".join(bits)))
            if isinstance(cfg.get("base_model_name_or_path"), str):
                out.append(("adapter base model", public_name(cfg["base_model_name_or_path"])))
    if "-merged" in row.key:
        out.append(("merged", "the adapter was merged into the weights before evaluation"))
    sums = sorted(row.summaries.items())
    if not sums:
        return out
    first = sums[0][1]
    out.append(("backend", ", ".join(sorted({s.backend for _, s in sums}))))
    out.append(("seed", ", ".join(sorted({str(s.seed) for _, s in sums}))))
    limits = sorted({s.limit for _, s in sums if s.limit is not None})
    if limits:
        out.append(("limit", "partial run: --limit " + ", ".join(map(str, limits))))
    chat: dict[str, list[str]] = {}
    shas = set()
    for t, s in sums:
        applied = s.chat_template.get("chat_applied", s.chat_template.get("applied"))
        said = {True: "applied", False: "not applied"}.get(applied, "unknown") \
            if isinstance(applied, bool) else "unknown"
        chat.setdefault(said, []).append(t)
        sha = s.chat_template.get("chat_template_sha256") or s.chat_template.get("sha256")
        if sha and applied:
            shas.add(str(sha)[:12])
    text = " · ".join(f"{k} on {_tasks(v)}" for k, v in sorted(chat.items()))
    if shas:
        text += f" (template sha256 {', '.join(sorted(shas))})"
    out.append(("chat template", text))
    gens: dict[str, list[str]] = {}
    for t, s in sums:
        for g in s.gen_params[:1]:
            keys = ("max_new_tokens", "temperature", "top_p", "n")
            desc = ", ".join(f"{k} {g[k]}" for k in keys if k in g and g[k] is not None)
            if desc:
                gens.setdefault(desc, []).append(t)
    if gens:
        out.append(("generation", " · ".join(f"{d} ({_tasks(ts)})" for d, ts in gens.items())))
    keep = ("evalkit", "torch", "transformers", "vllm", "sacrebleu", "peft", "python")
    out.append(("versions", ", ".join(f"{k} {first.versions[k]}" for k in keep
                                      if k in first.versions)))
    out.append(("runs", "; ".join(f"{t} {s.created_at}" for t, s in sums)))
    return out
