"""Chat prompts rendered from tokenizer files equal transformers' ``apply_chat_template``.

Every tokenizer evalkit ships or tests with: the embedded default model's (the shipped files
when present, else the same construction trained on a few lines), ``evalkit.testing``'s tiny
tokenizer, a ChatML-style one with a system default, whitespace control and an error branch,
and a legacy layout (template in ``tokenizer_config.json``, tokens as AddedToken dicts,
``special_tokens_map.json``). Text and token ids must be identical.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit import chat_files

pytest.importorskip("transformers")

CHATML = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}\n"
    "{%- for message in messages %}\n"
    "    {%- if message['role'] not in ['system', 'user', 'assistant'] %}\n"
    "        {{- raise_exception('unknown role ' + message['role']) }}\n"
    "    {%- elif message['role'] != 'system' or not loop.first %}\n"
    "        {{- '<|im_start|>' + message['role'] + '\\n' + message['content'] | trim }}"
    "{{- '<|im_end|>\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if tools %}{{ tools | tojson }}{% endif %}\n"
    "{% if add_generation_prompt %}\n"
    "    {{ '<|im_start|>assistant\\n' }}\n"
    "{% endif %}"
)

CONVERSATIONS = [
    [{"role": "user", "content": "Translate to Norwegian Bokmål: The cat sat on the mat."}],
    [{"role": "system", "content": "Svar på norsk."},
     {"role": "user", "content": "  Hvor ligger Bergen?\n"}],
    [{"role": "user", "content": "Kaixo! <b>Zer</b> moduz & \"zu\"?"},
     {"role": "assistant", "content": "Ondo, eskerrik asko."},
     {"role": "user", "content": "Eta zu? æøå ÆØÅ — “quotes” {{ not jinja }}"}],
]


def _embedded(root: Path) -> Path:
    from evalkit.embedded.build import SHIPPED_DIR

    if (SHIPPED_DIR / "tokenizer.json").is_file():
        return SHIPPED_DIR
    from evalkit.embedded.train import train_tokenizer
    from evalkit.testing import _DEFAULT_TEXT

    tok = train_tokenizer(_DEFAULT_TEXT * 8, vocab_size=300)
    tok.save_pretrained(root / "embedded")
    return root / "embedded"


def _tiny(root: Path) -> Path:
    from evalkit.testing import build_tokenizer

    build_tokenizer().save_pretrained(root / "tiny")
    return root / "tiny"


def _chatml(root: Path) -> Path:
    from evalkit.testing import build_tokenizer

    tok = build_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.chat_template = CHATML
    tok.save_pretrained(root / "chatml")
    return root / "chatml"


def _legacy(root: Path) -> Path:
    """Template inside tokenizer_config.json, AddedToken dicts, special_tokens_map.json."""
    d = _tiny(root)
    legacy = root / "legacy"
    legacy.mkdir()
    (legacy / "tokenizer.json").write_bytes((d / "tokenizer.json").read_bytes())
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    cfg.pop("added_tokens_decoder", None)
    template = (d / "chat_template.jinja").read_text() if \
        (d / "chat_template.jinja").is_file() else cfg["chat_template"]
    cfg["chat_template"] = template.replace("<|end|>", "{{ eos_token }}")
    cfg["bos_token"] = {"__type": "AddedToken", "content": "<|begin_of_text|>", "lstrip": False,
                        "normalized": False, "rstrip": False, "single_word": False}
    cfg["eos_token"] = "<|unk|>"  # overridden by the legacy map below, as transformers does
    (legacy / "tokenizer_config.json").write_text(json.dumps(cfg))
    (legacy / "special_tokens_map.json").write_text(json.dumps({"eos_token": {
        "content": "<|end_of_text|>", "lstrip": False, "normalized": False, "rstrip": False,
        "single_word": False}}))
    return legacy


BUILDERS = {"embedded": _embedded, "tiny": _tiny, "chatml": _chatml, "legacy": _legacy}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def tokenizer_dir(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Path:
    return BUILDERS[request.param](tmp_path_factory.mktemp(request.param))


def test_text_and_ids_equal_transformers(tokenizer_dir: Path) -> None:
    from transformers import AutoTokenizer

    ours = chat_files.load(tokenizer_dir)
    assert ours is not None, "these files settle the template: no transformers fallback"
    ref = AutoTokenizer.from_pretrained(tokenizer_dir)
    assert ours.chat_template == ref.chat_template
    for conv in CONVERSATIONS:
        for gen in (True, False):
            want = ref.apply_chat_template(conv, tokenize=False, add_generation_prompt=gen)
            got = ours.apply_chat_template(conv, tokenize=False, add_generation_prompt=gen)
            assert got == want
            want_ids = ref.apply_chat_template(conv, tokenize=True, add_generation_prompt=gen,
                                               return_dict=False)
            assert ours.apply_chat_template(conv, add_generation_prompt=gen) == list(want_ids)
            assert ours.encode(want) == ref(want)["input_ids"]


def test_renderer_prompts_equal_transformers_renderer(tokenizer_dir: Path) -> None:
    from transformers import AutoTokenizer

    from evalkit.chat import ChatRenderer, load_chat_tokenizer
    from evalkit.types import Message

    fast = ChatRenderer(load_chat_tokenizer(str(tokenizer_dir), "m"), "on", "m")
    slow = ChatRenderer(AutoTokenizer.from_pretrained(tokenizer_dir), "on", "m")
    assert fast.template_sha256 == slow.template_sha256
    for prompt in ["Hei", [Message("system", "Kort."), Message("user", "Hvem er du?")]]:
        assert fast.render(prompt, True) == slow.render(prompt, True)


def test_unknown_role_raises_like_transformers(tmp_path: Path) -> None:
    from evalkit.errors import BadInput

    ours = chat_files.load(_chatml(tmp_path))
    with pytest.raises(BadInput, match="unknown role tool"):
        ours.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)


def test_files_that_do_not_settle_it_fall_back(tmp_path: Path) -> None:
    d = _tiny(tmp_path)
    cfg_path = d / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    assert chat_files.load(d) is not None
    # a template reading a special token the files leave to the tokenizer class
    (d / "chat_template.jinja").write_text("{{ sep_token }}{{ messages[0]['content'] }}")
    assert chat_files.load(d) is None
    (d / "chat_template.jinja").write_text("{% for m in messages %}")  # not valid Jinja
    assert chat_files.load(d) is None
    (d / "chat_template.jinja").unlink()
    cfg["chat_template"] = [{"name": "default", "template": "x"}, {"name": "rag", "template": "y"}]
    cfg_path.write_text(json.dumps(cfg))
    assert chat_files.load(d) is None
    cfg.pop("chat_template")
    cfg_path.write_text(json.dumps(cfg))
    assert chat_files.load(d).chat_template is None  # no template: plain prompts
    (d / "tokenizer.json").unlink()
    assert chat_files.load(d) is None


def test_rendering_imports_no_transformers(tmp_path: Path) -> None:
    d = _chatml(tmp_path)
    code = (
        "import sys\n"
        "from evalkit.chat import ChatRenderer, load_chat_tokenizer\n"
        f"r = ChatRenderer(load_chat_tokenizer({str(d)!r}, 'm'), 'on', 'm')\n"
        "text, special = r.render('Hei', True)\n"
        "assert '<|im_start|>assistant' in text and not special, text\n"
        "heavy = [m for m in ('transformers', 'torch') if m in sys.modules]\n"
        "assert not heavy, heavy\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]


def test_cli_run_renders_like_transformers_and_a_stored_rerun_imports_neither(
        tiny_model: Path, data_dir: Path, tmp_path: Path) -> None:
    """Through the CLI: chat prompts in the records are transformers' text; a first run
    imports torch but not transformers; a rerun whose
    generations are all stored needs no model, so it imports neither torch nor transformers."""
    import gzip
    import os

    from transformers import AutoTokenizer

    from evalkit.prompts import translation_prompt
    from evalkit.records import read_sample_records

    out = tmp_path / "o"
    cmd = [sys.executable, "-X", "importtime", "-m", "evalkit.cli", "run", str(tiny_model),
           "--tasks", "flores:eng_Latn-nob_Latn", "--limit", "2", "--max-new-tokens", "4",
           "--chat-template", "on", "--no-leaderboard", "--json", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def imported(res: subprocess.CompletedProcess) -> set[str]:
        return {line.split("|")[-1].strip() for line in res.stderr.splitlines()
                if line.startswith("import time:")}

    first = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    # the model needs torch; evalkit's Llama engine stands in for transformers' model
    assert "torch" in imported(first) and "transformers" not in imported(first)
    src = gzip.decompress((data_dir / "flores200/devtest/eng_Latn.devtest.gz").read_bytes()
                          ).decode().splitlines()
    ref = AutoTokenizer.from_pretrained(tiny_model)
    run_dir = next(p for p in out.iterdir() if (p / "samples").is_dir())
    recs = read_sample_records(run_dir, "flores:eng_Latn-nob_Latn:devtest")
    assert len(recs) == 2
    for r in recs:
        user = translation_prompt("eng_Latn", "nob_Latn", src[int(r.sample_id.split("-")[1])])
        assert r.prompts == [ref.apply_chat_template([{"role": "user", "content": user}],
                                                     tokenize=False, add_generation_prompt=True)]
    again = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert not {"torch", "transformers"} & imported(again)
