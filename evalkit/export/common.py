"""What every export reads: board rows (one per variant) and per-sample metric values."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.errors import BadInput


def load(runs: Sequence[Path], tasks: Sequence[str] | None) -> list[Any]:
    """Rows (`evalkit.leaderboard.collect.Row`) of the variant dirs under `runs`."""
    from evalkit.leaderboard.collect import load_rows

    rows = load_rows(list(runs), list(tasks) if tasks else None)
    if not rows:
        raise BadInput(f"no run records under {', '.join(map(str, runs))}"
                       + (f" for task(s) {', '.join(tasks)}" if tasks else "")
                       + "; run `evalkit run MODEL --out DIR` first")
    return rows


def finite(v: Any) -> float | None:
    """A finite float (bools as 0/1), or None."""
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)) and math.isfinite(v):
        return float(v)
    return None


def per_item(row: Any, task: str) -> dict[str, dict[str, float | None]]:
    """metric → sample id → the sample's own value, for every summary metric (breakdowns and
    corpus-level sacrebleu scores excepted) whose per-sample values the records give."""
    from evalkit.leaderboard.config import declared_sample_keys
    from evalkit.leaderboard.labels import is_breakdown
    from evalkit.leaderboard.values import sample_values

    s = row.summaries[task]
    recs = row.samples(task)
    declared = declared_sample_keys(task)
    out: dict[str, dict[str, float | None]] = {}
    for name in s.metrics:
        if is_breakdown(name):
            continue
        sv, _ = sample_values(name, s, recs, declared.get(name))
        if sv is not None and sv.kind != "mt":
            out[name] = dict(zip(sv.ids, sv.per_item()))
    return out


def epoch(created_at: str) -> float:
    """Unix time of an ISO timestamp (records store UTC with an offset)."""
    t = dt.datetime.fromisoformat(created_at)
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.timestamp()


def sha256(text: str) -> str:
    """Hex sha256 of UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def outputs_text(outputs: list[dict[str, Any]]) -> list[str]:
    """Every generated text of a record (log-likelihood outputs described in words)."""
    from evalkit.view.build import output_texts

    return output_texts(outputs)


def reference_text(ref: Any) -> str:
    """A record's reference as text (JSON for structured references)."""
    import json

    if ref is None:
        return ""
    return ref if isinstance(ref, str) else json.dumps(ref, ensure_ascii=False, sort_keys=True)


def jsonl_line(obj: Any) -> str:
    """One JSON line, UTF-8 kept, with U+2028/U+2029 escaped: readers that split lines on every
    Unicode line break (Python's ``str.splitlines``) still see one record per line."""
    import json

    return (json.dumps(obj, ensure_ascii=False, default=str)
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
