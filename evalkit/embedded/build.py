"""Building, shipping and finding the embedded default model.

:func:`ensure_default_model` returns the checkpoint evalkit evaluates as ``default``: the one
shipped inside the package (``evalkit/embedded/model/``, fp16 weights that load as fp32) when it
is intact and matches the current recipe, else a local build under
``<cache>/models/default-v<N>`` (built on first use, with progress on stderr).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evalkit.data import sha256_file
from evalkit.embedded import recipe as R
from evalkit.embedded.corpus import load_corpus, mirror
from evalkit.embedded.train import (
    BuildLog,
    Progress,
    encode_docs,
    model_config,
    sentence_nll,
    train,
    train_tokenizer,
    warmup_steps,
)
from evalkit.errors import DataNotFound
from evalkit.paths import atomic_dir, cache_lock
from evalkit.paths import cache_dir as _cache_root

SHIPPED_DIR = Path(__file__).resolve().parent / "model"
MANIFEST = "manifest.json"


class DefaultModelError(DataNotFound):
    """The embedded default model cannot be built (no data mirror, bad output dir)."""


def default_model_dir(cache_dir: Path | None = None) -> Path:
    """Where a local build of the current recipe lives: ``<cache>/models/default-v<N>``."""
    base = Path(cache_dir) if cache_dir is not None else _cache_root()
    return base / "models" / f"default-v{R.RECIPE_VERSION}"


def build_default_model(
    out_dir: Path | str, data_dir: Path | str | None = None, *, steps: int = R.DEFAULT_STEPS,
    seed: int = R.DEFAULT_SEED, threads: int = R.DEFAULT_THREADS, limit: int | None = None,
    vocab_size: int = R.VOCAB_SIZE, batch_size: int = R.BATCH_SIZE, seq_len: int = R.SEQ_LEN,
    lr: float = R.LEARNING_RATE, overwrite: bool = False, progress: Progress | None = None,
    log: BuildLog | None = None,
) -> dict[str, Any]:
    """Train the default model and save it to ``out_dir`` atomically; returns ``build_info``.

    The checkpoint is written to a temporary sibling directory and renamed into place only when
    complete, so an interrupted build never leaves a partial ``out_dir``. ``limit`` (cap per data
    source) and small ``steps``/``vocab_size`` are for tests; the defaults are the recipe.
    ``log`` prints stages and training steps (loss, tokens/s, ETA) for people watching.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise DefaultModelError(f"{out_dir} already exists; pass overwrite=True (--force) or "
                                "another output dir")
    data = mirror(data_dir)
    with atomic_dir(out_dir) as tmp:
        info = _build_into(tmp, data, steps=steps, seed=seed, threads=threads, limit=limit,
                           vocab_size=vocab_size, batch_size=batch_size, seq_len=seq_len, lr=lr,
                           progress=progress or (lambda stage, done, total: None), log=log)
    return info


def _build_into(out: Path, data: Path, *, steps: int, seed: int, threads: int,
                limit: int | None, vocab_size: int, batch_size: int, seq_len: int, lr: float,
                progress: Progress, log: BuildLog | None) -> dict[str, Any]:
    t0 = time.perf_counter()
    say = log.stage if log else (lambda text: None)
    say(f"reading the training text from {data}")
    progress("data", 0, 1)
    corpus = load_corpus(data, seed=seed, limit=limit)
    progress("data", 1, 1)

    import tokenizers
    import torch
    import transformers
    from transformers import GenerationConfig, LlamaForCausalLM

    prev_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        say(f"training the tokenizer on {len(corpus.docs) + len(corpus.chat_docs):,} documents")
        progress("tokenizer", 0, 1)
        train_texts = [t for _, t in corpus.docs] + [f"{u} {a}" for u, a in corpus.chat_docs]
        tokenizer = train_tokenizer(train_texts, vocab_size=vocab_size)
        docs, per_source = encode_docs(tokenizer, corpus)
        progress("tokenizer", 1, 1)
        t_data = time.perf_counter() - t0

        torch.manual_seed(seed)
        model = LlamaForCausalLM(model_config(tokenizer)).float()
        say(f"training {sum(p.numel() for p in model.parameters()):,} parameters for {steps} "
            f"steps of {batch_size}×{seq_len} tokens on {threads} threads")
        t_train = time.perf_counter()
        losses = train(model, docs, steps=steps, seq_len=seq_len, batch_size=batch_size, lr=lr,
                       seed=seed, progress=progress, log=log)
        train_s = time.perf_counter() - t_train
        tokens_seen = steps * batch_size * seq_len

        say("measuring held-out perplexity (UD Bokmål dev/test)")
        progress("eval", 0, 2)
        vn, vc = sentence_nll(model, tokenizer, corpus.val_texts)
        progress("eval", 1, 2)
        tn, tc = sentence_nll(model, tokenizer, corpus.test_texts)
        progress("eval", 2, 2)

        progress("save", 0, 1)
        model.generation_config = GenerationConfig(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=[tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(R.IM_END)],
            pad_token_id=tokenizer.pad_token_id, do_sample=False)
        with _no_hf_progress_bars():
            model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        tail = losses[-min(20, len(losses)):] or [float("nan")]
        n_corpus = sum(len(d) for d in docs)
        is_recipe = (steps, seed, threads, limit, vocab_size, batch_size, seq_len, lr) == (
            R.DEFAULT_STEPS, R.DEFAULT_SEED, R.DEFAULT_THREADS, None, R.VOCAB_SIZE,
            R.BATCH_SIZE, R.SEQ_LEN, R.LEARNING_RATE)
        info: dict[str, Any] = {
            "alias": R.DEFAULT_MODEL_ALIAS,
            "recipe_version": R.RECIPE_VERSION,
            "recipe_fingerprint": R.fingerprint(),
            "recipe_exact": is_recipe,
            "recipe": R.recipe(),
            "architecture": {
                "class": "LlamaForCausalLM", "hidden": R.HIDDEN, "layers": R.LAYERS,
                "heads": R.HEADS, "head_dim": R.HIDDEN // R.HEADS,
                "intermediate": R.INTERMEDIATE, "max_positions": R.MAX_POSITIONS,
                "tied_embeddings": True, "dtype": "float32", "vocab_size": len(tokenizer),
                "parameters": sum(p.numel() for p in model.parameters()),
            },
            "training": {
                "steps": steps, "seed": seed, "threads": threads, "batch_size": batch_size,
                "seq_len": seq_len, "lr": lr, "min_lr_ratio": R.MIN_LR_RATIO,
                "warmup_steps": warmup_steps(steps), "weight_decay": R.WEIGHT_DECAY,
                "grad_clip": R.GRAD_CLIP, "limit": limit, "tokens_seen": tokens_seen,
                "corpus_tokens": n_corpus, "corpus_tokens_by_source": per_source,
                "epochs": tokens_seen / max(1, n_corpus),
                "tokens_per_s": tokens_seen / train_s if train_s > 0 else None,
                "loss_first": losses[0] if losses else None,
            },
            "corpus": corpus.stats,
            "corpus_digest": corpus.digest(),
            "final_train_loss": sum(tail) / len(tail),
            "val": _ppl("UD_Norwegian-Bokmaal dev (# text)", len(corpus.val_texts), vn, vc),
            "test": _ppl("UD_Norwegian-Bokmaal test (# text)", len(corpus.test_texts), tn, tc),
            "wall_s": {"data_and_tokenizer": t_data, "train": train_s,
                       "total": time.perf_counter() - t0},
            "data_dir": str(data),
            "data_files": corpus.files,
            "chat_template": "chatml",
            "versions": {"evalkit": _evalkit_version(), "python": platform.python_version(),
                         "torch": torch.__version__, "transformers": transformers.__version__,
                         "tokenizers": tokenizers.__version__},
            "machine": {"platform": platform.platform(), "processor": platform.processor(),
                        "cpu_count": os.cpu_count(),
                        "load_average_at_end": list(os.getloadavg())},
        }
        (out / "build_info.json").write_text(json.dumps(info, indent=2, ensure_ascii=False)
                                             + "\n")
        say(f"done in {info['wall_s']['total']:.0f} s: held-out perplexity "
            f"{info['test']['ppl']:.1f} (UD Bokmål test)")
        progress("save", 1, 1)
        return info
    finally:
        torch.set_num_threads(prev_threads)


