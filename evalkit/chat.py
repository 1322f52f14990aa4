"""Prompt rendering, done once in the runner so every backend sees identical prompt text."""

from __future__ import annotations

import re
from typing import Any, Literal

from evalkit.types import Message, Prompt, sha256_text

ChatMode = Literal["auto", "on", "off"]

# Names of instruction-tuned checkpoints; used only by --chat-template auto for tasks that
# do not ask for chat themselves (FLORES), and recorded in every summary.
_INSTRUCT_RE = re.compile(r"(instruct|chat|-it\b|-it-|sft|dpo|diploma)", re.IGNORECASE)


def load_chat_tokenizer(model_dir: str, model_name: str) -> Any:
    """What a `ChatRenderer` needs of a checkpoint's tokenizer, read without transformers where
    the files settle it (`evalkit.chat_files`), else transformers' ``AutoTokenizer``."""
    from evalkit import chat_files

    tok = chat_files.load(model_dir)
    if tok is not None:
        return tok
    from transformers import AutoTokenizer

    from evalkit.errors import load_or_explain

    return load_or_explain(lambda: AutoTokenizer.from_pretrained(model_dir),
                           f"the tokenizer of {model_name}",
                           "re-save it with tokenizer.save_pretrained")


class ChatRenderer:
    """Renders prompts with a tokenizer's chat template (or leaves plain prompts alone).

    `tokenizer` is anything with ``chat_template`` and transformers' ``apply_chat_template``:
    a transformers tokenizer or an `evalkit.chat_files.FileTokenizer` (same text).
    """

    def __init__(self, tokenizer: Any, mode: ChatMode, model_name: str) -> None:
        self.tokenizer = tokenizer
        self.mode = mode
        self.template: str | None = getattr(tokenizer, "chat_template", None) if tokenizer else None
        self.looks_instruct = bool(_INSTRUCT_RE.search(model_name))

    @property
    def template_sha256(self) -> str | None:
        """Hash of the chat template text, for records."""
        return sha256_text(self.template) if self.template else None

    def use_chat(self, task_prefers_chat: bool) -> bool:
        """Whether a task's prompts go through the chat template in this run."""
        if self.template is None or self.mode == "off":
            return False
        if self.mode == "on":
            return True
        return task_prefers_chat or self.looks_instruct

    def render(self, prompt: Prompt, chat: bool) -> tuple[str, bool]:
        """(prompt text, add_special_tokens) for a backend."""
        if isinstance(prompt, str) and not chat:
            return prompt, True
        msgs = [Message("user", prompt)] if isinstance(prompt, str) else list(prompt)
        if self.template is None:  # a conversation without a template: plain transcript
            text = "\n".join(f"{m.role}: {m.content}" for m in msgs) + "\nassistant:"
            return text, True
        text = self.tokenizer.apply_chat_template(
            [{"role": m.role, "content": m.content} for m in msgs], tokenize=False,
            add_generation_prompt=True)
        return text, False
