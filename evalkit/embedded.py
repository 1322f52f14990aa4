"""The embedded default model: a tiny Llama that evalkit builds offline from the data mirror.

``evalkit run default ...`` needs something real to evaluate on a machine without hub access.
:func:`ensure_default_model` returns a saved Hugging Face checkpoint directory (``config.json``,
``model.safetensors``, ``generation_config.json``, tokenizer files with a chat template,
``build_info.json``), building it on first use under ``$EVALKIT_CACHE/models/default-v<N>``
(``EVALKIT_CACHE`` defaults to ``~/.cache/evalkit``).

Recipe (``RECIPE_VERSION``; bump it whenever anything below changes so caches rebuild):

* **Tokenizer**: byte-level BPE (``tokenizers``), ``VOCAB_SIZE`` entries, trained on the training
  text only. Specials ``<s>`` (BOS, prepended by the tokenizer), ``</s>`` (EOS), ``<pad>``,
  ``<unk>``, ``<|im_start|>``, ``<|im_end|>``. Chat template: ChatML after a BOS,
  ``<s><|im_start|>user\\n...<|im_end|>\\n<|im_start|>assistant\\n``; generation stops at ``</s>``
  or ``<|im_end|>`` (``generation_config.json``). Text rendered by the chat template already holds
  the BOS: tokenize it with ``add_special_tokens=False``.
* **Model**: ``LlamaForCausalLM``, hidden 256, 4 layers, 4 heads (head_dim 64, so vLLM's CPU
  backend loads it), intermediate 768, tied embeddings, 512 positions, fp32 (~3.4M parameters
  besides the embedding).
* **Data** (all from the mirror, see :func:`load_corpus`):
  - Bokmål: NDT sentences (CoNLL-X FORM column, detokenised) **minus** every sentence of UD
    Bokmål dev/test, ``nob_sentences/`` and the gullkorpus (compared with all whitespace removed),
    which stay held out for evaluation;
  - translation pairs in evalkit's FLORES prompt format (lm-eval style,
    ``"English sentence: {src}\\nNorwegian Bokmål sentence: {tgt}"``) from FLORES-200 **dev** only
    (eng↔nob, eng↔eus, both directions) and Tatoeba eng–nob (one direction per pair, drawn with
    the seed); 1 in ``CHAT_SHARE`` pairs is rendered through the chat template instead;
  - Basque: UD Basque-BDT **train** (v1.4, detokenised from FORM; the file has no ``# text``
    lines) minus any sentence of UD Basque dev/test.
  FLORES devtest and NTREX are never read.
* **Training**: packed ``<s> text </s>`` documents in blocks of ``SEQ_LEN`` tokens, a fixed
  number of AdamW steps (warm-up, cosine decay), fixed seed, 2 torch threads: deterministic for a
  given machine and library versions. Validation loss on UD Bokmål dev, perplexity on UD Bokmål
  test (per sentence, ``<s> text </s>``, every token after the BOS scored).

Heavy libraries (torch, transformers, tokenizers) are imported inside functions only, so
``import evalkit.embedded`` stays cheap.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import math
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.data import sha256_file

try:  # the core's user-facing error type
    from evalkit.errors import DataNotFound as _DataNotFound
    from evalkit.errors import EvalkitError
except ImportError:  # pragma: no cover - only before the core landed

    class EvalkitError(Exception):  # type: ignore[no-redef]
        """Stand-in for evalkit.errors.EvalkitError."""

    _DataNotFound = EvalkitError  # type: ignore[misc,assignment]


__all__ = [
    "DEFAULT_MODEL_ALIAS",
    "RECIPE_VERSION",
    "DefaultModelError",
    "build_default_model",
    "default_cache_dir",
    "default_model_dir",
    "ensure_default_model",
    "flores_prompt",
    "load_corpus",
    "resolve_data_dir",
]

DEFAULT_MODEL_ALIAS = "default"
RECIPE_VERSION = 1

# --- recipe constants (changing any of them means bumping RECIPE_VERSION) -------------------
VOCAB_SIZE = 4096
HIDDEN = 256
LAYERS = 4
HEADS = 4
INTERMEDIATE = 768
MAX_POSITIONS = 512
SEQ_LEN = 256
BATCH_SIZE = 8
LEARNING_RATE = 1.5e-3
MIN_LR_RATIO = 0.1
WARMUP_STEPS = 30
WEIGHT_DECAY = 0.1
GRAD_CLIP = 1.0
DEFAULT_STEPS = 800
DEFAULT_SEED = 1234
DEFAULT_THREADS = 2
CHAT_SHARE = 8  # one translation pair in CHAT_SHARE is rendered with the chat template

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [BOS, EOS, PAD, UNK, IM_START, IM_END]
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

LANG_NAMES = {"eng_Latn": "English", "nob_Latn": "Norwegian Bokmål", "eus_Latn": "Basque"}

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``; stages: data, tokenizer, train, eval, save."""


