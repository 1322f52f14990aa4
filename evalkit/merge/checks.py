"""Compatibility checks before any byte is written: architecture, tensors, shapes, vocabulary.

Each check raises `BadInput` with one line that names the models and exactly what differs
(first differing field/tensor/token and how many more), so a user can tell a wrong path from a
genuinely incompatible pair. Pure functions over already-loaded metadata (no torch).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evalkit.errors import BadInput
from evalkit.merge.st_io import TensorInfo

# config.json keys that do not change what the weights mean: provenance, generation defaults,
# special-token ids (instruct models often add EOS ids), runtime switches.
IGNORED_CONFIG_KEYS = frozenset({
    "_name_or_path", "_commit_hash", "transformers_version", "torch_dtype", "dtype",
    "bos_token_id", "eos_token_id", "pad_token_id", "use_cache", "output_attentions",
    "output_hidden_states", "return_dict", "attn_implementation", "_attn_implementation",
    "_attn_implementation_autoset", "quantization_config", "name_or_path",
})
TIED_KEY = "tie_word_embeddings"
LM_HEAD = "lm_head.weight"


def _fmt(v: Any) -> str:
    s = json.dumps(v, sort_keys=True) if not isinstance(v, str) else v
    return s if len(s) <= 40 else s[:37] + "..."


def load_config(model_dir: Path, label: str) -> dict[str, Any]:
    """``config.json`` of a checkpoint, or a one-line error naming the role."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise BadInput(f"{label}: {model_dir} has no config.json; point --{label} at a Hugging "
                       "Face checkpoint directory")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise BadInput(f"{label}: {path} is not valid JSON; re-save the checkpoint") from None
    if not isinstance(cfg, dict):
        raise BadInput(f"{label}: {path} is not a JSON object; re-save the checkpoint")
    return cfg


def config_differences(configs: Mapping[str, dict[str, Any]]) -> list[str]:
    """Keys (outside `IGNORED_CONFIG_KEYS`) whose values differ between roles, described."""
    roles = list(configs)
    keys = sorted(set().union(*configs.values()) - IGNORED_CONFIG_KEYS)
    diffs = []
    for k in keys:
        vals = [configs[r].get(k, "<unset>") for r in roles]
        if any(v != vals[0] for v in vals[1:]):
            diffs.append(f"{k} (" + ", ".join(f"{r}={_fmt(v)}" for r, v in zip(roles, vals))
                         + ")")
    return diffs


def check_configs(configs: Mapping[str, dict[str, Any]], allow_diff: bool) -> list[str]:
    """Refuse different architectures; other config differences unless `allow_diff`.

    Returns the differences tolerated (recorded in ``evalkit_merge.json``).
    """
    roles = list(configs)
    for key in ("model_type", "architectures", TIED_KEY):
        vals = [configs[r].get(key) for r in roles]
        if any(v != vals[0] for v in vals[1:]):
            what = ", ".join(f"{r}={_fmt(v)}" for r, v in zip(roles, vals))
            raise BadInput(f"models differ in {key} ({what}); merging needs the same "
                           "architecture and head layout in every input")
    diffs = config_differences(configs)
    if diffs and not allow_diff:
        more = f" and {len(diffs) - 2} more" if len(diffs) > 2 else ""
        raise BadInput(f"model configs differ: {'; '.join(diffs[:2])}{more}; pass "
                       "--allow-config-diff to merge anyway (the output takes the config of "
                       "the tokenizer source)")
    return diffs


def is_tied(configs: Mapping[str, dict[str, Any]],
            tensors: Mapping[str, Mapping[str, TensorInfo]]) -> bool:
    """Tied input/output embeddings: from the config, else from lm_head's absence everywhere."""
    flag = next(iter(configs.values())).get(TIED_KEY)
    if flag is not None:
        return bool(flag)
    return all(LM_HEAD not in t for t in tensors.values())


