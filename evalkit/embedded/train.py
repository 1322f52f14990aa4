"""Tokenizer and model training for the embedded default model (torch/transformers/tokenizers
are imported inside the functions only).

Training: packed ``<s> text </s>`` documents in blocks of ``SEQ_LEN`` tokens, a fixed number of
AdamW steps (warm-up, cosine decay), fixed seed, 2 torch threads: deterministic for a given
machine and library versions.
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from evalkit.embedded.corpus import Corpus
from evalkit.embedded.recipe import (
    BOS,
    CHAT_TEMPLATE,
    EOS,
    GRAD_CLIP,
    HEADS,
    HIDDEN,
    IM_END,
    IM_START,
    INTERMEDIATE,
    LAYERS,
    MAX_POSITIONS,
    MIN_LR_RATIO,
    PAD,
    SPECIAL_TOKENS,
    UNK,
    VOCAB_SIZE,
    WARMUP_STEPS,
    WEIGHT_DECAY,
)
from evalkit.errors import DataNotFound

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``; stages: data, tokenizer, train, eval, save."""


class BuildLog:
    """Human-readable build progress on a stream: stage lines, and training steps with loss,
    speed and ETA at most every ``every`` seconds (and at the last step)."""

    def __init__(self, stream: TextIO | None = None, every: float = 3.0,
                 prefix: str = "[default model]") -> None:
        self._stream = stream
        self.every, self.prefix = every, prefix
        self._last = -math.inf
        self._t0 = time.perf_counter()

    def _write(self, text: str) -> None:
        stream = self._stream if self._stream is not None else sys.stderr
        print(f"{self.prefix} {text}", file=stream, flush=True)

    def stage(self, text: str) -> None:
        """One line for a stage (data, tokenizer, evaluation, save)."""
        self._write(text)

    def start_training(self) -> None:
        """Start the clock the ETA is computed from."""
        self._t0 = time.perf_counter()

    def step(self, done: int, total: int, loss: float, tokens: int) -> None:
        """A training-step line, rate-limited."""
        now = time.perf_counter()
        if done < total and now - self._last < self.every:
            return
        self._last = now
        el = now - self._t0
        eta = el / done * (total - done) if done else float("nan")
        self._write(f"train step {done}/{total} · loss {loss:.3f} · "
                    f"{tokens / el if el > 0 else 0:,.0f} tok/s · elapsed {_mmss(el)} · "
                    f"ETA {_mmss(eta)}")