class DefaultModelError(_DataNotFound):  # type: ignore[misc,valid-type]
    """The embedded default model cannot be built (no data mirror, bad output dir)."""


def flores_prompt(src_lang: str, tgt_lang: str, src: str, tgt: str | None = None) -> str:
    """evalkit's FLORES prompt (lm-eval style); with ``tgt`` the full training text."""
    text = f"{LANG_NAMES[src_lang]} sentence: {src}\n{LANG_NAMES[tgt_lang]} sentence:"
    return text if tgt is None else f"{text} {tgt}"


# --- locations --------------------------------------------------------------------------------
_REPO_ROOT = Path(__file__).resolve().parent.parent


def default_cache_dir() -> Path:
    """``$EVALKIT_CACHE`` or ``~/.cache/evalkit``."""
    env = os.environ.get("EVALKIT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "evalkit"


def default_model_dir(cache_dir: Path | None = None) -> Path:
    """Where the current recipe's checkpoint lives: ``<cache>/models/default-v<N>``."""
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return base / "models" / f"default-v{RECIPE_VERSION}"


_REQUIRED_DATA = ("ndt_nob", "UD_Norwegian-Bokmaal", "flores200/dev")


def resolve_data_dir(data_dir: Path | str | None = None) -> Path:
    """The data mirror: argument, else ``$EVALKIT_DATA_DIR``, else ``../shared/data``.

    ``../shared/data`` is looked up from the working directory and from the repository root.
    Raises :class:`DefaultModelError` (an ``EvalkitError``) when nothing usable is found.
    """
    tried: list[Path] = []
    if data_dir is not None:
        cands = [Path(data_dir).expanduser()]
    elif os.environ.get("EVALKIT_DATA_DIR"):
        cands = [Path(os.environ["EVALKIT_DATA_DIR"]).expanduser()]
    else:
        cands = [
            base / rel
            for base in (Path.cwd(), _REPO_ROOT)
            for rel in ("../shared/data", "shared/data")
        ]
    for cand in cands:
        tried.append(cand)
        if all((cand / sub).is_dir() for sub in _REQUIRED_DATA):
            return cand.resolve()
    raise DefaultModelError(
        "cannot build the embedded default model: no data mirror with "
        f"{', '.join(_REQUIRED_DATA)} found (tried {', '.join(str(p) for p in tried)}); "
        "pass --data-dir or set EVALKIT_DATA_DIR to the mirror (layout of ../shared/data)"
    )


# --- corpus -----------------------------------------------------------------------------------
_NO_SPACE_BEFORE = {",", ".", ":", ";", "!", "?", ")", "]", "}", "»", "%", "...", "…"}
_NO_SPACE_AFTER = {"(", "[", "{", "«"}


def detokenize(forms: list[str]) -> str:
    """Join treebank tokens into running text (quotes paired, punctuation attached)."""
    out: list[str] = []
    glue_next = True  # no space before the first token
    open_quote = False
    for tok in forms:
        if tok == "|":  # NDT headline marker, never part of the text
            continue
        space = not glue_next
        glue_next = False
        if tok in _NO_SPACE_BEFORE:
            space = False
        elif tok == "/":
            space, glue_next = False, True
        elif tok in _NO_SPACE_AFTER:
            glue_next = True
        elif tok == '"':
            if open_quote:
                space = False
            else:
                glue_next = True
            open_quote = not open_quote
        if space and out:
            out.append(" ")
        out.append(tok)
    return "".join(out).strip()


def _squash(text: str) -> str:
    """Comparison key: all whitespace removed."""
    return "".join(text.split())


def _read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        return [line.rstrip("\n") for line in fh]


def _conll_sentences(lines: list[str]) -> Iterator[list[str]]:
    """FORM columns of CoNLL-X/CoNLL-U sentences (multiword-token ranges and empty nodes skipped)."""
    forms: list[str] = []
    for line in lines:
        if not line.strip():
            if forms:
                yield forms
            forms = []
            continue
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) < 2 or "-" in cols[0] or "." in cols[0]:
            continue
        forms.append(cols[1])
    if forms:
        yield forms


