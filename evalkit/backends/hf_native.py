"""evalkit's own forward pass for Llama-architecture checkpoints: transformers' numbers, faster.

Two costs of the transformers backend are not the model's: importing transformers' model and
generation stack (about 5.5 s on a 2-core machine, more than generating a whole FLORES
direction with the embedded default model takes after it), and ``generate`` keeping every row of
a batch until its longest row stops. :class:`LlamaEngine` runs the same tensor operations in the
same order as transformers' ``LlamaForCausalLM`` with SDPA attention — RMSNorm in float32,
rotary embeddings from position ids counted along the attention mask, a boolean causal+padding
mask (none when nothing is padded), logits of the last position only, float32 scores — so its
logits are bitwise equal to transformers' and its greedy and per-row-seeded sampled texts are
the same (tests/test_hf_native.py compares both on every test checkpoint). Its decode loop drops
rows from the batch as they finish and writes the KV cache in place.

:func:`decline_reason` keeps everything else on transformers: other architectures, rope
scaling, biases, quantised or non-safetensors weights, LoRA adapters (applied by peft),
generation configs with processors of their own. :class:`FileTokenizer` does the same for the
tokenizer: the ``tokenizers`` library straight from ``tokenizer.json`` when the tokenizer class
adds nothing to it, else transformers' tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evalkit import chat_files
from evalkit.chat_files import token_text

#: generation_config.json keys that change nothing here (the backend passes its own values)
_GEN_KEYS = frozenset({"bos_token_id", "eos_token_id", "pad_token_id", "do_sample",
                       "temperature", "top_p", "top_k", "transformers_version", "max_length",
                       "max_new_tokens", "repetition_penalty", "use_cache", "_from_model_config"})
#: generation_config.json keys that change nothing while they hold transformers' default
_GEN_DEFAULTS: dict[str, Any] = {
    "output_attentions": False, "output_hidden_states": False, "output_scores": False,
    "output_logits": False, "return_dict_in_generate": False, "num_beams": 1,
    "num_beam_groups": 1, "num_return_sequences": 1, "min_length": 0, "min_new_tokens": None,
    "no_repeat_ngram_size": 0, "encoder_no_repeat_ngram_size": 0, "length_penalty": 1.0,
    "early_stopping": False, "diversity_penalty": 0.0, "typical_p": 1.0, "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0, "encoder_repetition_penalty": 1.0, "bad_words_ids": None,
    "forced_bos_token_id": None, "forced_eos_token_id": None, "suppress_tokens": None,
    "begin_suppress_tokens": None, "remove_invalid_values": False,
    "renormalize_logits": False, "sequence_bias": None, "decoder_start_token_id": None,
    "cache_implementation": None}
#: tokenizer classes that are ``tokenizer.json`` and nothing more
_PLAIN_TOKENIZERS = frozenset({"TokenizersBackend", "PreTrainedTokenizerFast"})


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from `path`, or None when it is missing or not a JSON object."""
    obj = chat_files.read_json(Path(path))
    return obj if isinstance(obj, dict) else None


def _rope_type(cfg: dict[str, Any]) -> str | None:
    for key in ("rope_parameters", "rope_scaling"):
        value = cfg.get(key)
        if isinstance(value, dict):
            return str(value.get("rope_type") or value.get("type") or "default")
    return "default"


