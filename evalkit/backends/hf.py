"""transformers + peft backend: batched, length-sorted, left-padded generation on CPU or GPU.

Which forward pass generates (``engine``): for a Llama checkpoint without adapters on CPU,
evalkit's own (`evalkit.backends.hf_native`: transformers' operations, bitwise-equal logits,
no transformers import, finished rows dropped from the batch); otherwise transformers' model
with peft. ``--engine transformers`` forces the latter, ``--engine native`` the former.

Requests are grouped by (adapter, sampling params) — a batch must share them — and each group
is run by `evalkit.backends.hf_schedule`: sorted by prompt length (long first, so memory
problems surface at once and padding stays small), batch sizes, a first-pass cap on new tokens
and, on CPU, torch's thread count chosen from throughput measured while generating
(`evalkit.backends.hf_tuning`); ``max_batch_tokens`` bounds a batch's memory, ``batch_size``
fixes its rows. On CPU the native engine generates ``streams`` batches side by side (default
two), each in its own thread on its share of the cores: a decode step of a small model is
dozens of short operations that two OpenMP threads split badly (each one a wake-up and a
join), while two batches on one core each keep both cores busy, with no synchronisation between
them. Which stream runs a batch changes nothing in it (tests/test_hf_streams.py).
Several LoRA adapters of one base are loaded side by side with peft and switched per group;
``merge_adapter`` merges a single adapter into the weights first.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from evalkit.backends.base import HFConfig, fit_positions, truncate_at_stop, warn_cut
from evalkit.backends.hf_schedule import Row as _Row
from evalkit.backends.hf_schedule import Streams
from evalkit.errors import BadInput, load_or_explain
from evalkit.types import Generation, GenParams, GenRequest, LoglikRequest, LoglikResult


class HFBackend:
    """Backend ``hf``."""

    name = "hf"
    config_class = HFConfig

    def __init__(self, config: HFConfig) -> None:
        from evalkit.backends.hf_native import decline_reason
        from evalkit.gc_pause import import_torch

        torch = import_torch()

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
        self._dtype = dtype
        if self.device == "cpu":  # activations come and go every operation: reuse their pages
            from evalkit.malloc_tuning import keep_freed_memory

            keep_freed_memory()
        reason = None if config.engine == "transformers" else decline_reason(
            config.model, adapters=bool(config.adapters))
        if reason is None and config.engine == "auto" and self.device != "cpu":
            reason = "its equality with transformers is tested on CPU only"  # GPU: opt in
        if config.engine == "native" and reason is not None:
            raise BadInput(f"--engine native cannot run {config.model}: {reason}; use "
                           "--engine auto (transformers where native cannot)")
        #: which forward pass generates: "native" (evalkit.backends.hf_native) or transformers
        self.engine = "transformers" if reason is not None or config.engine == "transformers" \
            else "native"
        self.tokenizer = self._load_tokenizer()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._native: Any = None
        self.model: Any = None
        self._adapters: list[str] = []
        if self.engine == "native":
            from evalkit.backends.hf_native import LlamaEngine

            self._native = load_or_explain(
                lambda: LlamaEngine(torch, config.model, dtype, self.device),
                f"the weights of {config.model}",
                "check that config.json matches the weights")
            self.max_positions = self._native.max_positions
            self._gen_eos = self._native.eos_ids
        else:
            self._load_transformers_model()
        self._threads = None
        #: batches generated side by side (native engine on CPU), each on its own share of
        #: the cores with its own thread tuner
        self.streams = 1
        self._stream_threads = torch.get_num_threads()
        if self.device == "cpu" and self._native is not None:
            cores = torch.get_num_threads()
            self.streams = config.streams or (2 if cores >= 2 else 1)
            self._stream_threads = max(1, cores // self.streams)
        self._streams = Streams(torch, self.streams, self._stream_threads, self._tuner)
        if self.device == "cpu" and torch.get_num_threads() > 1:
            from evalkit.backends.hf_native import read_json
            from evalkit.backends.hf_tuning import prefill_cost

            self._threads = self._tuner()
            self._prefill_cost = prefill_cost(read_json(Path(config.model) / "config.json") or {})

    def _tuner(self) -> Any:
        """A thread tuner for one stream (None: one thread per stream, nothing to choose)."""
        from evalkit.backends.hf_tuning import ThreadTuner

        if self.device != "cpu" or self._stream_threads < 2:
            return None
        return ThreadTuner(self._torch, self._stream_threads)

    def _load_tokenizer(self) -> Any:
        from evalkit.backends.hf_native import FileTokenizer, plain_tokenizer

        model = self.config.model
        if self.engine == "native" and plain_tokenizer(model):
            return load_or_explain(lambda: FileTokenizer(model), f"the tokenizer of {model}",
                                   "re-save it with tokenizer.save_pretrained")
        from transformers import AutoTokenizer

        return load_or_explain(lambda: AutoTokenizer.from_pretrained(model),
                               f"the tokenizer of {model}",
                               "re-save it with tokenizer.save_pretrained")

    def _load_transformers_model(self) -> None:
        """The transformers model (+ peft adapters): the generating engine, or, next to the
        native one, the log-likelihood engine (loaded on first use)."""
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # evalkit draws its own progress bars
        config = self.config
        model = load_or_explain(
            lambda: AutoModelForCausalLM.from_pretrained(config.model, dtype=self._dtype),
            f"the weights of {config.model}",
            "check that config.json matches the weights and that the architecture is one "
            "transformers knows")
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
        if self._native is None:
            self.max_positions = getattr(self.model.config, "max_position_embeddings", None)
            gen_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id",
                              None)
            self._gen_eos = set(gen_eos) if isinstance(gen_eos, (list, tuple)) else {gen_eos}

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
        plan: list[tuple[Any, GenParams, bool, list[_Row]]] = []
        cap = self.config.max_model_len
        for (adapter, params, special), idxs in groups.items():
            enc = [self.tokenizer(requests[i].prompt, add_special_tokens=special)["input_ids"]
                   for i in idxs]
            longest = max(len(e) for e in enc)
            if cap is not None and longest + params.max_new_tokens > cap:
                raise BadInput(f"--max-model-len {cap}: a prompt of {longest} tokens plus "
                               f"{params.max_new_tokens} new tokens does not fit; raise "
                               "--max-model-len or lower --max-new-tokens")
            positions = self.max_positions
            fitted = [fit_positions(e, params.max_new_tokens, positions) for e in enc]
            warn_cut(sum(a is not b for a, b in zip(fitted, enc)), positions)
            enc = fitted
            plan.append((adapter, params, special,
                         [_Row(i, k, e) for i, e in zip(idxs, enc) for k in range(params.n)]))
        ch = Channel()
        threads = self._torch.get_num_threads()

        def work() -> None:
            try:
                with self._torch.inference_mode():
                    for adapter, params, special, rows in plan:
                        if ch.abort.is_set():
                            return
                        with self._activate(adapter):
                            self._generate_group(requests, rows, params, special, ch)
                ch.put("end", None)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
                ch.put("error", exc)
            finally:
                self._torch.set_num_threads(threads)

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

    def _generate_group(self, requests: Sequence[GenRequest], rows: list[_Row], p: GenParams,
                        special: bool, ch: Any) -> None:
        """All rows of one (adapter, params) group (`evalkit.backends.hf_schedule`)."""
        from evalkit.backends.hf_schedule import run_group

        slots: dict[int, list[tuple[str, int, str, list[int]] | None]] = {
            r.req: [None] * p.n for r in rows}

        def run_batch(batch: list[_Row], cap: int, tuner: Any,
                      lock: Any) -> tuple[list[int], list[_Row]]:
            return self._generate_batch(requests, batch, p, special, cap, ch, slots, tuner, lock)

        run_group(rows, p.max_new_tokens, run_batch, batch_size=self.config.batch_size,
                  max_batch_tokens=self.config.max_batch_tokens,
                  streams=self._streams, tuner=self._threads, aborted=ch.abort.is_set)

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
        ids = {tok.eos_token_id} | self._gen_eos
        return {i for i in ids | {tok.pad_token_id} if i is not None}

    def _generate_batch(self, requests: Sequence[GenRequest], batch: list[_Row],
                        p: GenParams, special: bool, cap: int, ch: Any,
                        slots: dict[int, list[tuple[str, int, str, list[int]] | None]],
                        tuner: Any, lock: Any) -> tuple[list[int], list[_Row]]:
        """Generate one batch of rows for up to `cap` new tokens.

        Every request whose samples have all finished goes to `ch` as ``("gen", (i, gen))``.
        Returns the token counts of the rows that finished, and the rows still running at
        `cap` when it is below ``max_new_tokens`` (to be generated again with a larger cap).
        """
        from evalkit.backends.hf_sampling import make_sampler, make_watcher, row_seed

        torch = self._torch
        tok = self.tokenizer
        width = max(len(r.ids) for r in batch)
        pad = tok.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(r.ids)) + r.ids for r in batch],
                                 device=self.device)
        attn = torch.tensor([[0] * (width - len(r.ids)) + [1] * len(r.ids) for r in batch],
                            device=self.device)
        finished: list[int] = []

        def on_finish(j: int, seq: list[int]) -> None:
            row = batch[j]
            got = slots[row.req]
            if got[row.k] is not None:
                return
            fin = self._finish(seq, p)
            with lock:  # a request's samples may be in two streams
                got[row.k] = fin
                complete = all(x is not None for x in got)
            finished.append(fin[1])
            if complete:
                done = [x for x in got if x is not None]
                req = requests[row.req]
                gen = Generation(tuple(x[0] for x in done), tuple(x[1] for x in done),
                                 tuple(x[2] for x in done),
                                 token_ids=tuple(tuple(x[3]) for x in done)
                                 if req.want_token_ids else (),
                                 prompt_token_ids=tuple(row.ids) if req.want_token_ids else ())
                ch.put("gen", (row.req, gen))

        if self._native is not None:
            left = self._native_batch(requests, batch, input_ids, attn, p, special, cap,
                                      on_finish, ch, tuner)
            return finished, left
        kwargs: dict[str, Any] = {"max_new_tokens": cap, "pad_token_id": pad,
                                  "num_return_sequences": 1, "do_sample": False,
                                  "temperature": None, "top_p": None, "top_k": None}
        if p.greedy:
            kwargs["repetition_penalty"] = p.repetition_penalty
        else:  # evalkit samples; generate only takes the one-hot argmax
            seeds = [row_seed(requests[r.req].prompt, p, special, r.k) for r in batch]
            kwargs["logits_processor"] = [make_sampler(torch, seeds, [len(r.ids) for r in batch],
                                                       width, p)]
        if p.stop:
            kwargs.update(stop_strings=list(p.stop), tokenizer=tok)
        watcher = make_watcher(torch, width, self._eos_ids, p.stop,
                               lambda seq: tok.decode(seq, skip_special_tokens=True),
                               on_finish, ch.abort)
        criteria = [watcher]
        if tuner is not None:
            from evalkit.backends.hf_tuning import step_clock

            tuner.new_batch(self._prefill_cost(*input_ids.shape), rows=input_ids.shape[0])
            criteria.append(step_clock(torch, tuner))
        out = self.model.generate(input_ids=input_ids, attention_mask=attn,
                                  stopping_criteria=criteria, **kwargs)
        if ch.abort.is_set():
            return finished, []  # unfinished rows are incomplete: never store them
        new = out[:, width:].tolist()
        if cap >= p.max_new_tokens:
            for j, seq in enumerate(new):
                on_finish(j, seq)
            return finished, []
        return finished, [r for j, r in enumerate(batch) if j not in watcher.done]

    def _native_batch(self, requests: Sequence[GenRequest], batch: list[_Row], input_ids: Any,
                      attn: Any, p: GenParams, special: bool, cap: int,
                      on_finish: Any, ch: Any, tuner: Any) -> list[_Row]:
        """One batch on the native engine: same texts as ``generate``, finished rows dropped.
        Returns the rows still running at `cap` when it is below ``max_new_tokens``."""
        from evalkit.backends.hf_native import repetition_penalty
        from evalkit.backends.hf_sampling import make_sampler, row_seed

        torch = self._torch
        tok = self.tokenizer
        eos = self._eos_ids
        width = input_ids.shape[1]
        sampler = None
        if not p.greedy:
            seeds = [row_seed(requests[r.req].prompt, p, special, r.k) for r in batch]
            sampler = make_sampler(torch, seeds, [len(r.ids) for r in batch], width, p)

        def select(seen: Any, scores: Any, rows: list[int]) -> Any:
            if sampler is not None:
                scores = sampler.subset(rows)(seen, scores)
            elif p.repetition_penalty != 1.0:
                scores = repetition_penalty(torch, seen, scores, p.repetition_penalty)
            return torch.argmax(scores, dim=-1)

        def finished(j: int, seq: list[int]) -> bool:
            if seq[-1] in eos or (p.stop and any(
                    s and s in tok.decode(seq, skip_special_tokens=True) for s in p.stop)):
                on_finish(j, seq)
                return True
            return False

        on_step = on_layer = None
        if tuner is not None:
            tuner.new_batch(self._prefill_cost(*input_ids.shape), rows=input_ids.shape[0],
                            layers=self._native.layers)
            on_step, on_layer = tuner.step, tuner.layer
        running = self._native.generate(input_ids, attn, cap, select=select, finished=finished,
                                        on_step=on_step, on_layer=on_layer, abort=ch.abort)
        if ch.abort.is_set():
            return []  # unfinished rows are incomplete: never store them
        if cap >= p.max_new_tokens:
            for j, seq in running.items():
                on_finish(j, seq)
            return []
        return [batch[j] for j in sorted(running)]

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
        if self.model is None:
            self._load_transformers_model()
        max_len: int = self.config.max_model_len or self.max_positions or 2048
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
        self._native = None
        gc.collect()
        if self._torch.cuda.is_available():
            self._torch.cuda.empty_cache()