def _conllu_texts(path: Path) -> list[str]:
    return [ln[len("# text = ") :].strip() for ln in _read_lines(path) if ln.startswith("# text = ")]


@dataclass
class Corpus:
    """Training documents and held-out evaluation text."""

    docs: list[tuple[str, str]] = field(default_factory=list)  # (source, text)
    chat_docs: list[tuple[str, str]] = field(default_factory=list)  # (user, assistant)
    val_texts: list[str] = field(default_factory=list)  # UD Bokmål dev (validation loss)
    test_texts: list[str] = field(default_factory=list)  # UD Bokmål test (reported perplexity)
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    stats: dict[str, Any] = field(default_factory=dict)


def load_corpus(data_dir: Path, *, seed: int = DEFAULT_SEED, limit: int | None = None) -> Corpus:
    """Read the training mix and the held-out sets from the mirror.

    ``limit`` caps every source (sentences or pairs per file group) — for tests.
    """
    data_dir = Path(data_dir)
    rng = random.Random(seed)
    c = Corpus()

    def use(path: Path) -> Path:
        if not path.exists():
            raise DefaultModelError(f"data mirror {data_dir} lacks {path.relative_to(data_dir)}")
        c.files[str(path.relative_to(data_dir))] = sha256_file(path)
        return path

    def cap(items: list) -> list:
        return items if limit is None else items[:limit]

    # held-out Bokmål: UD dev/test text lines, nob_sentences, gullkorpus
    ud = data_dir / "UD_Norwegian-Bokmaal"
    ud_dev = _conllu_texts(use(ud / "no_bokmaal-ud-dev.conllu"))
    ud_test = _conllu_texts(use(ud / "no_bokmaal-ud-test.conllu"))
    held = {_squash(t) for t in ud_dev + ud_test}
    gull = ud / "gullkorpus2023_ud.conllu"
    if gull.exists():
        held |= {_squash(t) for t in _conllu_texts(use(gull))}
    sent_dir = data_dir / "nob_sentences"
    if sent_dir.is_dir():
        for p in sorted(sent_dir.glob("*.txt")):
            held |= {_squash(t) for t in _read_lines(use(p)) if t.strip()}
    c.val_texts = cap(ud_dev)
    c.test_texts = cap(ud_test)

    # Bokmål monolingual: NDT minus held-out
    nob: list[str] = []
    dropped = 0
    ndt_files = sorted((data_dir / "ndt_nob").glob("*.conll.gz"))
    if not ndt_files:
        raise DefaultModelError(f"data mirror {data_dir} has no ndt_nob/*.conll.gz")
    for p in ndt_files:
        for forms in _conll_sentences(_read_lines(use(p))):
            if _squash("".join(f for f in forms if f != "|")) in held:
                dropped += 1
                continue
            text = detokenize(forms)
            if text:
                nob.append(text)
    nob = cap(nob)
    c.docs += [("ndt_nob", t) for t in nob]
    c.stats["ndt_sentences"] = len(nob)
    c.stats["ndt_dropped_heldout"] = dropped

    # Basque monolingual: UD Basque-BDT train (v1.4) minus UD Basque dev/test
    eus_train = data_dir / "ud" / "UD_Basque-BDT" / "eu-ud-train.v1.4.conllu"
    eus: list[str] = []
    if eus_train.exists():
        eus_held: set[str] = set()
        for p in sorted((data_dir / "UD_Basque-BDT").glob("*.conllu")):
            eus_held |= {_squash(t) for t in _conllu_texts(use(p))}
        for forms in _conll_sentences(_read_lines(use(eus_train))):
            if _squash("".join(forms)) in eus_held:
                continue
            eus.append(detokenize(forms))
    eus = cap(eus)
    c.docs += [("ud_eus_train", t) for t in eus]
    c.stats["eus_sentences"] = len(eus)

    # translation pairs: FLORES-200 dev (never devtest), Tatoeba eng-nob
    pairs: list[tuple[str, str, str, str, str]] = []  # source, src_lang, tgt_lang, src, tgt
    flores = {
        code: cap(_read_lines(use(data_dir / "flores200" / "dev" / f"{code}.dev.gz")))
        for code in ("eng_Latn", "nob_Latn", "eus_Latn")
    }
    for other in ("nob_Latn", "eus_Latn"):
        for a, b in zip(flores["eng_Latn"], flores[other]):
            if a.strip() and b.strip():
                pairs.append(("flores_dev", "eng_Latn", other, a, b))
                pairs.append(("flores_dev", other, "eng_Latn", b, a))
    tat = data_dir / "tatoeba_eng-nob"
    tat_eng = sorted(tat.glob("*.eng-nob.eng"))
    tat_nob = sorted(tat.glob("*.eng-nob.nob"))
    if tat_eng and tat_nob:
        te = cap(_read_lines(use(tat_eng[0])))
        tn = cap(_read_lines(use(tat_nob[0])))
        for a, b in zip(te, tn):
            if a.strip() and b.strip():
                if rng.random() < 0.5:
                    pairs.append(("tatoeba", "eng_Latn", "nob_Latn", a, b))
                else:
                    pairs.append(("tatoeba", "nob_Latn", "eng_Latn", b, a))
    n_chat = 0
    for i, (source, sl, tl, s, t) in enumerate(pairs):
        if i % CHAT_SHARE == CHAT_SHARE - 1:
            c.chat_docs.append((flores_prompt(sl, tl, s), t))
            n_chat += 1
        else:
            c.docs.append((source, flores_prompt(sl, tl, s, t)))
    c.stats["translation_pairs"] = len(pairs)
    c.stats["translation_pairs_chat"] = n_chat
    c.stats["val_sentences"] = len(c.val_texts)
    c.stats["test_sentences"] = len(c.test_texts)
    return c


