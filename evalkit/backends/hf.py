"""transformers + peft backend: batched, length-sorted, left-padded generation on CPU or GPU.

Requests are grouped by (adapter, sampling params) — a batch must share them — sorted by prompt
length (long first, so memory problems surface at once and padding stays small), and packed
under a token budget. Several LoRA adapters of one base are loaded side by side with peft and
switched per group; ``merge_adapter`` merges a single adapter into the weights first.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from evalkit.backends.base import HFConfig, truncate_at_stop
from evalkit.errors import BadInput
from evalkit.types import Generation, GenParams, GenRequest, LoglikRequest, LoglikResult


def load_or_explain(load: Any, what: str, fix: str) -> Any:
    """Run a loader; any failure of a broken checkpoint becomes one line naming it and a fix."""
    try:
        return load()
    except (OSError, ValueError, KeyError, RuntimeError, TypeError, AttributeError,
            ImportError) as exc:
        first = next((x for x in str(exc).splitlines() if x.strip()), type(exc).__name__)
        raise BadInput(f"{what} failed to load ({type(exc).__name__}: {first[:200]}); "
                       f"{fix}") from None


class HFBackend:
    """Backend ``hf``."""

    name = "hf"
    config_class = HFConfig

    def __init__(self, config: HFConfig) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # evalkit draws its own progress bars
        self.config = config
        self._torch = torch
        if config.device == "auto":
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        else:
            self.device = config.device
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise BadInput(f"--device {self.device}: no CUDA device is visible on this machine; "
                           "use --device cpu (or auto)")
        if self.device.startswith("cuda:") and \
                int(self.device.split(":", 1)[1]) >= torch.cuda.device_count():
            raise BadInput(f"--device {self.device}: only {torch.cuda.device_count()} CUDA "
                           "device(s) are visible; pick one of them")
        if self.device == "mps" and not torch.backends.mps.is_available():
            raise BadInput("--device mps: Apple's MPS is not available here; use --device cpu")
        dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16,
                 "float16": torch.float16}.get(config.dtype)
        if dtype is None:  # auto: exact fp32 on CPU, bf16 on GPU
            dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        self.tokenizer = load_or_explain(lambda: AutoTokenizer.from_pretrained(config.model),
                                         f"the tokenizer of {config.model}",
                                         "re-save it with tokenizer.save_pretrained")
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        model = load_or_explain(
            lambda: AutoModelForCausalLM.from_pretrained(config.model, dtype=dtype),
            f"the weights of {config.model}",
            "check that config.json matches the weights and that the architecture is one "
            "transformers knows")
        self._adapters: list[str] = []
        if config.adapters:
            from peft import PeftModel

            items = list(config.adapters.items())
            try:
                model = PeftModel.from_pretrained(model, items[0][1], adapter_name=items[0][0])
                for name, path in items[1:]:
                    model.load_adapter(path, adapter_name=name)
            except Exception as exc:  # noqa: BLE001 - peft raises many types for bad dirs
                raise BadInput(f"adapter could not be applied to {config.model}: "
                               f"{str(exc).splitlines()[0][:200]}; check that the adapter was "
                               "trained for this base model") from None
            if config.merge_adapter:
                if len(items) != 1:
                    raise BadInput("--merge-adapter takes exactly one --adapter")
                model = model.merge_and_unload()
            else:
                self._adapters = [n for n, _ in items]
        self.model = model.to(self.device).eval()

    # -- helpers ----------------------------------------------------------------------------
    def _activate(self, adapter: str | None):  # noqa: ANN202
        """A context manager that runs the model with `adapter` (None = base weights)."""
        import contextlib

        if not self._adapters:
            if adapter is not None and not self.config.merge_adapter:
                raise BadInput(f"request asks for adapter {adapter!r} but none is loaded")
            return contextlib.nullcontext()
        if adapter is None:
            return self.model.disable_adapter()
        self.model.set_adapter(adapter)
        return contextlib.nullcontext()

    def _batches(self, lengths: list[int], budget_per_item: int) -> Iterator[list[int]]:
        """Indices (sorted long → short) packed under the token budget."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        batch: list[int] = []
        for i in order:
            width = lengths[batch[0]] if batch else lengths[i]
            cap = self.config.batch_size or max(
                1, self.config.max_batch_tokens // max(1, width + budget_per_item))
            if batch and len(batch) >= cap:
                yield batch
                batch = []
            batch.append(i)
        if batch:
            yield batch

    # -- generation -------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenRequest]) -> Iterator[tuple[int, Generation]]:
        """Yield each request's generation as soon as all its sequences have finished.

        Batches run in a worker thread; finished sequences are handed back while the rest of
        their batch is still generating, so the runner stores them at once and an interrupt
        loses only unfinished sequences. Closing the iterator (or Ctrl-C) aborts the batch.
        """
        import threading

        from evalkit.backends.hf_sampling import Channel

        groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for i, r in enumerate(requests):
            groups[(r.adapter, r.params, r.add_special_tokens)].append(i)
        plan: list[tuple[Any, GenParams, bool, list[int], list[list[int]]]] = []
        cap = self.config.max_model_len
        for (adapter, params, special), idxs in groups.items():
            enc = [self.tokenizer(requests[i].prompt, add_special_tokens=special)["input_ids"]
                   for i in idxs]
            longest = max(len(e) for e in enc)
            if cap is not None and longest + params.max_new_tokens > cap:
                raise BadInput(f"--max-model-len {cap}: a prompt of {longest} tokens plus "
                               f"{params.max_new_tokens} new tokens does not fit; raise "
                               "--max-model-len or lower --max-new-tokens")
            for batch in self._batches([len(e) for e in enc], params.max_new_tokens * params.n):
                plan.append((adapter, params, special, [idxs[b] for b in batch],
                             [enc[b] for b in batch]))
        ch = Channel()

        def work() -> None:
            try:
                with self._torch.inference_mode():
                    for adapter, params, special, idxs, ids in plan:
                        if ch.abort.is_set():
                            return
                        with self._activate(adapter):
                            self._generate_batch(requests, idxs, ids, params, special, ch)
                ch.put("end", None)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
                ch.put("error", exc)

        worker = threading.Thread(target=work, name="evalkit-hf-generate", daemon=True)
        worker.start()
        try:
            while True:
                kind, item = ch.get()
                if kind == "gen":
                    yield item
                elif kind == "end":
                    return
                else:
                    raise item
        finally:
            ch.abort.set()
            worker.join()

    def _finish(self, seq: list[int], p: GenParams) -> tuple[str, int, str, list[int]]:
        """(text, n_tokens, finish reason, token ids) of one generated sequence."""
        n = next((j for j, t in enumerate(seq) if t in self._eos_ids), len(seq))
        hit_eos = n < len(seq)
        while not hit_eos and n and seq[n - 1] == self.tokenizer.pad_token_id:
            n -= 1  # rows stopped by a stop string are padded to the batch's end
        text = self.tokenizer.decode(seq[:n], skip_special_tokens=True)
        text, stopped = truncate_at_stop(text, p.stop)
        return text, n, "stop" if stopped or hit_eos else "length", seq[:n]

    @property
    def _eos_ids(self) -> set[int]:
        tok = self.tokenizer
        ids = {tok.eos_token_id}
        gen_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids |= set(gen_eos) if isinstance(gen_eos, (list, tuple)) else {gen_eos}
        return {i for i in ids | {tok.pad_token_id} if i is not None}

    def _generate_batch(self, requests: Sequence[GenRequest], idxs: list[int],
                        ids: list[list[int]], p: GenParams, special: bool, ch: Any) -> None:
        """Generate one batch; every finished request goes to `ch` as ``("gen", (i, gen))``."""
        from evalkit.backends.hf_sampling import make_sampler, make_watcher, row_seed

        torch = self._torch
        tok = self.tokenizer
        n = p.n
        rows = [x for x in ids for _ in range(n)]  # sample k of prompt b is row b*n + k
        width = max(len(x) for x in rows)
        pad = tok.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in rows], device=self.device)
        attn = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in rows],
                            device=self.device)
        slots: list[list[tuple[str, int, str, list[int]] | None]] = [[None] * n for _ in ids]

        def on_finish(r: int, seq: list[int]) -> None:
            b, k = divmod(r, n)
            if slots[b][k] is not None:
                return
            slots[b][k] = self._finish(seq, p)
            if all(x is not None for x in slots[b]):
                done = [x for x in slots[b] if x is not None]
                req = requests[idxs[b]]
                gen = Generation(tuple(x[0] for x in done), tuple(x[1] for x in done),
                                 tuple(x[2] for x in done),
                                 token_ids=tuple(tuple(x[3]) for x in done)
                                 if req.want_token_ids else (),
                                 prompt_token_ids=tuple(ids[b]) if req.want_token_ids else ())
                ch.put("gen", (idxs[b], gen))

        kwargs: dict[str, Any] = {"max_new_tokens": p.max_new_tokens, "pad_token_id": pad,
                                  "num_return_sequences": 1, "do_sample": False,
                                  "temperature": None, "top_p": None, "top_k": None}
        if p.greedy:
            kwargs["repetition_penalty"] = p.repetition_penalty
        else:  # evalkit samples; generate only takes the one-hot argmax
            seeds = [row_seed(requests[idxs[b]].prompt, p, special, k)
                     for b in range(len(ids)) for k in range(n)]
            kwargs["logits_processor"] = [make_sampler(torch, seeds, [len(x) for x in rows],
                                                       width, p)]
        if p.stop:
            kwargs.update(stop_strings=list(p.stop), tokenizer=tok)
        watcher = make_watcher(torch, width, self._eos_ids, p.stop,
                               lambda seq: tok.decode(seq, skip_special_tokens=True),
                               on_finish, ch.abort)
        out = self.model.generate(input_ids=input_ids, attention_mask=attn,
                                  stopping_criteria=[watcher], **kwargs)
        if ch.abort.is_set():
            return  # unfinished rows are incomplete: never store them
        new = out[:, width:].tolist()
        for r, seq in enumerate(new):
            on_finish(r, seq)

    # -- log-likelihood ---------------------------------------------------------------------
    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """lm-eval's pairing: trailing context spaces move to the continuation; the
        continuation's tokens are the whole text's tokens after the context's.
        An empty context is the BOS token (or EOS when there is none)."""
        tok = self.tokenizer
        if not context:
            prefix = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
            return [prefix], tok(continuation, add_special_tokens=False)["input_ids"]
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        whole = tok(context + continuation)["input_ids"]
        ctx = tok(context)["input_ids"]
        return ctx, whole[len(ctx):]

    def loglikelihood(self, requests: Sequence[LoglikRequest]
                      ) -> Iterator[tuple[int, LoglikResult]]:
        """Yield summed continuation log-probs, batched by length."""
        torch = self._torch
        max_len: int = self.config.max_model_len or getattr(
            self.model.config, "max_position_embeddings", None) or 2048
        groups: dict[str | None, list[int]] = defaultdict(list)
        for i, r in enumerate(requests):
            groups[r.adapter].append(i)
        for adapter, idxs in groups.items():
            pairs = [self.encode_pair(requests[i].context, requests[i].continuation)
                     for i in idxs]
            seqs = [(c + k)[-(max_len + 1):] for c, k in pairs]
            for batch in self._batches([len(s) for s in seqs], 0):
                width = max(len(seqs[b]) - 1 for b in batch)
                pad = self.tokenizer.pad_token_id
                inp = torch.tensor([seqs[b][:-1] + [pad] * (width - len(seqs[b]) + 1)
                                    for b in batch], device=self.device)
                attn = torch.tensor([[1] * (len(seqs[b]) - 1) + [0] * (width - len(seqs[b]) + 1)
                                     for b in batch], device=self.device)
                with self._activate(adapter), torch.inference_mode():
                    logits = self.model(input_ids=inp, attention_mask=attn).logits.float()
                logp = torch.log_softmax(logits, dim=-1)
                for row, b in enumerate(batch):
                    s = seqs[b]
                    n_cont = min(len(pairs[b][1]), len(s) - 1)
                    if n_cont == 0:
                        yield idxs[b], LoglikResult(0.0, 0, True)
                        continue
                    pos = torch.arange(len(s) - 1 - n_cont, len(s) - 1, device=self.device)
                    tgt = torch.tensor(s[len(s) - n_cont:], device=self.device)
                    lp = logp[row, pos]
                    total = float(lp.gather(1, tgt[:, None]).sum())
                    greedy = bool((lp.argmax(-1) == tgt).all())
                    yield idxs[b], LoglikResult(total, n_cont, greedy)

    def close(self) -> None:
        """Drop the model and free accelerator memory."""
        self.model = None
        gc.collect()
        if self._torch.cuda.is_available():
            self._torch.cuda.empty_cache()