@contextlib.contextmanager
def _no_hf_progress_bars() -> Iterator[None]:
    """transformers' own bars (shard writing) would interleave with the build log."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def _ppl(name: str, sentences: int, nll: float, tokens: int) -> dict[str, Any]:
    loss = nll / max(1, tokens)
    return {"set": name, "sentences": sentences, "tokens": tokens, "loss": loss,
            "ppl": math.exp(loss)}


def _evalkit_version() -> str:
    from evalkit import __version__

    return __version__


# --- the shipped checkpoint --------------------------------------------------------------------
def shipped_problem(path: Path = SHIPPED_DIR) -> str | None:
    """Why the checkpoint at `path` cannot serve as ``default`` (None when it can): a missing
    manifest, a recipe it was not built with, or a file whose sha256 differs from the record."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return f"no readable {MANIFEST} in {path}"
    if manifest.get("recipe_fingerprint") != R.fingerprint():
        return "it was built with another recipe"
    for name, sha in manifest.get("files", {}).items():
        if not (path / name).is_file():
            return f"{name} is missing"
        if sha256_file(path / name) != sha:
            return f"{name} differs from the recorded sha256"
    return None


# --- local builds -------------------------------------------------------------------------------
def _is_built(path: Path) -> bool:
    try:
        info = json.loads((path / "build_info.json").read_text())
    except (OSError, ValueError):
        return False
    return (path / "config.json").is_file() and info.get("recipe_fingerprint") == R.fingerprint()


def ensure_default_model(
    data_dir: Path | str | None = None, *, cache_dir: Path | None = None, rebuild: bool = False,
    shipped: bool = True, progress: Progress | None = None, log: BuildLog | None = None,
    quiet: bool = False, **build_kwargs: Any,
) -> Path:
    """The ``default`` checkpoint: the shipped one if usable, else a local build (cached).

    ``data_dir`` is the mirror a local build reads (the run's ``--data-dir``). A build prints
    its progress on stderr (``log``; ``quiet`` silences it) and calls ``progress(stage, done,
    total)``. ``build_kwargs`` go to :func:`build_default_model` (tests pass small ``steps`` and
    ``limit``; such a build is still cached as ``default-v<N>``, so tests use their own
    ``cache_dir``) and rule out the shipped checkpoint, as do ``rebuild`` and ``shipped=False``.
    """
    use_shipped = shipped and not rebuild and not build_kwargs
    why = shipped_problem() if use_shipped else None
    if use_shipped and why is None:
        return SHIPPED_DIR
    final = default_model_dir(cache_dir)
    if _is_built(final) and not rebuild:
        return final
    if log is None and not quiet:
        log = BuildLog()
    with cache_lock(final):
        if _is_built(final) and not rebuild:  # built by another process meanwhile
            return final
        if log and why:
            log.stage(f"the shipped default model cannot be used ({why}); building it into "
                      f"{final} (once)")
        elif log:
            log.stage(f"building the default model into {final} (once)")
        build_default_model(final, data_dir, overwrite=True, progress=progress, log=log,
                            **build_kwargs)
    return final
