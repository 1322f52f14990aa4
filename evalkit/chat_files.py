"""Chat templates rendered straight from a checkpoint's tokenizer files, without transformers.

Rendering a prompt needs only the template text and the special-token strings it mentions;
importing transformers for that costs seconds. :func:`load` reads them from the files
transformers reads (``chat_template.jinja``, else ``tokenizer_config.json``'s
``chat_template``; the named special tokens of ``tokenizer_config.json``, overlaid by a legacy
``special_tokens_map.json`` as transformers 5 does) and renders with the Jinja environment of
transformers' ``apply_chat_template`` (sandboxed, ``trim_blocks``/``lstrip_blocks``, loop
controls, its ``tojson``, ``raise_exception`` and ``strftime_now``, the ``{% generation %}``
tag); token ids come from ``tokenizer.json`` through the ``tokenizers`` library.

It declines (returns None, and the caller uses transformers) whenever the files do not settle
the result: no ``tokenizer.json`` (slow or sentencepiece-only tokenizers), several named
templates, a tokenizer class with its own templating (mistral-common), or a template that uses a
special token the files do not define (a tokenizer class may supply a default for it), a
template that is not valid Jinja (transformers reports it when it is used).
tests/test_chat_files.py checks text and token ids against transformers' ``apply_chat_template``
for the shipped default model's tokenizer, the test tokenizer and a ChatML-style one.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.errors import BadInput

#: the named special tokens transformers passes to every chat template
SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                       "cls_token", "mask_token")
#: variables transformers passes that are not special tokens (tools/documents are None here)
_PASSED = frozenset({"messages", "add_generation_prompt", "tools", "documents"})
#: template variables whose value differs between transformers versions: leave them to it
_VERSION_DEPENDENT = frozenset({"additional_special_tokens", "extra_special_tokens"})


def token_text(value: Any) -> str | None:
    """A special token's text from its serialised form (a string or an AddedToken dict)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def read_json(path: Path) -> Any:
    """The JSON value in `path`, or None when it is missing or not valid JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def _special_tokens(config: dict[str, Any], model_dir: Path) -> dict[str, str]:
    """The special-token map transformers' tokenizer would pass to the template."""
    raw: dict[str, Any] = dict(config)
    legacy = model_dir / "special_tokens_map.json"
    if "added_tokens_decoder" not in config and legacy.is_file():
        extra = read_json(legacy)
        if isinstance(extra, dict):
            raw.update({k: v for k, v in extra.items() if k != "extra_special_tokens"})
    if isinstance(raw.get("extra_special_tokens"), dict):
        raw.update(raw["extra_special_tokens"])  # model-specific named tokens
    out: dict[str, str] = {}
    for key, value in raw.items():
        if key in SPECIAL_TOKEN_NAMES or (key.endswith("_token") and token_text(value)):
            text = token_text(value)
            if text is not None:
                out[key] = text
    return out


@functools.lru_cache(maxsize=1)
def _generation_tag() -> type:
    """The Jinja extension for ``{% generation %}…{% endgeneration %}``: transformers tracks
    assistant spans with it; rendering text, the block is output unchanged."""
    import jinja2
    from jinja2.ext import Extension

    class GenerationTag(Extension):
        tags = {"generation"}

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_block"), [], [], body
                                          ).set_lineno(lineno)

        def _block(self, caller: Any) -> str:
            return caller()

    return GenerationTag


@functools.lru_cache(maxsize=16)
def _compile(template: str) -> Any:
    """The template compiled in transformers' environment (cached per template text)."""
    from datetime import datetime

    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None,
               sort_keys: bool = False) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(fmt: str) -> str:
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[_generation_tag(), loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env, env.from_string(template)


def _variables(template: str) -> set[str]:
    """Names the template reads from its context (beyond the environment's globals)."""
    from jinja2 import meta

    env, _ = _compile(template)
    return set(meta.find_undeclared_variables(env.parse(template))) - set(env.globals)


class FileTokenizer:
    """The part of a transformers tokenizer that prompt rendering uses, read from its files."""

    def __init__(self, model_dir: Path, template: str | None, special: dict[str, str]) -> None:
        self.model_dir = model_dir
        self.chat_template = template
        self.special_tokens_map = special

    @functools.cached_property
    def backend(self) -> Any:
        """The ``tokenizers`` tokenizer of ``tokenizer.json`` (loaded on first use)."""
        from tokenizers import Tokenizer

        path = self.model_dir / "tokenizer.json"
        try:
            return Tokenizer.from_file(str(path))
        except Exception as exc:  # noqa: BLE001 - the Rust side raises plain Exceptions
            first = next((x for x in str(exc).splitlines() if x.strip()), type(exc).__name__)
            raise BadInput(f"{path} failed to load ({first[:200]}); re-save the tokenizer "
                           "with tokenizer.save_pretrained") from None

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of `text` (the post-processor adds BOS etc. when asked)."""
        return list(self.backend.encode(text, add_special_tokens=add_special_tokens).ids)

    def apply_chat_template(self, messages: Sequence[dict[str, Any]], tokenize: bool = True,
                            add_generation_prompt: bool = False) -> str | list[int]:
        """transformers' ``apply_chat_template`` for one conversation (text or token ids)."""
        import jinja2

        if self.chat_template is None:
            raise BadInput(f"{self.model_dir}: the tokenizer has no chat template; use "
                           "--chat-template off")
        if not messages:
            raise ValueError("Cannot apply chat template to an empty conversation.")
        _, compiled = _compile(self.chat_template)
        try:
            text = compiled.render(messages=list(messages), tools=None, documents=None,
                                   add_generation_prompt=add_generation_prompt,
                                   **self.special_tokens_map)
        except jinja2.exceptions.TemplateError as exc:
            raise BadInput(f"the chat template of {self.model_dir} failed: {exc}; fix the "
                           "template or use --chat-template off") from None
        return self.encode(text, add_special_tokens=False) if tokenize else text


def load(model_dir: Path | str) -> FileTokenizer | None:
    """A :class:`FileTokenizer` for `model_dir`, or None where only transformers can tell."""
    import jinja2

    d = Path(model_dir)
    config = read_json(d / "tokenizer_config.json")
    if not isinstance(config, dict) or not (d / "tokenizer.json").is_file():
        return None
    if str(config.get("tokenizer_class") or "").startswith("MistralCommon"):
        return None
    if (d / "additional_chat_templates").is_dir():
        return None
    if (d / "chat_template.jinja").is_file():
        try:
            template: Any = (d / "chat_template.jinja").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
    else:
        template = config.get("chat_template")
    if template is not None and not isinstance(template, str):
        return None  # several named templates
    special = _special_tokens(config, d)
    if template is not None:
        try:
            names = _variables(template)
        except jinja2.exceptions.TemplateSyntaxError:
            return None  # transformers reports it where it is used, as before
        unknown = {n for n in names - _PASSED
                   if n.endswith("_token") or n in _VERSION_DEPENDENT} - set(special)
        if unknown:
            return None
    return FileTokenizer(d, template, special)