def _mmss(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s"


def train_tokenizer(texts: list[str], vocab_size: int = VOCAB_SIZE) -> Any:
    """A byte-level BPE wrapped as a ``PreTrainedTokenizerFast`` with the chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK,
        additional_special_tokens=[IM_START, IM_END], clean_up_tokenization_spaces=False,
        model_max_length=MAX_POSITIONS, chat_template=CHAT_TEMPLATE)


def encode_docs(tokenizer: Any, corpus: Corpus) -> tuple[list[list[int]], dict[str, int]]:
    """Token ids per document: ``<s> text </s>``; chat docs via the chat template + ``</s>``."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    fast = tokenizer.backend_tokenizer  # no max-length warnings for long training documents
    enc = [e.ids for e in fast.encode_batch([t for _, t in corpus.docs],
                                            add_special_tokens=False)]
    docs = [[bos, *ids, eos] for ids in enc]
    per_source: dict[str, int] = {}
    for (src, _), ids in zip(corpus.docs, docs):
        per_source[src] = per_source.get(src, 0) + len(ids)
    chats = [tokenizer.apply_chat_template(
        [{"role": "user", "content": u}, {"role": "assistant", "content": a}], tokenize=False)
        for u, a in corpus.chat_docs]
    if chats:
        cenc = [e.ids for e in fast.encode_batch(chats, add_special_tokens=False)]
        cdocs = [[*ids, eos] for ids in cenc]
        per_source["chat"] = sum(len(d) for d in cdocs)
        docs += cdocs
    return docs, per_source


def model_config(tokenizer: Any) -> Any:
    """The recipe's ``LlamaConfig`` for a trained tokenizer."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=HIDDEN, intermediate_size=INTERMEDIATE,
        num_hidden_layers=LAYERS, num_attention_heads=HEADS, num_key_value_heads=HEADS,
        head_dim=HIDDEN // HEADS, max_position_embeddings=MAX_POSITIONS, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        # torch_dtype (the older name of dtype) keeps the built config.json byte-identical
        # to the shipped model's; transformers still accepts it
        pad_token_id=tokenizer.pad_token_id, torch_dtype="float32")  # type: ignore[call-arg]


def batches(docs: list[list[int]], seq_len: int, batch: int, seed: int
            ) -> Iterator[list[list[int]]]:
    """Endless batches of packed blocks; documents reshuffled (seeded) every epoch."""
    rng = random.Random(seed)
    while True:
        order = list(range(len(docs)))
        rng.shuffle(order)
        stream = [t for i in order for t in docs[i]]
        blocks = [stream[i:i + seq_len] for i in range(0, len(stream) - seq_len + 1, seq_len)]
        rng.shuffle(blocks)
        for i in range(0, len(blocks) - batch + 1, batch):
            yield blocks[i:i + batch]
        if len(blocks) < batch:  # tiny corpora (tests): pad the batch by repetition
            if not blocks:
                raise DataNotFound("training corpus is smaller than one block")
            yield [blocks[j % len(blocks)] for j in range(batch)]


def lr_at(step: int, steps: int, base: float) -> float:
    """Linear warm-up, then cosine decay to ``MIN_LR_RATIO`` × base."""
    warm = warmup_steps(steps)
    if step < warm:
        return base * (step + 1) / warm
    prog = (step - warm) / max(1, steps - warm)
    return base * (MIN_LR_RATIO + (1 - MIN_LR_RATIO) * 0.5 * (1 + math.cos(math.pi * prog)))


def warmup_steps(steps: int) -> int:
    """Warm-up length: ``WARMUP_STEPS``, at most a tenth of a short run."""
    return min(WARMUP_STEPS, max(1, steps // 10))


def train(model: Any, docs: list[list[int]], *, steps: int, seq_len: int, batch_size: int,
          lr: float, seed: int, progress: Progress, log: BuildLog | None) -> list[float]:
    """Run the AdamW steps in place; returns the loss of every step."""
    import torch

    model.train()
    decay = [p for _, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for _, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.95), eps=1e-8)
    stream = batches(docs, seq_len, batch_size, seed)
    losses: list[float] = []
    if log:
        log.start_training()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr)
        x = torch.tensor(next(stream), dtype=torch.long)
        loss = model(input_ids=x, labels=x).loss  # the model shifts labels itself
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        losses.append(loss.item())
        if log:
            log.step(step + 1, steps, losses[-1], (step + 1) * x.numel())
        progress("train", step + 1, steps)
    return losses


def sentence_nll(model: Any, tokenizer: Any, texts: list[str], batch_size: int = 32
                 ) -> tuple[float, int]:
    """Summed NLL (nats) and token count of ``<s> text </s>`` over texts (tokens after BOS)."""
    import torch

    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    enc = tokenizer(texts, add_special_tokens=False)["input_ids"]
    seqs = sorted(([bos, *ids, eos][:MAX_POSITIONS] for ids in enc), key=len)
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i in range(0, len(seqs), batch_size):
            chunk = seqs[i:i + batch_size]
            width = max(len(s) for s in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for j, s in enumerate(chunk):
                ids[j, :len(s)] = torch.tensor(s)
                mask[j, :len(s)] = 1
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
            tgt = ids[:, 1:]
            lp = torch.log_softmax(logits.float(), dim=-1).gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
            m = mask[:, 1:].bool()
            total -= float(lp[m].sum())
            count += int(m.sum())
    model.train(was_training)
    return total, count