def check_tensors(tensors: Mapping[str, Mapping[str, TensorInfo]], tied: bool) -> list[str]:
    """Same tensor names and shapes in every role; returns the names to merge (anchor order).

    With tied embeddings a stored ``lm_head.weight`` is a copy of the input embedding: it is
    dropped, so the shared matrix is merged (and stored) once and re-tied on load.
    """
    roles = list(tensors)
    names = {r: set(t) - ({LM_HEAD} if tied else set()) for r, t in tensors.items()}
    ref = roles[0]
    for r in roles[1:]:
        only_ref, only_r = sorted(names[ref] - names[r]), sorted(names[r] - names[ref])
        if only_ref or only_r:
            parts = []
            if only_ref:
                parts.append(f"{len(only_ref)} only in {ref} (e.g. {only_ref[0]})")
            if only_r:
                parts.append(f"{len(only_r)} only in {r} (e.g. {only_r[0]})")
            raise BadInput(f"tensor names differ between {ref} and {r}: {'; '.join(parts)}; "
                           "the inputs are not the same architecture")
    order = sorted(names[ref], key=lambda n: (tensors[ref][n].file.name, tensors[ref][n].start))
    bad = [n for n in order if any(tensors[r][n].shape != tensors[ref][n].shape
                                   for r in roles[1:])]
    if bad:
        n = bad[0]
        shapes = ", ".join(f"{r}={list(tensors[r][n].shape)}" for r in roles)
        more = f" ({len(bad) - 1} more tensors differ)" if len(bad) > 1 else ""
        raise BadInput(f"shape of {n} differs: {shapes}{more}; the inputs have different "
                       "sizes (resized vocabulary or another model size?)")
    return order


# --- tokenizers -----------------------------------------------------------------------------
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "merges.txt",
                    "spiece.model", "vocab.txt")


def tokenizer_vocab(model_dir: Path) -> tuple[dict[str, int], str] | None:
    """(token → id incl. added tokens, hash of merges/model bytes) or None if no tokenizer.

    Reads files only (no transformers import): ``tokenizer.json`` (fast tokenizers), else
    ``vocab.json``/``merges.txt``, else a SentencePiece model compared by bytes.
    """
    d = Path(model_dir)
    tj = d / "tokenizer.json"
    if tj.is_file():
        try:
            doc = json.loads(tj.read_text(encoding="utf-8"))
        except ValueError:
            raise BadInput(f"{tj} is not valid JSON; re-save the tokenizer") from None
        model = doc.get("model") or {}
        raw = model.get("vocab") or {}
        vocab = ({p[0]: i for i, p in enumerate(raw)} if isinstance(raw, list)
                 else dict(raw))
        for t in doc.get("added_tokens") or []:
            vocab[t["content"]] = t["id"]
        merges = model.get("merges") or []
        extra = hashlib.sha256(json.dumps(merges).encode()).hexdigest()
        return vocab, extra
    vj = d / "vocab.json"
    if vj.is_file():
        vocab = json.loads(vj.read_text(encoding="utf-8"))
        added = d / "added_tokens.json"
        if added.is_file():
            vocab.update(json.loads(added.read_text(encoding="utf-8")))
        m = d / "merges.txt"
        return vocab, hashlib.sha256(m.read_bytes()).hexdigest() if m.is_file() else ""
    for name in ("tokenizer.model", "spiece.model", "vocab.txt"):
        p = d / name
        if p.is_file():
            return {}, hashlib.sha256(p.read_bytes()).hexdigest()
    return None


def check_tokenizers(dirs: Mapping[str, Path]) -> None:
    """Every role has a tokenizer and all vocabularies (token → id) and merges are equal."""
    vocabs = {}
    for role, d in dirs.items():
        v = tokenizer_vocab(d)
        if v is None:
            raise BadInput(f"{role}: no tokenizer files in {d} (looked for "
                           f"{', '.join(_TOKENIZER_FILES)}); copy the tokenizer the model was "
                           "trained with into the directory")
        vocabs[role] = v
    roles = list(vocabs)
    ref_vocab, ref_extra = vocabs[roles[0]]
    for r in roles[1:]:
        vocab, extra = vocabs[r]
        if vocab != ref_vocab:
            diff = sorted(set(vocab.items()) ^ set(ref_vocab.items()), key=lambda kv: kv[1])
            tok = diff[0][0]
            raise BadInput(
                f"tokenizer vocabularies differ: {roles[0]} has {len(ref_vocab)} entries, {r} "
                f"has {len(vocab)}; first difference: token {tok!r} has id "
                f"{ref_vocab.get(tok)} in {roles[0]}, {vocab.get(tok)} in {r}; merged weights "
                "would mix token ids: use models that share one tokenizer")
        if extra != ref_extra:
            raise BadInput(f"tokenizers of {roles[0]} and {r} have the same vocabulary but "
                           "different merges/model files; use models that share one tokenizer")