def decline_reason(model_dir: str | Path, *, adapters: bool) -> str | None:
    """Why :class:`LlamaEngine` cannot stand in for transformers on `model_dir` (None: it can)."""
    d = Path(model_dir)
    cfg = read_json(d / "config.json")
    if cfg is None:
        return "no readable config.json"
    if adapters:
        return "LoRA adapters are applied by peft on transformers"
    if cfg.get("model_type") != "llama" or cfg.get("architectures") not in (
            None, ["LlamaForCausalLM"]):
        return f"architecture {cfg.get('model_type')!r} is not Llama"
    checks = {"rope scaling": _rope_type(cfg) != "default",
              "activation": cfg.get("hidden_act", "silu") != "silu",
              "attention bias": bool(cfg.get("attention_bias")),
              "MLP bias": bool(cfg.get("mlp_bias")),
              "tensor-parallel pretraining": cfg.get("pretraining_tp", 1) not in (None, 1),
              "quantisation": "quantization_config" in cfg}
    bad = [k for k, v in checks.items() if v]
    if bad:
        return f"the checkpoint uses {', '.join(bad)}"
    if not list(d.glob("*.safetensors")):
        return "the weights are not safetensors"
    gen = read_json(d / "generation_config.json") or {}
    extra = sorted(k for k, v in gen.items() if k not in _GEN_KEYS
                   and not (k in _GEN_DEFAULTS and v == _GEN_DEFAULTS[k]))
    if extra:
        return f"generation_config.json sets {', '.join(extra)}"
    return None


