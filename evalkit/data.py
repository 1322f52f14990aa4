"""The data layer: a local mirror first, then the Hugging Face hub, with file hashes recorded.

Mirror resolution order: an explicit ``--data-dir``, ``$EVALKIT_DATA_DIR``, then a
``shared/data`` folder beside the checkout or the working directory (the layout of
``../shared/data``; see its README). Gzipped files are read transparently: asking for
``flores200/dev/eng_Latn.dev`` finds ``eng_Latn.dev.gz``. Hub loading uses `datasets` only when
a file is not mirrored, and only then imports it.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.errors import BadInput, DataNotFound

_REPO_ROOT = Path(__file__).resolve().parent.parent


def _candidates() -> list[Path]:
    """Mirror locations tried when none is given: ``$EVALKIT_DATA_DIR``, else ``shared/data``
    beside (``../shared/data``) or inside the working directory or the checkout."""
    env = os.environ.get("EVALKIT_DATA_DIR")
    if env:
        return [Path(env).expanduser()]
    return [base / rel for base in (Path.cwd(), _REPO_ROOT)
            for rel in ("../shared/data", "shared/data")]


def default_data_dir() -> Path | None:
    """The mirror to use when none is given, or None."""
    env = os.environ.get("EVALKIT_DATA_DIR")
    if env:
        return Path(env).expanduser()
    for cand in _candidates():
        if (cand / "README.md").exists():
            return cand.resolve()
    return None


def resolve_data_dir(data_dir: Path | str | None = None, require: Sequence[str] = (),
                     purpose: str = "this") -> Path:
    """The mirror that holds every folder in `require`: `data_dir`, else the default candidates.

    Raises DataNotFound naming what was tried and the fix, for callers that cannot work without
    a mirror (the embedded model's build reads only the mirror, never the hub).
    """
    cands = [Path(data_dir).expanduser()] if data_dir is not None else _candidates()
    for cand in cands:
        if cand.is_dir() and all((cand / sub).is_dir() for sub in require):
            return cand.resolve()
    needs = f" with {', '.join(require)}" if require else ""
    raise DataNotFound(f"{purpose} needs the local data mirror{needs}, not found (tried "
                       f"{', '.join(str(p) for p in cands)}); pass --data-dir or set "
                       "EVALKIT_DATA_DIR to a mirror laid out like shared/data")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes (as stored, i.e. of the .gz when gzipped)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class DataLayer:
    """Resolves task data; records the sha256 of every file read in `hashes`."""

    data_dir: Path | None = None
    allow_hub: bool = True
    hashes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.data_dir is None:
            self.data_dir = default_data_dir()
        elif not Path(self.data_dir).is_dir():
            raise BadInput(f"data dir {self.data_dir} does not exist; pass --data-dir pointing "
                           "at a mirror laid out like shared/data, or unset it")
        else:
            self.data_dir = Path(self.data_dir)

    # -- local mirror ---------------------------------------------------------------------
    def find(self, relpath: str) -> Path | None:
        """The mirrored file for `relpath` (plain or .gz), or None."""
        if self.data_dir is None:
            return None
        for cand in (self.data_dir / relpath, self.data_dir / f"{relpath}.gz"):
            if cand.is_file():
                return cand
        return None

    def exists(self, relpath: str) -> bool:
        """Whether `relpath` is mirrored."""
        return self.find(relpath) is not None

    def path(self, relpath: str, hub_hint: str = "") -> Path:
        """The mirrored file, recorded; raises DataNotFound naming the mirror and hub source."""
        p = self.find(relpath)
        if p is None:
            where = f"{self.data_dir}/{relpath}" if self.data_dir else f"<no mirror>/{relpath}"
            hub = f" or the hub dataset {hub_hint}" if hub_hint else ""
            raise DataNotFound(
                f"{relpath} is not in the local mirror ({where}){hub} is unreachable; "
                "set --data-dir/EVALKIT_DATA_DIR to a mirror or enable network access")
        key = str(p.relative_to(self.data_dir)) if self.data_dir else str(p)
        if key not in self.hashes:
            self.hashes[key] = sha256_file(p)
        return p

    def read_text(self, relpath: str, hub_hint: str = "") -> str:
        """A mirrored text file, decompressed and decoded as UTF-8 (BOM stripped)."""
        p = self.path(relpath, hub_hint)
        raw = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
        return raw.decode("utf-8-sig")

    def read_lines(self, relpath: str, hub_hint: str = "") -> list[str]:
        """Lines of a text file, without line terminators."""
        return self.read_text(relpath, hub_hint).splitlines()

    def read_jsonl(self, relpath: str, hub_hint: str = "") -> list[dict[str, Any]]:
        """Objects of a JSONL file (blank lines skipped)."""
        return [json.loads(line) for line in self.read_lines(relpath, hub_hint) if line.strip()]

    def read_csv(self, relpath: str, hub_hint: str = "") -> list[dict[str, str]]:
        """Rows of a CSV file with a header (embedded newlines handled by the csv module)."""
        return list(csv.DictReader(io.StringIO(self.read_text(relpath, hub_hint))))

    # -- hub fallback ---------------------------------------------------------------------
    def hub_rows(self, repo_id: str, config: str | None = None, split: str = "test",
                 mirror_path: str = "") -> list[dict[str, Any]]:
        """Rows of a hub dataset split via `datasets`; clear one-line error when offline."""
        tried = f"{self.data_dir}/{mirror_path}" if mirror_path else "the local mirror"
        if not self.allow_hub:
            raise DataNotFound(f"{mirror_path or repo_id} is not in {tried} and hub access is "
                               "disabled; add it to the mirror or allow the hub")
        try:
            import datasets  # heavy: only on the hub path

            ds = datasets.load_dataset(repo_id, config, split=split)
        except Exception as exc:  # noqa: BLE001 - any hub failure means the same to the user
            reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise DataNotFound(
                f"dataset not found: {tried} is missing and hub dataset {repo_id}"
                f"{'/' + config if config else ''} ({split}) failed to load ({reason}); "
                "set --data-dir/EVALKIT_DATA_DIR to a mirror or enable network access") from exc
        self.hashes[f"hub:{repo_id}/{config or ''}/{split}"] = getattr(ds, "_fingerprint", "")
        return [dict(r) for r in ds]


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    r"""Objects of a JSONL file on disk; raises BadInput naming the line on malformed input.

    Hostile content fails on its own line with one message: malformed or truncated JSON,
    numbers past Python's 4,300-digit limit, nesting too deep to parse, lone UTF-16
    surrogates (``"\\ud800"``: valid JSON, but no Unicode text), non-objects, bad UTF-8.
    """
    path = Path(path)
    if path.is_dir():
        raise BadInput(f"{path} is a directory; pass a JSONL file (one JSON object per line)")
    try:
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                where = f"{path}:{lineno}"
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BadInput(f"{where}: malformed JSON ({exc.msg}); write one JSON object "
                                   "per line") from None
                except (ValueError, RecursionError) as exc:
                    why = ("nested too deeply" if isinstance(exc, RecursionError) else
                           "a number of more than 4,300 digits" if "digits" in str(exc) else
                           " ".join(str(exc).split())[:120])
                    raise BadInput(f"{where}: unreadable JSON ({why}); write one plain JSON "
                                   "object per line") from None
                if not isinstance(obj, dict):
                    raise BadInput(f"{where}: expected a JSON object, got "
                                   f"{type(obj).__name__}; write one object per line")
                _check_text(obj, where)
                yield obj
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: invalid UTF-8 at byte {exc.start}; re-encode the file as "
                       "UTF-8") from None
    except FileNotFoundError:
        raise BadInput(f"{path}: not found; check the path") from None
    except PermissionError:
        raise BadInput(f"{path}: not readable (permission denied)") from None


def _check_text(obj: Any, where: str) -> None:
    """Refuse strings that cannot be encoded as UTF-8 (lone surrogates), anywhere in `obj`."""
    stack = [obj]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            try:
                x.encode("utf-8")
            except UnicodeEncodeError:
                raise BadInput(f"{where}: a string holds a lone UTF-16 surrogate (an escape "
                               "like \\ud800 without its pair); fix the text") from None
        elif isinstance(x, dict):
            stack.extend(x.keys())
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