# --- tokenizer --------------------------------------------------------------------------------
def train_tokenizer(texts: list[str], vocab_size: int = VOCAB_SIZE):
    """A byte-level BPE wrapped as a ``PreTrainedTokenizerFast`` with the chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        additional_special_tokens=[IM_START, IM_END],
        clean_up_tokenization_spaces=False,
        model_max_length=MAX_POSITIONS,
        chat_template=CHAT_TEMPLATE,
    )


def _encode_docs(tokenizer, corpus: Corpus) -> tuple[list[list[int]], dict[str, int]]:
    """Token ids per document: ``<s> text </s>``; chat docs via the chat template + ``</s>``."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    fast = tokenizer.backend_tokenizer  # no max-length warnings for long training documents
    texts = [t for _, t in corpus.docs]
    enc = [e.ids for e in fast.encode_batch(texts, add_special_tokens=False)]
    docs = [[bos, *ids, eos] for ids in enc]
    per_source: dict[str, int] = {}
    for (src, _), ids in zip(corpus.docs, docs):
        per_source[src] = per_source.get(src, 0) + len(ids)
    chats = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": u}, {"role": "assistant", "content": a}], tokenize=False
        )
        for u, a in corpus.chat_docs
    ]
    if chats:
        cenc = [e.ids for e in fast.encode_batch(chats, add_special_tokens=False)]
        cdocs = [[*ids, eos] for ids in cenc]
        per_source["chat"] = sum(len(d) for d in cdocs)
        docs += cdocs
    return docs, per_source