class LlamaEngine:
    """A Llama checkpoint's weights and its forward pass (see the module docstring)."""

    def __init__(self, torch: Any, model_dir: str | Path, dtype: Any, device: str) -> None:
        from safetensors.torch import load_file

        d = Path(model_dir)
        cfg = read_json(d / "config.json") or {}
        self.torch = torch
        self.device = device
        weights: dict[str, Any] = {}
        for f in sorted(d.glob("*.safetensors")):
            weights.update(load_file(str(f), device="cpu"))
        self.w = {k.removeprefix("model."): v.to(device=device, dtype=dtype)
                  for k, v in weights.items()}
        if "lm_head.weight" not in self.w:
            if cfg.get("tie_word_embeddings", True) is False:
                raise ValueError("lm_head.weight is missing and the embeddings are not tied")
            self.w["lm_head.weight"] = self.w["embed_tokens.weight"]
        self.layers = int(cfg["num_hidden_layers"])
        heads = int(cfg["num_attention_heads"])
        self.kv_heads = int(cfg.get("num_key_value_heads") or heads)
        self.groups = heads // self.kv_heads
        self.head_dim = int(cfg.get("head_dim") or int(cfg["hidden_size"]) // heads)
        self.eps = float(cfg.get("rms_norm_eps", 1e-6))
        self.max_positions = cfg.get("max_position_embeddings")
        rope = cfg.get("rope_parameters") or {}
        theta = float(rope.get("rope_theta", cfg.get("rope_theta", 10000.0)))
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.float)
                                         / self.head_dim)).to(device)
        self.scaling = self.head_dim ** -0.5
        self.dtype = dtype
        gen = read_json(d / "generation_config.json")
        eos = (gen or {}).get("eos_token_id", cfg.get("eos_token_id"))
        self.eos_ids = set(eos) if isinstance(eos, list) else ({eos} if eos is not None else set())
        expected = self.expected(int(cfg["hidden_size"]), int(cfg["intermediate_size"]),
                                 int(cfg["vocab_size"]), heads)
        missing = sorted(k for k in expected if k not in self.w)
        if missing:
            raise ValueError(f"weights missing: {', '.join(missing[:3])}")
        wrong = [f"{k} is {tuple(self.w[k].shape)}, config.json implies {shape}"
                 for k, shape in expected.items() if tuple(self.w[k].shape) != shape]
        if wrong:  # transformers refuses such a checkpoint too
            raise ValueError(f"weights do not match config.json: {wrong[0]}")

    def expected(self, hidden: int, inter: int, vocab: int, heads: int
                 ) -> dict[str, tuple[int, ...]]:
        """The weights the forward pass reads, with the shapes config.json implies."""
        q, kv = heads * self.head_dim, self.kv_heads * self.head_dim
        out: dict[str, tuple[int, ...]] = {"embed_tokens.weight": (vocab, hidden),
                                           "norm.weight": (hidden,),
                                           "lm_head.weight": (vocab, hidden)}
        for i in range(self.layers):
            p = f"layers.{i}."
            out.update({p + "input_layernorm.weight": (hidden,),
                        p + "post_attention_layernorm.weight": (hidden,),
                        p + "self_attn.q_proj.weight": (q, hidden),
                        p + "self_attn.k_proj.weight": (kv, hidden),
                        p + "self_attn.v_proj.weight": (kv, hidden),
                        p + "self_attn.o_proj.weight": (hidden, q),
                        p + "mlp.gate_proj.weight": (inter, hidden),
                        p + "mlp.up_proj.weight": (inter, hidden),
                        p + "mlp.down_proj.weight": (hidden, inter)})
        return out

    # -- the forward pass (transformers' LlamaForCausalLM, op for op) ---------------------------
    def _norm(self, x: Any, weight: Any) -> Any:
        torch = self.torch
        dtype = x.dtype
        x = x.to(torch.float32)
        variance = x.pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(variance + self.eps)
        return weight * x.to(dtype)

    def _rotate(self, x: Any) -> Any:
        half = x.shape[-1] // 2
        return self.torch.cat((-x[..., half:], x[..., :half]), dim=-1)

    def forward(self, ids: Any, positions: Any, mask: Any, cache: list[Any] | None,
                room: int = 0, on_layer: Callable[[int], None] | None = None
                ) -> tuple[Any, list[Any]]:
        """Last-position float32 logits of `ids` (B, T) and the updated KV cache.

        `mask` is a boolean (B, 1, T, S) mask or None (no padding); `cache` is None for a
        prefill, which allocates `room` more positions per row for the decode steps.
        `on_layer(i)` is called before layer `i` and with the layer count after the last.
        """
        torch = self.torch
        functional = torch.nn.functional
        w = self.w
        batch, length = ids.shape
        x = functional.embedding(ids, w["embed_tokens.weight"])
        freqs = positions[..., None].float() * self.inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = emb.cos().to(x.dtype).unsqueeze(1)
        sin = emb.sin().to(x.dtype).unsqueeze(1)
        new_cache: list[Any] = []
        for i in range(self.layers):
            if on_layer is not None:
                on_layer(i)
            p = f"layers.{i}."
            residual = x
            h = self._norm(x, w[p + "input_layernorm.weight"])
            shape = (batch, length, -1, self.head_dim)
            q = functional.linear(h, w[p + "self_attn.q_proj.weight"]).view(shape).transpose(1, 2)
            k = functional.linear(h, w[p + "self_attn.k_proj.weight"]).view(shape).transpose(1, 2)
            v = functional.linear(h, w[p + "self_attn.v_proj.weight"]).view(shape).transpose(1, 2)
            q = (q * cos) + (self._rotate(q) * sin)
            k = (k * cos) + (self._rotate(k) * sin)
            if cache is None:
                keys = k.new_empty(batch, k.shape[1], length + room, self.head_dim)
                values = torch.empty_like(keys)
                used = 0
            else:
                keys, values, used = cache[i]
            keys[:, :, used:used + length] = k
            values[:, :, used:used + length] = v
            new_cache.append((keys, values, used + length))
            k, v = keys[:, :, :used + length], values[:, :, :used + length]
            extra: dict[str, Any] = {}
            if self.groups > 1 and mask is None and self.head_dim <= 256:
                extra["enable_gqa"] = True  # as transformers' SDPA integration on CPU/CUDA
            elif self.groups > 1:
                k = k[:, :, None].expand(batch, self.kv_heads, self.groups, *k.shape[2:]
                                         ).reshape(batch, -1, *k.shape[2:])
                v = v[:, :, None].expand(batch, self.kv_heads, self.groups, *v.shape[2:]
                                         ).reshape(batch, -1, *v.shape[2:])
            a = functional.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=0.0, scale=self.scaling,
                is_causal=mask is None and length > 1, **extra)
            a = a.transpose(1, 2).contiguous().reshape(batch, length, -1).contiguous()
            x = residual + functional.linear(a, w[p + "self_attn.o_proj.weight"])
            residual = x
            h = self._norm(x, w[p + "post_attention_layernorm.weight"])
            h = functional.linear(
                functional.silu(functional.linear(h, w[p + "mlp.gate_proj.weight"]))
                * functional.linear(h, w[p + "mlp.up_proj.weight"]),
                w[p + "mlp.down_proj.weight"])
            x = residual + h
        if on_layer is not None:
            on_layer(self.layers)
        x = self._norm(x, w["norm.weight"])
        # a compact copy of the last position, as transformers hands its lm_head (the GEMM
        # of a strided view rounds differently)
        logits = functional.linear(x[:, -1:, :].contiguous(), w["lm_head.weight"])
        return logits[:, -1].to(copy=True, dtype=torch.float32), new_cache

    # -- generation ------------------------------------------------------------------------------
    def generate(self, input_ids: Any, attention_mask: Any, max_new_tokens: int, *,
                 select: Callable[[Any, Any, list[int]], Any],
                 finished: Callable[[int, list[int]], bool],
                 on_step: Callable[[], None] | None = None,
                 on_layer: Callable[[int], None] | None = None,
                 abort: Any = None) -> dict[int, list[int]]:
        """Decode up to `max_new_tokens` for each row of a left-padded batch.

        ``select(input_ids, scores, rows)`` turns the live rows' scores into token ids (`rows`:
        their indices in the original batch); ``finished(row, new_ids)`` says whether a row is
        done (it is then dropped from the batch); ``on_step()`` follows every step and
        ``on_layer`` goes to the prompt's forward pass. Returns the new ids of the rows still
        running at the cap (an abort returns what it has; the caller drops it).
        """
        torch = self.torch
        width = input_ids.shape[1]
        positions = attention_mask.long().cumsum(-1) - 1
        positions = positions.masked_fill(attention_mask == 0, 0)
        if bool((attention_mask == 1).all()):
            mask = None
        else:
            causal = torch.ones(width, width, dtype=torch.bool, device=input_ids.device).tril()
            mask = causal[None, None] & attention_mask.bool()[:, None, None, :]
        scores, cache = self.forward(input_ids, positions, mask, None, room=max_new_tokens,
                                     on_layer=on_layer)
        rows = list(range(input_ids.shape[0]))
        new: dict[int, list[int]] = {r: [] for r in rows}
        done: set[int] = set()
        seen = input_ids
        am = attention_mask
        last = positions[:, -1:]
        for step in range(max_new_tokens):
            if abort is not None and abort.is_set():
                break
            tokens = select(seen, scores, rows)
            picked = tokens.tolist()
            keep: list[int] = []
            for j, r in enumerate(rows):
                new[r].append(picked[j])
                if finished(r, new[r]):
                    done.add(r)
                else:
                    keep.append(j)
            if on_step is not None:
                on_step()
            if not keep or step == max_new_tokens - 1:
                break
            seen = torch.cat([seen, tokens[:, None]], dim=-1)
            am = torch.cat([am, am.new_ones(am.shape[0], 1)], dim=-1)
            last = last + 1
            if len(keep) < len(rows):
                idx = torch.tensor(keep, device=seen.device)
                rows = [rows[j] for j in keep]
                tokens, seen, am, last = tokens[idx], seen[idx], am[idx], last[idx]
                cache = [(k[idx], v[idx], used) for k, v, used in cache]
            step_mask = None if bool((am == 1).all()) else am.bool()[:, None, None, :]
            scores, cache = self.forward(tokens[:, None], last, step_mask, cache)
        return {r: new[r] for r in rows if r not in done}


