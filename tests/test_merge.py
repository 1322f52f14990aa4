"""evalkit merge: merged weights equal the recipe's formula bit for bit, for every tensor.

Three tiny offline Llamas share one tokenizer and differ by seed: base (0), "cpt" (1),
"instruct" (2). Expected weights are computed here independently with plain torch on fully
loaded state dicts, in the documented order: ``anchor + w·(W_i − W_base)`` in float32.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
st = pytest.importorskip("safetensors.torch")

from evalkit.merge import diploma, language_vector, task_arithmetic  # noqa: E402
from evalkit.merge.engine import merge  # noqa: E402

ALPHAS = (0.0, 0.5, 1.0, 1.25, -0.3)


def _untied(out: Path, seed: int) -> Path:
    """A tiny Llama with a separate lm_head (same tokenizer as build_tiny_model)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from evalkit.testing import build_tokenizer

    tok = build_tokenizer()
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                      num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                      max_position_embeddings=256, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      tie_word_embeddings=False)
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module", params=["tied", "untied"])
def family(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> dict[str, Path]:
    from evalkit.testing import build_tiny_model

    root = tmp_path_factory.mktemp(f"family-{request.param}")
    build = build_tiny_model if request.param == "tied" else (
        lambda out, seed: _untied(out, seed))
    return {role: build(root / role, seed=seed)
            for role, seed in (("base", 0), ("cpt", 1), ("instruct", 2))}


def _sd(path: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    files = sorted(path.glob("*.safetensors"))
    assert files, f"no weights in {path}"
    for f in files:
        out.update(st.load_file(f))
    return out


def _assert_equal(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert sorted(got) == sorted(want)
    for k in want:
        assert got[k].dtype == want[k].dtype, k
        assert torch.equal(got[k], want[k]), f"{k}: max |diff| {(got[k] - want[k]).abs().max()}"


def test_diploma_equals_formula_for_every_tensor(family: dict[str, Path], tmp_path: Path) -> None:
    b, c, i = (_sd(family[r]) for r in ("base", "cpt", "instruct"))
    tied = "lm_head.weight" not in b
    for a in ALPHAS:
        out = tmp_path / f"d{a}"
        res = merge(diploma(str(family["base"]), str(family["cpt"]), str(family["instruct"]), a),
                    out)
        _assert_equal(_sd(out), {k: c[k] + a * (i[k] - b[k]) for k in b})
        assert res.record["tied_embeddings"] is tied
        assert res.record["alpha"] == a and res.record["recipe"] == "diploma"
    # α = 0 returns the CPT weights bit for bit (evalkit anchors at W_cpt)
    _assert_equal(_sd(tmp_path / "d0.0"), c)


def test_language_vector_equals_formula(family: dict[str, Path], tmp_path: Path) -> None:
    b, lang, i = (_sd(family[r]) for r in ("base", "cpt", "instruct"))
    for lam in (0.5, 0.75, 1.0):
        out = tmp_path / f"l{lam}"
        merge(language_vector(str(family["base"]), str(family["cpt"]), str(family["instruct"]),
                              lam), out)
        _assert_equal(_sd(out), {k: i[k] + lam * (lang[k] - b[k]) for k in b})


def test_task_arithmetic_two_models_and_lambda(family: dict[str, Path], tmp_path: Path) -> None:
    b, m1, m2 = (_sd(family[r]) for r in ("base", "cpt", "instruct"))
    w1, w2, lam = 0.7, 0.4, 0.9
    merge(task_arithmetic(str(family["base"]), [str(family["cpt"]), str(family["instruct"])],
                          [w1, w2], lam), tmp_path / "ta")
    want = {k: b[k] + ((lam * w1) * (m1[k] - b[k]) + (lam * w2) * (m2[k] - b[k])) for k in b}
    _assert_equal(_sd(tmp_path / "ta"), want)


def test_chunks_shards_and_dtype_do_not_change_values(family: dict[str, Path],
                                                      tmp_path: Path) -> None:
    spec = diploma(str(family["base"]), str(family["cpt"]), str(family["instruct"]), 0.75)
    whole = merge(spec, tmp_path / "whole")
    tiny = merge(spec, tmp_path / "tiny", chunk_bytes=1000, shard_bytes=60_000)
    assert len(tiny.record["weight_files"]) > 1
    index = json.loads((tmp_path / "tiny" / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == set(tiny.record["weight_files"])
    assert index["metadata"]["total_size"] == whole.record["weight_bytes"]
    _assert_equal(_sd(tmp_path / "tiny"), _sd(tmp_path / "whole"))
    # bf16 output: the float32 result, cast once at the end
    merge(spec, tmp_path / "bf16", dtype="bfloat16")
    _assert_equal(_sd(tmp_path / "bf16"),
                  {k: v.to(torch.bfloat16) for k, v in _sd(tmp_path / "whole").items()})
    assert json.loads((tmp_path / "bf16" / "config.json").read_text())["dtype"] == "bfloat16"


def test_output_loads_with_transformers(family: dict[str, Path], tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "m"
    res = merge(diploma(str(family["base"]), str(family["cpt"]), str(family["instruct"]), 1.0),
                out, shard_bytes=100_000)
    model, info = AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    sd = _sd(out)
    for k, v in model.state_dict().items():
        if k in sd:
            assert torch.equal(v, sd[k]), k
    emb, head = model.model.embed_tokens.weight, model.lm_head.weight
    if res.record["tied_embeddings"]:  # stored once, re-tied on load
        assert "lm_head.weight" not in sd and head.data_ptr() == emb.data_ptr()
    else:
        assert torch.equal(head, sd["lm_head.weight"])
    tok = AutoTokenizer.from_pretrained(out)
    assert (out / "tokenizer.json").read_bytes() == (family["instruct"] / "tokenizer.json"
                                                     ).read_bytes()
    ids = tok("Katten satt", return_tensors="pt").input_ids
    assert model(ids).logits.shape[-1] == emb.shape[0]
    rec = json.loads((out / "evalkit_merge.json").read_text())
    assert set(rec["inputs"]) == {"base", "cpt", "instruct"}
    assert all(len(v["hash"]) == 64 for v in rec["inputs"].values())
