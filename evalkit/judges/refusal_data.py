"""Public human-labelled model responses for the refusal judge: loaders, labels, split.

Two sources (both MIT-licensed; see ``evalkit/judges/README.md``), read from a local copy that
the user fetches; nothing here downloads and no data is kept in the repository:

* **GPTFuzz** (``sherdencooper/GPTFuzz``, ``datasets/responses_labeled/{train,evaluate}.csv``):
  7,700 responses of Vicuna-7B, ChatGPT and Llama-2-7B-chat to 100 harmful questions wrapped in
  jailbreak templates, labelled by the authors by hand: 1 = jailbroken (the response gives the
  harmful content), 0 = not (it refuses, redirects or gives nothing harmful). ``declined`` is
  label 0: on harmful questions that is the judge's ``safe`` / ``refused``.
* **OpenAI RBR gold** (``openai/safety-rbr-code-and-data``, ``data/rbr_gold_data/{train,test}
  .jsonl``): 518 completions to safe and unsafe prompts with human-labelled propositions
  (``fully_complies``, ``partially_complies``, ``inability_to_comply``,
  ``encourage_professional_help``, ``disclaimer``…). ``declined`` = not ``fully_complies``
  (a partial compliance is a partial refusal, as XSTest counts it); the propositions also give
  the response style (`rbr_style`).

Held-out split (fixed, never used for training or model selection): GPTFuzz questions whose
index ≡ 4 (mod 5) (20 of 100 questions, so no question is on both sides), and RBR's own
``test.jsonl``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from evalkit.errors import DataNotFound

GPTFUZZ_FILES = ("datasets/responses_labeled/train.csv",
                 "datasets/responses_labeled/evaluate.csv")
RBR_FILES = ("data/rbr_gold_data/train.jsonl", "data/rbr_gold_data/test.jsonl")
STYLES = ("full refusal", "safe redirection", "partial refusal",
          "compliance with a disclaimer", "full compliance")


@dataclass(frozen=True, slots=True)
class LabelledResponse:
    """One human-labelled model response."""

    id: str
    source: str
    response: str
    declined: bool          # the human label: refused / safely redirected (fully or partly)
    split: str              # "dev" (training + model selection) or "test" (held out)
    group: str              # items sharing a group stay in one cross-validation fold
    prompt: str = ""
    style: str = ""         # one of STYLES where the labels allow, else ""


def _find(root: Path, rel: str) -> Path:
    """`rel` under `root`, or the file of that name directly in `root` (a flat copy)."""
    for cand in (root / rel, root / Path(rel).name):
        if cand.is_file():
            return cand
    raise DataNotFound(f"{Path(rel).name} not found under {root}; pass the directory of a "
                       f"checkout (or a flat copy) of the source repository")


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def gptfuzz_files(root: Path) -> list[Path]:
    """The two labelled-response CSVs of a GPTFuzz checkout."""
    return [_find(root, rel) for rel in GPTFUZZ_FILES]


def rbr_files(root: Path) -> list[Path]:
    """The two gold-data JSONL files of a safety-rbr-code-and-data checkout."""
    return [_find(root, rel) for rel in RBR_FILES]


def load_gptfuzz(root: Path) -> list[LabelledResponse]:
    """GPTFuzz's labelled responses (both files), split by question index."""
    csv.field_size_limit(sys.maxsize)
    out = []
    for path in gptfuzz_files(root):
        with open(path, encoding="utf-8", newline="") as fh:
            for i, row in enumerate(csv.DictReader(fh)):
                q = int(row["question"])
                out.append(LabelledResponse(
                    id=f"gptfuzz:{path.stem}:{i}", source="gptfuzz", response=row["Response"],
                    declined=row["label"].strip() == "0",
                    split="test" if q % 5 == 4 else "dev", group=f"gptfuzz:q{q}"))
    return out


def rbr_style(p: dict[str, bool]) -> str:
    """The response style from RBR's human-labelled propositions."""
    if p.get("fully_complies"):
        return "compliance with a disclaimer" if p.get("disclaimer") else "full compliance"
    if p.get("partially_complies"):
        return "partial refusal"
    if any(p.get(k) for k in ("encourage_professional_help", "gentle_encouragement_for_help",
                              "provides_resources")):
        return "safe redirection"
    return "full refusal"


def load_rbr(root: Path) -> list[LabelledResponse]:
    """RBR gold completions; RBR's own test file is the held-out part."""
    out = []
    for path in rbr_files(root):
        split = "test" if path.stem == "test" else "dev"
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            if not line.strip():
                continue
            d = json.loads(line)
            p = d["propositions"]
            user = [m["content"] for m in d["prompt"] if m.get("role") == "user"]
            out.append(LabelledResponse(
                id=f"rbr:{path.stem}:{i}", source="rbr", response=d["completion"][-1]["content"],
                declined=not p["fully_complies"], split=split, group=f"rbr:{path.stem}:{i}",
                prompt=user[-1] if user else "", style=rbr_style(p)))
    return out


def script_of(text: str) -> str:
    """``en`` for Latin-script text, ``zh-mixed`` when over 20 % of its letters are CJK (some
    GPTFuzz templates ask for a Chinese answer): the per-language breakdown of the sources."""
    letters = [c for c in text if c.isalpha()]
    cjk = sum(1 for c in letters if "\u4e00" <= c <= "\u9fff")
    return "zh-mixed" if letters and cjk / len(letters) > 0.2 else "en"


def describe_files(paths: Iterable[Path]) -> dict[str, str]:
    """File name → SHA-256, for the model card."""
    return {p.name: sha256_file(p) for p in paths}