def repetition_penalty(torch: Any, input_ids: Any, scores: Any, penalty: float) -> Any:
    """transformers' ``RepetitionPenaltyLogitsProcessor`` (every id of the row, padding too)."""
    vocab = scores.shape[-1]
    ids = input_ids.clamp(max=vocab)
    padded = torch.nn.functional.pad(scores, (0, 1))
    score = torch.gather(padded, 1, ids)
    score = torch.where(score < 0, score * penalty, score / penalty)
    return padded.scatter(1, ids, score)[..., :vocab]


class FileTokenizer:
    """The part of a transformers fast tokenizer the backend uses, from ``tokenizer.json``.

    Built only for tokenizer classes that add nothing to the file (:func:`plain_tokenizer`):
    ``__call__`` → ``{"input_ids": [...]}``, ``decode``, the special token ids, and
    ``padding_side`` / ``pad_token`` (set by the backend). tests/test_hf_native.py compares
    ids and texts with transformers' tokenizer.
    """

    def __init__(self, model_dir: str | Path) -> None:
        from tokenizers import Tokenizer

        d = Path(model_dir)
        self._tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        self._tok.no_truncation()
        self._tok.no_padding()
        cfg = read_json(d / "tokenizer_config.json") or {}
        self.clean_up = bool(cfg.get("clean_up_tokenization_spaces", False))
        self.padding_side = "left"
        self._names = {n: token_text(cfg.get(n)) for n in ("bos_token", "eos_token", "pad_token",
                                                         "unk_token")}

    def _id(self, name: str) -> int | None:
        text = self._names.get(name)
        return None if text is None else self._tok.token_to_id(text)

    @property
    def bos_token_id(self) -> int | None:  # noqa: D102
        return self._id("bos_token")

    @property
    def eos_token_id(self) -> int | None:  # noqa: D102
        return self._id("eos_token")

    @property
    def pad_token_id(self) -> int | None:  # noqa: D102
        return self._id("pad_token")

    @property
    def eos_token(self) -> str | None:  # noqa: D102
        return self._names.get("eos_token")

    @property
    def pad_token(self) -> str | None:  # noqa: D102
        return self._names.get("pad_token")

    @pad_token.setter
    def pad_token(self, value: str | None) -> None:
        self._names["pad_token"] = value

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        """Token ids of `text`, as ``tokenizer(text)["input_ids"]``."""
        return {"input_ids": self._tok.encode(text, add_special_tokens=add_special_tokens).ids}

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """Text of `ids`, as transformers' ``decode``."""
        text = self._tok.decode(list(ids), skip_special_tokens=skip_special_tokens)
        return _clean_up(text) if self.clean_up else text


