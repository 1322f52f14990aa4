"""The Ray executor: one Ray task per unit, on an existing cluster or a local one.

Each task declares its resources (on GPU nodes ``num_gpus`` = the engine's GPUs: tensor ×
pipeline × data parallel size, or none when vLLM's own Ray executor places the engine; on CPU
``--cpus-per-unit``) and ``max_retries``: when the worker process or its node dies, Ray runs the
unit again elsewhere, and the runner resumes it from the generation store in ``--out`` (sample
records are replaced whole and summaries read latest-wins, so nothing is duplicated or lost).
Failures inside a unit are returned, not raised, so Ray never retries a user error.

Workers write to the shared ``--out`` when they see it (the driver leaves a probe file there and
each task looks for it); otherwise, or with ``--no-shared-out``, they return their records and
the driver writes them. Workers report finished generations to a small actor the driver polls
for its progress line. The driver passes its ``EVALKIT_*`` and offline (``HF_HUB_OFFLINE``, ...)
environment variables to the workers.
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from evalkit.errors import BadInput
from evalkit.grid.units import GridPlan, Unit, UnitOutcome
from evalkit.grid.work import execute_unit

_PASSED_ENV = ("EVALKIT_", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


class Tally:
    """Finished generations per (unit, worker process); lives as a Ray actor on the driver."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def put(self, key: str, n: int) -> None:
        """Set unit `key`'s generation count."""
        self.counts[key] = n

    def get(self) -> dict[str, int]:
        """Every unit's generation count."""
        return dict(self.counts)


def run_unit_task(unit: Unit, plan: GridPlan, probe: str | None, token: str,
                  tally: Any, cwd: str, env: dict[str, str]) -> UnitOutcome:
    """The body of a unit's Ray task (module level, so workers import it by name). It takes
    the driver's evalkit variables (set here, not as a Ray runtime environment, which costs
    every job seconds of set-up) and works in the driver's folder when this node has it, so
    relative model paths mean the same."""
    os.environ.update(env)
    if Path(cwd).is_dir():
        os.chdir(cwd)
    shared = False
    if probe is not None:
        try:
            shared = Path(probe).read_text(encoding="utf-8") == token
        except OSError:
            shared = False
    tag = f"{unit.key}:{os.getpid()}"
    counts: dict[str, int] = {}
    last = [0.0]

    def progress(label: str, n: int, total: int, tokens: int | None = None) -> None:
        if label not in ("generating", "log-likelihoods"):
            return
        counts[label] = n
        now = time.monotonic()
        if now - last[0] > 0.5 or n == total:
            last[0] = now
            tally.put.remote(tag, sum(counts.values()))

    tally.put.remote(tag, 0)  # the driver counts the unit as running from now on
    outcome = execute_unit(unit, plan, shared=shared, progress=progress)
    tally.put.remote(tag, sum(counts.values()))
    return outcome


