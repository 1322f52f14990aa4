"""Tiny offline models for tests and benchmarks: a locally trained BPE tokenizer, a randomly
initialised Llama (head_dim 32, so vLLM's CPU backend loads it too) and a random LoRA adapter.

Nothing here downloads. Used by tests/, bench/ and the embedded-model code paths.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

_DEFAULT_TEXT = [
    "English sentence: The cat sat on the mat.\nNorwegian Bokmål sentence: Katten satt på matta.",
    "English sentence: I like coffee.\nBasque sentence: Kafea gustatzen zait.",
    "Jeg liker kaffe om morgenen. Hunden løper i parken. Norsk er et nordgermansk språk.",
    "Kaixo, zer moduz zaude gaur? Euskara hizkuntza zaharra da.",
    "The quick brown fox jumps over the lazy dog. Write a short poem about the sea.",
]


def build_tokenizer(texts: Sequence[str] = (), vocab_size: int = 512):  # noqa: ANN201
    """A byte-level BPE `PreTrainedTokenizerFast` with BOS/EOS/pad/unk and a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|pad|>", "<|unk|>"]
    tok = Tokenizer(models.BPE(unk_token="<|unk|>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(texts) or _DEFAULT_TEXT * 4, trainer)
    from tokenizers import processors

    bos_id = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A $B",
        special_tokens=[("<|begin_of_text|>", bos_id)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>",
                                   eos_token="<|end_of_text|>", pad_token="<|pad|>",
                                   unk_token="<|unk|>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(out_dir: Path, *, hidden: int = 64, layers: int = 2, heads: int = 2,
                     vocab_size: int = 512, seed: int = 0, texts: Sequence[str] = ()) -> Path:
    """Save a random tiny Llama checkpoint + tokenizer to `out_dir`; returns it."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out_dir = Path(out_dir)
    tok = build_tokenizer(texts, vocab_size)
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2,
                      num_hidden_layers=layers, num_attention_heads=heads,
                      num_key_value_heads=heads, max_position_embeddings=1024,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # larger logits: outputs depend visibly on weights (not near-uniform)
        model.model.embed_tokens.weight.mul_(5.0)
    model.save_pretrained(str(out_dir))
    tok.save_pretrained(out_dir)
    return out_dir


def build_tiny_adapter(model_dir: Path, out_dir: Path, *, r: int = 4, seed: int = 1,
                       scale: float = 2.0) -> Path:
    """A random LoRA adapter for `model_dir` with non-zero B, so it changes outputs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(model_dir)
    cfg = LoraConfig(r=r, lora_alpha=2 * r, target_modules=["q_proj", "v_proj", "o_proj"],
                     lora_dropout=0.0, task_type="CAUSAL_LM")
    model = get_peft_model(base, cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, scale)
    model.save_pretrained(str(out_dir))
    return Path(out_dir)


def error_lines(stderr: str) -> list[str]:
    """A command's stderr without blank lines, warnings and progress lines
    (``evalkit: <stage> n/m (...)``): what is left is what the user is told went wrong."""
    import re

    progress = re.compile(r"^evalkit: .+ \d+/\d+ \(.*\)$")
    return [x for x in stderr.splitlines()
            if x.strip() and not x.startswith("evalkit: warning:") and not progress.match(x)]