def _clean_up(text: str) -> str:
    """transformers' ``clean_up_tokenization``."""
    for a, b in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
                 (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(a, b)
    return text


def plain_tokenizer(model_dir: str | Path) -> bool:
    """Whether `model_dir`'s tokenizer is ``tokenizer.json`` and nothing more.

    Its class must be a generic one, it must not ask for BOS/EOS to be added outside the
    file's post-processor, and every special token it names must be a special added token of
    the file (transformers would otherwise add it on load and change the ids).
    """
    d = Path(model_dir)
    cfg = read_json(d / "tokenizer_config.json")
    tok = read_json(d / "tokenizer.json")
    if cfg is None or tok is None or cfg.get("tokenizer_class") not in _PLAIN_TOKENIZERS:
        return False
    if any(k in cfg for k in ("add_bos_token", "add_eos_token", "add_prefix_space")):
        return False
    if (d / "special_tokens_map.json").exists() or (d / "added_tokens.json").exists():
        return False
    special = {t.get("content") for t in tok.get("added_tokens") or [] if t.get("special")}
    named = [token_text(cfg.get(n)) for n in ("bos_token", "eos_token", "pad_token", "unk_token",
                                            "sep_token", "cls_token", "mask_token")]
    extra = cfg.get("extra_special_tokens") or cfg.get("additional_special_tokens") or []
    named += [token_text(x) for x in (extra.values() if isinstance(extra, dict) else extra)]
    return all(n in special for n in named if n is not None)
