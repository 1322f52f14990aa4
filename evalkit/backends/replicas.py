"""Data parallelism for engines that hold one model per process group: whole replicas.

Each replica is a complete single-engine backend (from the registry, by name) in a spawned
process on its own GPU group; requests are sharded round-robin and outputs stream back through
one queue. Peers route this through Ray placement groups and have hung there; plain processes
with their own engines keep each replica independent.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator, Sequence
from typing import Any

from evalkit.backends.base import VLLMConfig
from evalkit.errors import BadInput


def _replica_main(backend_name: str, config_json: str, devices: str | None, inbox: Any,
                  outbox: Any) -> None:
    """One data-parallel replica: a whole single-engine backend on its own GPU group."""
    if devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = devices
    try:
        from evalkit.backends.factory import config_class
        from evalkit.registry import BACKENDS

        cls = BACKENDS.get(backend_name)
        cfg = config_class(cls).model_validate_json(config_json).model_copy(
            update={"data_parallel_size": 1})
        backend = cls(cfg)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises
        outbox.put(("error", f"{type(exc).__name__}: {exc}"))
        return
    outbox.put(("ready", None))
    while (msg := inbox.get()) is not None:
        method, idxs, reqs = msg
        try:
            for j, out in getattr(backend, method)(reqs):
                outbox.put(("item", (idxs[j], out)))
            outbox.put(("done", None))
        except Exception as exc:  # noqa: BLE001
            outbox.put(("error", f"{type(exc).__name__}: {exc}"))
    backend.close()


class Replicas:
    """`data_parallel_size` independent engines in spawned processes, requests sharded
    round-robin, outputs streamed back through one queue."""

    def __init__(self, config: VLLMConfig, *, cpu: bool, backend_name: str = "vllm") -> None:
        import multiprocessing as mp

        dp, tp = config.data_parallel_size, config.tensor_parallel_size
        groups: list[str | None] = [None] * dp
        if not cpu:
            import torch

            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            ids = visible.split(",") if visible else [str(i) for i in
                                                      range(torch.cuda.device_count())]
            if len(ids) < dp * tp:
                raise BadInput(f"data_parallel_size {dp} x tensor_parallel_size {tp} needs "
                               f"{dp * tp} GPUs but {len(ids)} are visible; lower them")
            groups = [",".join(ids[r * tp:(r + 1) * tp]) for r in range(dp)]
        ctx = mp.get_context("spawn")  # CUDA cannot be forked
        self._out = ctx.Queue()
        self._ins = [ctx.Queue() for _ in range(dp)]
        self._procs = [ctx.Process(target=_replica_main, name=f"evalkit-vllm-dp{r}",
                                   args=(backend_name, config.model_dump_json(exclude_unset=True),
                                         groups[r], self._ins[r], self._out), daemon=False)
                       for r in range(dp)]
        # not daemonic: each replica's vLLM starts its own EngineCore process, which a daemonic
        # process may not do; atexit reaps them if the caller never reaches close()
        for p in self._procs:
            p.start()
        atexit.register(self.close)
        for _ in self._procs:
            kind, msg = self._out.get()
            if kind == "error":
                self.close()
                raise BadInput(f"a data-parallel vLLM replica failed to start: {msg}")

    def run(self, method: str, requests: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Shard, submit to every replica at once, and yield (index, output) as they come."""
        dp = len(self._procs)
        busy = 0
        for r in range(dp):
            idxs = list(range(r, len(requests), dp))
            if idxs:
                self._ins[r].put((method, idxs, [requests[i] for i in idxs]))
                busy += 1
        while busy:
            kind, msg = self._out.get()
            if kind == "item":
                yield msg
            elif kind == "done":
                busy -= 1
            else:
                raise RuntimeError(f"data-parallel vLLM replica failed: {msg}")

    def close(self) -> None:
        """Ask every replica to close its engine, then reap the processes (idempotent)."""
        for q, p in zip(self._ins, self._procs):
            if p.is_alive():
                q.put(None)
        for p in self._procs:
            p.join(timeout=120)
            if p.is_alive():
                p.terminate()
