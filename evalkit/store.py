"""Append-only store of finished generations, so an interrupted run resumes for free.

Every finished request is appended (one JSON line, flushed) to ``generations.jsonl`` the moment
the backend returns it, under a key that hashes everything that determines the output: model
identity + hash, adapter hash, the rendered prompt, generation parameters and seed. A rerun
loads the keys and sends only missing requests. A line torn by SIGKILL is ignored on load.

Lines carry the store format (``STORE_VERSION``). Format 1 keyed adapters by their directory
name inside backends, so two adapters with one basename could be cached under each other's
hash; its lines are never reused (``stale`` counts them, and the runner says so).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from evalkit.types import Generation, GenRequest, LoglikRequest, LoglikResult, Output, stable_hash

STORE_VERSION = 2


def request_key(model_hash: str, adapter_hash: str | None, req: GenRequest | LoglikRequest,
                merged: bool = False) -> str:
    """The cache key of one request for one model variant."""
    if isinstance(req, GenRequest):
        body: dict[str, Any] = {"kind": "gen", "prompt": req.prompt, "params": req.params.key(),
                                "special": req.add_special_tokens}
    else:
        body = {"kind": "loglik", "context": req.context, "continuation": req.continuation}
    return stable_hash({"store": STORE_VERSION, "model": model_hash, "adapter": adapter_hash,
                        "merged": merged, **body})


def output_to_json(out: Output) -> dict[str, Any]:
    """JSON form of a backend output."""
    if isinstance(out, Generation):
        return {"texts": list(out.texts), "n_tokens": list(out.n_tokens),
                "finish_reasons": list(out.finish_reasons)}
    return {"logprob": out.logprob, "n_tokens": out.n_tokens, "is_greedy": out.is_greedy}


def output_from_json(d: dict[str, Any]) -> Output:
    """Inverse of `output_to_json`."""
    if "texts" in d:
        return Generation(tuple(d["texts"]), tuple(d.get("n_tokens", ())),
                          tuple(d.get("finish_reasons", ())))
    return LoglikResult(float(d["logprob"]), int(d["n_tokens"]), bool(d["is_greedy"]))


class GenerationStore:
    """Key → output, persisted line by line."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._data: dict[str, dict[str, Any]] = {}
        self.stale = 0  #: lines of an older store format, ignored
        self.torn = 0  #: unreadable lines (a write cut by a kill), ignored
        if self.path.exists():
            with open(self.path, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    try:
                        obj = json.loads(line)
                        if obj.get("v") != STORE_VERSION:
                            self.stale += 1
                            continue
                        self._data[obj["key"]] = obj["output"]
                    except (json.JSONDecodeError, KeyError, TypeError, AttributeError,
                            RecursionError, ValueError):
                        if line.strip():
                            self.torn += 1  # a torn last line from a killed run
        self._fd: int | None = None

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str) -> Output:
        """The stored output for `key`."""
        return output_from_json(self._data[key])

    def put(self, key: str, out: Output) -> None:
        """Append one finished output and hand it to the OS at once.

        Each line goes out in one ``write`` on an ``O_APPEND`` descriptor, so runs of other
        models appending to the same store never interleave inside a line.
        """
        d = output_to_json(out)
        self._data[key] = d
        if self._fd is None:
            # a torn line left by a killed writer must not swallow the next record
            torn = False
            if self.path.exists() and self.path.stat().st_size:
                with open(self.path, "rb") as fh:
                    fh.seek(-1, os.SEEK_END)
                    torn = fh.read(1) != b"\n"
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if torn:
                os.write(self._fd, b"\n")
        line = json.dumps({"v": STORE_VERSION, "key": key, "output": d}, ensure_ascii=False)
        data = (line + "\n").encode("utf-8", errors="surrogatepass")
        written = os.write(self._fd, data)
        while written < len(data):  # regular files write whole; stay safe regardless
            written += os.write(self._fd, data[written:])

    def close(self) -> None:
        """Close the file descriptor."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