# --- training ---------------------------------------------------------------------------------
def _model_config(tokenizer):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN,
        intermediate_size=INTERMEDIATE,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=HEADS,
        head_dim=HIDDEN // HEADS,
        max_position_embeddings=MAX_POSITIONS,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        torch_dtype="float32",
    )


def _batches(docs: list[list[int]], seq_len: int, batch: int, seed: int) -> Iterator[list[list[int]]]:
    """Endless batches of packed blocks; documents reshuffled (seeded) every epoch."""
    rng = random.Random(seed)
    block = seq_len
    while True:
        order = list(range(len(docs)))
        rng.shuffle(order)
        stream = [t for i in order for t in docs[i]]
        blocks = [stream[i : i + block] for i in range(0, len(stream) - block + 1, block)]
        rng.shuffle(blocks)
        for i in range(0, len(blocks) - batch + 1, batch):
            yield blocks[i : i + batch]
        if len(blocks) < batch:  # tiny corpora (tests): pad the batch by repetition
            if not blocks:
                raise DefaultModelError("training corpus is smaller than one block")
            yield [blocks[j % len(blocks)] for j in range(batch)]


def _lr_at(step: int, steps: int, base: float) -> float:
    warm = min(WARMUP_STEPS, max(1, steps // 10))
    if step < warm:
        return base * (step + 1) / warm
    prog = (step - warm) / max(1, steps - warm)
    return base * (MIN_LR_RATIO + (1 - MIN_LR_RATIO) * 0.5 * (1 + math.cos(math.pi * prog)))


def sentence_nll(model, tokenizer, texts: list[str], batch_size: int = 32) -> tuple[float, int]:
    """Summed NLL (nats) and token count of ``<s> text </s>`` over texts (tokens after BOS)."""
    import torch

    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    enc = tokenizer(texts, add_special_tokens=False)["input_ids"]
    seqs = sorted(([bos, *ids, eos][:MAX_POSITIONS] for ids in enc), key=len)
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for i in range(0, len(seqs), batch_size):
            chunk = seqs[i : i + batch_size]
            width = max(len(s) for s in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for j, s in enumerate(chunk):
                ids[j, : len(s)] = torch.tensor(s)
                mask[j, : len(s)] = 1
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
            tgt = ids[:, 1:]
            lp = torch.log_softmax(logits.float(), dim=-1).gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
            m = mask[:, 1:].bool()
            total -= float(lp[m].sum())
            count += int(m.sum())
    model.train()
    return total, count


def build_default_model(
    out_dir: Path | str,
    data_dir: Path | str | None = None,
    *,
    steps: int = DEFAULT_STEPS,
    seed: int = DEFAULT_SEED,
    threads: int = DEFAULT_THREADS,
    limit: int | None = None,
    vocab_size: int = VOCAB_SIZE,
    batch_size: int = BATCH_SIZE,
    seq_len: int = SEQ_LEN,
    lr: float = LEARNING_RATE,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train the default model and save it to ``out_dir`` atomically; returns ``build_info``.

    The checkpoint is written to a temporary sibling directory and renamed into place only when
    complete, so an interrupted build never leaves a partial ``out_dir``. ``limit`` (cap per data
    source) and small ``steps``/``vocab_size`` are for tests; the defaults are the recipe.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise DefaultModelError(f"{out_dir} already exists (use overwrite=True / --force)")
    data = resolve_data_dir(data_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        info = _build_into(
            tmp, data, steps=steps, seed=seed, threads=threads, limit=limit,
            vocab_size=vocab_size, batch_size=batch_size, seq_len=seq_len, lr=lr,
            progress=progress,
        )
        if out_dir.exists() and overwrite:
            shutil.rmtree(out_dir)
        os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info


def _build_into(
    out: Path, data: Path, *, steps: int, seed: int, threads: int, limit: int | None,
    vocab_size: int, batch_size: int, seq_len: int, lr: float, progress: Progress | None,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    report = progress or (lambda stage, done, total: None)

    report("data", 0, 1)
    corpus = load_corpus(data, seed=seed, limit=limit)
    report("data", 1, 1)

    import torch
    import tokenizers
    import transformers
    from transformers import GenerationConfig, LlamaForCausalLM

    prev_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        report("tokenizer", 0, 1)
        train_texts = [t for _, t in corpus.docs] + [f"{u} {a}" for u, a in corpus.chat_docs]
        tokenizer = train_tokenizer(train_texts, vocab_size=vocab_size)
        docs, per_source = _encode_docs(tokenizer, corpus)
        report("tokenizer", 1, 1)
        t_data = time.perf_counter() - t0

        torch.manual_seed(seed)
        model = LlamaForCausalLM(_model_config(tokenizer)).float()
        model.train()
        decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}],
            lr=lr, betas=(0.9, 0.95), eps=1e-8,
        )
        batches = _batches(docs, seq_len, batch_size, seed)
        t_train = time.perf_counter()
        tokens_seen = 0
        loss_hist: list[float] = []
        for step in range(steps):
            for g in opt.param_groups:
                g["lr"] = _lr_at(step, steps, lr)
            x = torch.tensor(next(batches), dtype=torch.long)
            loss = model(input_ids=x, labels=x).loss  # the model shifts labels itself
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
            opt.step()
            tokens_seen += x.numel()
            loss_hist.append(loss.item())
            report("train", step + 1, steps)
        train_s = time.perf_counter() - t_train

        report("eval", 0, 2)
        vn, vc = sentence_nll(model, tokenizer, corpus.val_texts)
        report("eval", 1, 2)
        tn, tc = sentence_nll(model, tokenizer, corpus.test_texts)
        report("eval", 2, 2)

        report("save", 0, 1)
        model.generation_config = GenerationConfig(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=[tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(IM_END)],
            pad_token_id=tokenizer.pad_token_id,
            do_sample=False,
        )
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        tail = loss_hist[-min(20, len(loss_hist)) :] or [float("nan")]
        n_params = sum(p.numel() for p in model.parameters())
        info: dict[str, Any] = {
            "alias": DEFAULT_MODEL_ALIAS,
            "recipe_version": RECIPE_VERSION,
            "architecture": {
                "class": "LlamaForCausalLM", "hidden": HIDDEN, "layers": LAYERS, "heads": HEADS,
                "head_dim": HIDDEN // HEADS, "intermediate": INTERMEDIATE,
                "max_positions": MAX_POSITIONS, "tied_embeddings": True, "dtype": "float32",
                "vocab_size": len(tokenizer), "parameters": n_params,
            },
            "training": {
                "steps": steps, "seed": seed, "threads": threads, "batch_size": batch_size,
                "seq_len": seq_len, "lr": lr, "min_lr_ratio": MIN_LR_RATIO,
                "warmup_steps": min(WARMUP_STEPS, max(1, steps // 10)),
                "weight_decay": WEIGHT_DECAY, "grad_clip": GRAD_CLIP, "limit": limit,
                "tokens_seen": tokens_seen,
                "corpus_tokens": sum(len(d) for d in docs),
                "corpus_tokens_by_source": per_source,
                "epochs": tokens_seen / max(1, sum(len(d) for d in docs)),
                "tokens_per_s": tokens_seen / train_s if train_s > 0 else None,
            },
            "corpus": corpus.stats,
            "final_train_loss": sum(tail) / len(tail),
            "val": {"set": "UD_Norwegian-Bokmaal dev (# text)", "sentences": len(corpus.val_texts),
                    "tokens": vc, "loss": vn / max(1, vc), "ppl": math.exp(vn / max(1, vc))},
            "test": {"set": "UD_Norwegian-Bokmaal test (# text)", "sentences": len(corpus.test_texts),
                     "tokens": tc, "loss": tn / max(1, tc), "ppl": math.exp(tn / max(1, tc))},
            "wall_s": {"data_and_tokenizer": t_data, "train": train_s,
                       "total": time.perf_counter() - t0},
            "data_dir": str(data),
            "data_files": corpus.files,
            "chat_template": "chatml",
            "versions": {
                "evalkit": _evalkit_version(), "python": platform.python_version(),
                "torch": torch.__version__, "transformers": transformers.__version__,
                "tokenizers": tokenizers.__version__,
            },
            "machine": {"platform": platform.platform(), "processor": platform.processor(),
                        "cpu_count": os.cpu_count()},
        }
        (out / "build_info.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
        report("save", 1, 1)
        return info
    finally:
        torch.set_num_threads(prev_threads)


def _evalkit_version() -> str:
    try:
        from evalkit import __version__

        return __version__
    except Exception:  # pragma: no cover
        return "unknown"


def _is_complete(path: Path) -> bool:
    return (path / "build_info.json").is_file() and (path / "config.json").is_file()


@contextlib.contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock so concurrent first uses build once (no-op without fcntl)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_default_model(
    cache_dir: Path | None = None,
    data_dir: Path | None = None,
    *,
    rebuild: bool = False,
    progress: Progress | None = None,
    **build_kwargs: Any,
) -> Path:
    """Path of the embedded default checkpoint, building it first if it is not cached.

    ``progress(stage, done, total)`` is called during a build (stages: data, tokenizer, train,
    eval, save). ``build_kwargs`` go to :func:`build_default_model` (tests pass small ``steps``
    and ``limit``; a cache built that way is still named ``default-v<N>``, so tests must use their
    own ``cache_dir``).
    """
    final = default_model_dir(cache_dir)
    if _is_complete(final) and not rebuild:
        return final
    with _build_lock(final.parent / f".{final.name}.lock"):
        if _is_complete(final) and not rebuild:  # built by another process meanwhile
            return final
        build_default_model(
            final, data_dir, overwrite=True, progress=progress, **build_kwargs
        )
    return final


# --- manual builds ----------------------------------------------------------------------------
def _cli_progress() -> Progress:
    last = {"t": 0.0}

    def report(stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if stage != "train" or done == total or now - last["t"] > 5:
            last["t"] = now
            print(f"[embedded] {stage} {done}/{total}", file=sys.stderr, flush=True)

    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m evalkit.embedded", description="Build evalkit's embedded default model."
    )
    ap.add_argument("--out", type=Path, default=None,
                    help="output dir (default: the cache dir, $EVALKIT_CACHE/models/default-vN)")
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--threads", type=int, default=DEFAULT_THREADS)
    ap.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    ap.add_argument("--lr", type=float, default=LEARNING_RATE)
    ap.add_argument("--limit", type=int, default=None, help="cap per data source (testing)")
    ap.add_argument("--force", action="store_true", help="replace an existing output dir")
    args = ap.parse_args(argv)
    # On a shared, oversubscribed CPU, spinning OpenMP workers make 2 threads 4-5x slower than
    # passive ones (measured at load ~15). Only effective before torch is first imported.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    out = args.out or default_model_dir()
    try:
        info = build_default_model(
            out, args.data_dir, steps=args.steps, seed=args.seed, threads=args.threads,
            limit=args.limit, batch_size=args.batch_size, lr=args.lr, overwrite=args.force,
            progress=_cli_progress(),
        )
    except EvalkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: info[k] for k in ("val", "test", "wall_s", "final_train_loss")},
                     indent=2, ensure_ascii=False))
    print(f"saved to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
