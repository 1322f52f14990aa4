"""Running one unit: merge it if it is a merge, evaluate it through the runner, record it.

The same function runs in-process (local executor) and inside a Ray task. With a shared
``--out`` the unit writes its records there (the runner holds the base model's lock while it
does) and leaves its manifest. Without one, it evaluates into a folder of its own on the worker
(``$TMPDIR/evalkit-grid/<out>/<unit key>``, so a retry on the same node resumes from its
store) and returns the records, which the driver writes with `absorb_records`.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.grid.units import GridPlan, Unit, UnitOutcome, merged_path, write_manifest
from evalkit.locks import exclusive, model_lock
from evalkit.progress import ProgressFn
from evalkit.records import SUMMARY_FILE, RunSummary, append_line, samples_path, write_text_atomic

Progress = ProgressFn
STORE = Path("cache") / "generations.jsonl"


def node_info() -> dict[str, Any]:
    """Where this process runs: host and pid, and on Ray the node, its IP and our resources."""
    info: dict[str, Any] = {"hostname": socket.gethostname(), "pid": os.getpid(),
                            "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ctx = ray.get_runtime_context()
        info.update(executor="ray", ray_version=ray.__version__, node_id=ctx.get_node_id(),
                    node_ip=ray.util.get_node_ip_address(),
                    resources=ctx.get_assigned_resources())
    else:
        info["executor"] = "local"
    return info


def local_out(out: Path, key: str) -> Path:
    """A unit's own output folder on a worker that cannot see ``--out``."""
    from evalkit.types import sha256_text

    return Path(tempfile.gettempdir()) / "evalkit-grid" / sha256_text(str(out))[:12] / key


def running_path(out: Path, key: str) -> Path:
    """While a unit runs with a shared ``--out``: who runs it (host, pid, node)."""
    return Path(out) / "grid" / "running" / f"{key}.json"


def execute_unit(unit: Unit, plan: GridPlan, *, shared: bool = True,
                 progress: Progress | None = None,
                 notify: Callable[[str], None] | None = None) -> UnitOutcome:
    """Run `unit`; failures come back as a ``failed`` outcome, never as an exception."""
    from evalkit.runner import RunConfig, run

    t0 = time.perf_counter()
    worker = node_info()
    target = Path(plan.out) if shared else local_out(Path(plan.out).resolve(), unit.key)
    marker = running_path(plan.out, unit.key) if shared else None
    try:
        if marker is not None:
            write_text_atomic(marker, json.dumps(worker, default=str) + "\n")
        model, record = unit.model, None
        if unit.merge is not None:
            model, record = _merge(unit, target, progress)
        cfg = RunConfig(**plan.run_config(unit, model, target))
        try:
            summaries = run(cfg, progress=progress, notify=notify)
        finally:
            if unit.merge is not None and not unit.merge.keep:
                shutil.rmtree(model, ignore_errors=True)
        outcome = UnitOutcome(unit.key, "done", summaries, model=model, merge_record=record,
                              worker=worker, seconds=time.perf_counter() - t0)
        if shared:
            write_manifest(plan.out, unit, outcome, plan.run_options.get("backend_options", {}))
        else:
            outcome.records = collect_records(target, summaries)
            shutil.rmtree(target, ignore_errors=True)
        return outcome
    except EvalkitError as exc:
        return UnitOutcome(unit.key, "failed", error=str(exc), worker=worker,
                           seconds=time.perf_counter() - t0)
    except Exception as exc:  # noqa: BLE001 - a bug or a crash in one unit must not stop the grid
        return UnitOutcome(unit.key, "failed", error=f"{type(exc).__name__}: {exc}",
                           detail=traceback.format_exc(), worker=worker,
                           seconds=time.perf_counter() - t0)
    finally:
        if marker is not None:
            marker.unlink(missing_ok=True)


def _merge(unit: Unit, out: Path, progress: Progress | None) -> tuple[str, dict[str, Any]]:
    """Merge a merge unit's checkpoint (reusing an identical earlier merge)."""
    from evalkit.merge.engine import merge, read_record

    job = unit.merge
    assert job is not None
    path = merged_path(job, out)
    record = read_record(path)
    if not _same_merge(record, job):
        record = merge(job.spec, path, dtype=job.dtype, force=path.exists(),
                       allow_config_diff=job.allow_config_diff, progress=progress).record
    assert record is not None
    return str(path), record


def _same_merge(record: dict[str, Any] | None, job: Any) -> bool:
    if not record:
        return False
    spec = job.spec
    want = {"recipe": spec.recipe, "alpha": spec.alpha, "dtype": job.dtype,
            "deltas": [{"role": r, "weight": w} for r, w in spec.deltas]}
    return all(record.get(k) == v for k, v in want.items()) and {
        r: i.get("name") for r, i in record.get("inputs", {}).items()} == spec.inputs


# -- records travelling back to the driver --------------------------------------------------


def collect_records(target: Path, summaries: list[RunSummary]) -> dict[str, Any]:
    """The files a unit wrote under `target`: sample records, summaries, generation store."""
    samples: dict[str, str] = {}
    lines: list[list[str]] = []
    for s in summaries:
        run_dir = s.run_id.split("@", 1)[0]
        rel = samples_path(Path(run_dir), s.task)
        samples[rel.as_posix()] = (target / rel).read_text(encoding="utf-8")
        lines.append([run_dir, s.model_dump_json()])
    store = target / STORE
    return {"samples": samples, "summaries": lines,
            "store": store.read_text(encoding="utf-8") if store.exists() else ""}


def absorb_records(plan: GridPlan, unit: Unit, outcome: UnitOutcome) -> None:
    """Write records a worker returned into ``--out`` (under each base model's lock), then the
    unit's manifest."""
    from evalkit.store import GenerationStore, output_from_json

    rec = outcome.records or {}
    out = Path(plan.out)
    if outcome.summaries:  # one base model per unit: one lock
        lock = model_lock(out, outcome.summaries[0].model_hash)
        with exclusive(lock, what=f"{out} ({unit.label})"):
            store = GenerationStore(out / STORE)
            try:
                for line in rec.get("store", "").splitlines():
                    try:
                        obj = json.loads(line)
                        key, value = obj["key"], output_from_json(obj["output"])
                    except (ValueError, KeyError, TypeError):
                        continue  # a torn line of a killed attempt
                    if key not in store:
                        store.put(key, value)
            finally:
                store.close()
            for rel, text in rec.get("samples", {}).items():
                write_text_atomic(out / rel, text)
            for run_dir, line in rec.get("summaries", []):
                append_line(out / run_dir / SUMMARY_FILE, line)
    outcome.records = None
    write_manifest(out, unit, outcome, plan.run_options.get("backend_options", {}))