def import_ray() -> Any:
    """``ray``, or a one-line error naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise BadInput("--executor ray needs Ray; install it with pip install 'evalkit[ray]' "
                       "(or use --executor local)") from None
    return ray


def absolute(plan: GridPlan) -> GridPlan:
    """`plan` with ``--out`` and ``--data-dir`` as absolute paths (workers have another cwd)."""
    opts = dict(plan.run_options)
    if opts.get("data_dir") is not None:
        opts["data_dir"] = Path(opts["data_dir"]).resolve()
    return dataclasses.replace(plan, out=Path(plan.out).resolve(), run_options=opts)


class RayExecutor:
    """Runs units as Ray tasks (see the module docstring)."""

    name = "ray"

    def __init__(self, address: str | None = None, *, shared_out: bool = True,
                 cpus_per_unit: float = 1.0, max_retries: int = 3,
                 local_cpus: int | None = None) -> None:
        if cpus_per_unit <= 0:
            raise BadInput(f"--cpus-per-unit must be positive, got {cpus_per_unit}")
        if max_retries < 0:
            raise BadInput(f"--max-retries must be 0 or more, got {max_retries}")
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.shared_out = shared_out
        self.cpus_per_unit = cpus_per_unit
        self.max_retries = max_retries
        self.local_cpus = local_cpus
        self._cluster: dict[str, Any] = {}

    def _init(self, ray: Any) -> None:
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True,
                              "configure_logging": False}
        if self.address:
            try:
                ray.init(address=self.address, **kw)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise BadInput(f"cannot connect to the Ray cluster at {self.address} "
                               f"({str(exc).splitlines()[0][:160]}); start it with `ray start "
                               "--head` or fix --ray-address") from None
        else:  # a fresh single-node cluster (never an old one left in /tmp/ray)
            ray.init(address="local", num_cpus=self.local_cpus, **kw)

    def resources(self, plan: GridPlan, cluster_gpus: float) -> dict[str, float]:
        """Ray resources one unit declares on a cluster with `cluster_gpus` GPUs."""
        opts = plan.run_options.get("backend_options", {})
        if not cluster_gpus or opts.get("device") == "cpu":
            return {"num_cpus": self.cpus_per_unit, "num_gpus": 0}
        if opts.get("distributed_executor_backend") == "ray":
            # vLLM reserves the engine's GPUs itself (a placement group across nodes)
            return {"num_cpus": 1, "num_gpus": 0}
        n = (opts.get("tensor_parallel_size", 1) * opts.get("pipeline_parallel_size", 1)
             * opts.get("data_parallel_size", 1))
        return {"num_cpus": 1, "num_gpus": n}

    def run(self, units: Sequence[Unit], plan: GridPlan, reporter: Any
            ) -> Generator[UnitOutcome, None, None]:
        """Submit every unit as a Ray task; yield outcomes as they finish."""
        ray = import_ray()
        plan = absolute(plan)
        self._init(ray)
        probe: Path | None = None
        try:
            token = uuid.uuid4().hex
            if self.shared_out:
                probe = Path(plan.out).resolve() / "grid" / f".probe-{token}"
                probe.parent.mkdir(parents=True, exist_ok=True)
                probe.write_text(token, encoding="utf-8")
            res = self.resources(plan, ray.cluster_resources().get("GPU", 0))
            self._cluster = self._describe(ray, res)
            tally = ray.remote(num_cpus=0)(Tally).remote()
            task = ray.remote(max_retries=self.max_retries, retry_exceptions=False,
                              **res)(run_unit_task)
            env = {k: v for k, v in os.environ.items() if k.startswith(_PASSED_ENV)}
            pending: dict[Any, Unit] = {}
            for u in units:
                ref = task.options(name=f"evalkit-grid {u.label}").remote(
                    u, plan, str(probe) if probe else None, token, tally, os.getcwd(), env)
                pending[ref] = u
            by_key = {u.key: u for u in units}
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                for ref in ready:
                    unit = pending.pop(ref)
                    try:
                        yield ray.get(ref)
                    except ray.exceptions.RayError as exc:  # retries used up, node lost, ...
                        msg = str(exc).strip().splitlines()
                        yield UnitOutcome(unit.key, "failed",
                                          error=f"{type(exc).__name__}: "
                                                f"{msg[0][:300] if msg else ''}")
                for tag, n in ray.get(tally.get.remote()).items():
                    key = tag.split(":", 1)[0]
                    if any(pending[r].key == key for r in pending):
                        reporter.started(by_key[key])
                    reporter.generations(tag, n)
        finally:
            if probe is not None:
                probe.unlink(missing_ok=True)
            ray.shutdown()

    def _describe(self, ray: Any, res: dict[str, float]) -> dict[str, Any]:
        nodes = [{"node_id": n.get("NodeID"), "ip": n.get("NodeManagerAddress"),
                  "hostname": n.get("NodeManagerHostname"), "alive": n.get("Alive"),
                  "resources": n.get("Resources", {})} for n in ray.nodes()]
        return {"executor": "ray", "ray_version": ray.__version__,
                "address": self.address or "local", "nodes": nodes,
                "cluster_resources": ray.cluster_resources(), "unit_resources": res,
                "max_retries": self.max_retries, "shared_out": self.shared_out}

    def cluster(self) -> dict[str, Any]:
        """The Ray cluster the units ran on."""
        return self._cluster
