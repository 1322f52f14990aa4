"""Reading run records into board rows, and the comparability checks.

A row is one variant directory (``<run root>/<variant slug>/``: one model, optionally with one
adapter). Only ``summary.jsonl`` (latest line per task, as `evalkit.records.read_summaries`) and
``samples/<task>.jsonl`` are read. Two cells of a column are comparable only when they share the
task version, the sample set (``sample_ids_sha256``) and, for sacrebleu metrics, the signature;
anything else is flagged (or refused with ``strict``), never silently compared.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.errors import BadInput
from evalkit.records import RunSummary, SampleRecord


@dataclass
class Row:
    """One evaluated variant: a model, optionally with an adapter (or merged)."""

    key: str                       # variant directory name (slug, unique per weights)
    run_dir: Path
    model: str
    model_hash: str
    adapter: str | None
    adapter_hash: str | None
    adapter_label: str | None = None
    summaries: dict[str, RunSummary] = field(default_factory=dict)
    label: str = ""
    _samples: dict[str, list[SampleRecord] | None] = field(default_factory=dict, repr=False)
    #: task -> (SHA-256 of the sample-record file, its bytes until parsed) or None (no file)
    _raw: dict[str, tuple[str, bytes | None] | None] = field(default_factory=dict, repr=False)

    @property
    def is_base(self) -> bool:
        """True for a plain base model (no adapter, not merged)."""
        return self.adapter is None and not self.key.endswith("-merged") and \
            "-merged-" not in self.key

    def samples_sha256(self, task: str) -> str | None:
        """SHA-256 of this row's sample-record file of `task` (None when it is missing).

        The bytes hashed are the bytes `samples` then parses, so a file replaced in between
        can never be cached under the other content's hash.
        """
        if task not in self._raw:
            import hashlib

            from evalkit.records import samples_path

            try:
                data = samples_path(self.run_dir, task).read_bytes()
            except FileNotFoundError:
                self._raw[task] = None
            else:
                self._raw[task] = (hashlib.sha256(data).hexdigest(), data)
        got = self._raw[task]
        return got[0] if got is not None else None

    def samples(self, task: str) -> list[SampleRecord] | None:
        """This row's sample records of `task` (cached), or None when the file is missing."""
        if task not in self._samples:
            from evalkit.records import read_sample_records

            raw = self._raw.get(task)
            try:
                self._samples[task] = read_sample_records(
                    self.run_dir, task, raw[1] if raw is not None else None)
            except FileNotFoundError:
                self._samples[task] = None
            if raw is not None:
                self._raw[task] = (raw[0], None)  # parsed: the bytes are no longer needed
        return self._samples[task]

    def meta(self) -> dict[str, Any]:
        """Run metadata shown on hover / in the details row."""
        any_s = next(iter(self.summaries.values()), None)
        out: dict[str, Any] = {"model": self.model, "model_hash": self.model_hash,
                               "adapter": self.adapter, "adapter_hash": self.adapter_hash,
                               "variant_dir": str(self.run_dir)}
        if any_s is not None:
            out.update(backend=any_s.backend, seed=any_s.seed,
                       chat_template=any_s.chat_template.get("applied",
                                                             any_s.chat_template.get(
                                                                 "chat_applied")),
                       versions=", ".join(f"{k} {v}" for k, v in any_s.versions.items()))
        out["runs"] = {t: f"{s.run_id} ({s.created_at})" for t, s in self.summaries.items()}
        return out


def _short(name: str | None) -> str:
    if not name:
        return ""
    p = name.rstrip("/").split("/")
    return p[-1] if Path(name).exists() or len(p) > 2 else name


def find_variant_dirs(paths: Sequence[Path]) -> list[Path]:
    """Variant directories in `paths`: each path is one itself or a run root holding some."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if (p / "summary.jsonl").is_file():
            out.append(p)
        elif p.is_dir():
            out += sorted(d for d in p.iterdir() if (d / "summary.jsonl").is_file())
        else:
            raise BadInput(f"{p}: no such run directory; pass a run root written by "
                           "`evalkit run --out DIR` or one of its <model>-<hash> directories")
    return out


def load_rows(paths: Sequence[Path], tasks: Sequence[str] | None = None) -> list[Row]:
    """Rows for every variant directory with at least one of `tasks` (all tasks if None).

    The same variant found under two run roots is one row; per task the newest summary wins.
    """
    from evalkit.records import read_summaries

    rows: dict[str, Row] = {}
    wanted = set(tasks) if tasks is not None else None
    from pydantic import ValidationError

    for d in find_variant_dirs(paths):
        try:
            summaries = read_summaries(d)
        except (ValidationError, ValueError) as exc:
            raise BadInput(f"{d / 'summary.jsonl'} has a malformed line ({exc.__class__.__name__})"
                           "; remove that line or re-run the variant") from exc
        for s in summaries:
            if wanted is not None and s.task not in wanted:
                continue
            row = rows.get(d.name)
            if row is None:
                row = rows[d.name] = Row(d.name, d, s.model, s.model_hash, s.adapter,
                                         s.adapter_hash, s.adapter_label)
            old = row.summaries.get(s.task)
            if old is None or s.created_at >= old.created_at:
                row.summaries[s.task] = s
                if old is not None and row.run_dir != d:
                    row.run_dir = d  # newest records of this variant live here
                    row._samples.clear()
                    row._raw.clear()
    _label(list(rows.values()))
    return sorted(rows.values(), key=lambda r: (r.model, r.adapter is not None, r.key))


def _label(rows: list[Row]) -> None:
    for r in rows:
        r.label = _short(r.model) + (f" + {r.adapter_label or _short(r.adapter)}"
                                     if r.adapter else "")
        if "-merged" in r.key:
            r.label += " (merged)"
        limits = sorted({s.limit for s in r.summaries.values() if s.limit is not None})
        if limits:  # a partial run must never look like a full one
            r.label += f" (--limit {', '.join(map(str, limits))})"
    counts = Counter(r.label for r in rows)
    for r in rows:
        if counts[r.label] > 1:  # same names, different weights: disambiguate by hash
            r.label += f" [{r.key.rsplit('-', 1)[-1][:6]}]"


@dataclass(frozen=True)
class Mismatch:
    """Why one cell cannot be compared with the rest of its column."""

    row: str
    task: str
    metric: str | None
    reason: str


def comparability_key(s: RunSummary, metric: str) -> tuple[str, str, str]:
    """What must agree for two cells of a column to be compared."""
    # the whole signature, version included: sacrebleu's rule for comparable scores
    sig = str(s.metrics.get(metric, {}).get("signature") or "")
    return (s.task_version, s.sample_ids_sha256, sig)


def describe_difference(a: tuple[str, str, str], b: tuple[str, str, str]) -> str:
    """Human words for a differing comparability key (a: this cell, b: the reference)."""
    parts = []
    if a[0] != b[0]:
        parts.append(f"task_version {a[0]} vs {b[0]}")
    if a[1] != b[1]:
        parts.append(f"different sample set (sample_ids_sha256 {a[1][:8]} vs {b[1][:8]})")
    if a[2] != b[2]:
        parts.append(f"sacrebleu signature {a[2] or '-'} vs {b[2] or '-'}")
    return "; ".join(parts)
