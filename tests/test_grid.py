"""`evalkit grid`: a grid file expanded into content-keyed units, run locally and on a real Ray
cluster (a head and a second worker node started here as separate processes on this machine),
with identical records and boards, a killed worker's unit finished elsewhere, and reruns that
do no work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalkit.grid.local_cluster import ENV as RAY_ENV
from evalkit.records import SampleRecord, read_lines, read_summaries

pytest.importorskip("transformers")

TASKS = ["flores:eng_Latn-nob_Latn", "scala:nob"]


def _evalkit(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evalkit.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=900, check=False,
                          env={**os.environ, **RAY_ENV}, cwd=cwd)


# -- fixtures: a family of tiny models, grid files, a two-node Ray cluster ----------------------


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two tiny base models (different weights), two LoRA adapters each."""
    pytest.importorskip("peft")
    from evalkit.testing import build_tiny_adapter, build_tiny_model

    root = tmp_path_factory.mktemp("gridfam")
    for i, seed in enumerate((0, 7)):
        m = build_tiny_model(root / f"m{i}", seed=seed)
        for j in range(2):
            build_tiny_adapter(m, root / f"m{i}-a{j}", seed=10 + 3 * i + j)
    return root


def write_grid(root: Path, name: str, options: str = "", prefix: str = "") -> Path:
    p = prefix
    path = root / name
    path.write_text(f"""tasks = {json.dumps(TASKS)}

[options]
limit = 3
max_new_tokens = 4
chat_template = "off"
{options}

[[models]]
model = "{p}m0"
adapters = ["a={p}m0-a0", "b={p}m0-a1"]

[[models]]
model = "{p}m1"
adapters = {{ a = "{p}m1-a0", b = "{p}m1-a1" }}
""", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A head node and a second worker node, 1 CPU each, as separate process groups; only
    these groups are stopped afterwards (never `ray stop`, which ends every Ray on the host)."""
    pytest.importorskip("ray")
    from evalkit.grid.local_cluster import LocalCluster

    if not (Path(sys.executable).parent / "ray").exists():
        pytest.skip("the ray command is not installed beside this python")
    with LocalCluster(cpus=[1, 1]) as cluster:
        yield cluster.address


# -- comparing two output folders --------------------------------------------------------------


def snapshot(out: Path) -> dict[str, Any]:
    """Records and boards with run ids, timestamps and folder paths left out."""
    res: dict[str, Any] = {}
    for d in sorted(p for p in out.iterdir() if (p / "summary.jsonl").is_file()):
        for s in read_summaries(d):
            res[f"{d.name}|{s.task}"] = {"metrics": s.metrics, "n": s.n_samples,
                                         "meta": s.meta, "gen": s.gen_params, "seed": s.seed,
                                         "ids": s.sample_ids_sha256, "model": s.model}
        for f in sorted((d / "samples").glob("*.jsonl")):
            res[f"{d.name}|{f.name}"] = [r.model_dump(exclude={"run_id"})
                                         for r in read_lines(f, SampleRecord, "sample")]
    for board in sorted(out.glob("leaderboards/*/board.json")):
        doc = json.loads(board.read_text())
        for row in doc["rows"]:
            row.get("details", {}).pop("runs", None)  # run timestamps
        res[str(board.relative_to(out))] = doc
    return res


def store_lines(out: Path) -> list[dict[str, Any]]:
    lines = []
    for line in (out / "cache" / "generations.jsonl").read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue  # a line torn by a killed worker
    return lines


def summary_line_counts(out: Path) -> dict[str, int]:
    return {d.name: len((d / "summary.jsonl").read_text().splitlines())
            for d in out.iterdir() if (d / "summary.jsonl").is_file()}


# -- tests ---------------------------------------------------------------------------------------


def test_help_imports_no_ray_or_torch() -> None:
    code = ("import sys; sys.argv=['evalkit','grid','--help']\nimport evalkit.cli as c\n"
            "try:\n    c.app()\nexcept SystemExit:\n    pass\n"
            "print(sorted({'ray', 'torch', 'transformers', 'vllm'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert "--executor" in out.stdout and "--ray-address" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("text, expected", [
    ("tasks = ['flores:eng_Latn-nob_Latn']\n[[models]]\nmodel = 'x'\nadapter = ['a']\n",
     "unknown key models[0].adapter; did you mean adapters?"),
    ("tasks = ['flores:eng_Latn-nob_Latn']\n[options]\nlimt = 2\n[[models]]\nmodel = 'x'\n",
     "unknown key options.limt; did you mean limit?"),
    ("tasks = ['flores:eng_Latn-nob_Latn']\n[[models]]\nadapters = ['a']\n",
     "models[0].model is missing"),
    ("tasks = ['flores:eng_Latn-nob_Latn']\nseeds = 'zero'\n[[models]]\nmodel = 'x'\n",
     "seeds: input should be a valid list"),
    ("tasks = ['flores:eng_Latn-nob_Latn'\n", "not valid TOML"),
    ("tasks = ['flores:eng_Latn-nob_Latn']\n", "nothing to evaluate"),
    ("[[models]]\nmodel = 'm0'\n", "no tasks; set tasks"),
    ("tasks = ['flores:eng_Latn-nob_Latn']\n[[models]]\nmodel = 'nowhere/at/all'\n",
     "models[0]: model path nowhere/at/all does not exist"),
    (("tasks = ['flores:eng_Latn-nob_Latn']\n[[merges]]\nrecipe = 'diploma'\nbase = 'm0'\n"
      "instruct = 'm1'\nalphas = [0.5]\n"), "merges[0]: diploma needs base, cpt, instruct"),
    (("tasks = ['flores:eng_Latn-nob_Latn']\n[options]\npipeline_parallel_size = 2\n"
      "[[models]]\nmodel = 'm0'\n"), "use --backend vllm"),
])
def test_grid_file_mistakes_are_one_line_errors(family: Path, text: str, expected: str) -> None:
    path = family / "bad.toml"
    path.write_text(text, encoding="utf-8")
    proc = _evalkit("grid", path, "--out", family / "bad-out")
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], proc.stderr


def test_unit_keys_follow_content_not_paths(family: Path, tmp_path: Path) -> None:
    import shutil

    from evalkit.cli_options import _SPECS, RunOptions
    from evalkit.grid.plan import plan_from_file

    def opts(**kw: Any) -> RunOptions:
        return RunOptions(**{**{k: v.default for k, (_, v) in _SPECS.items()}, **kw})

    grid = write_grid(family, "keys.toml")
    a = plan_from_file(grid, opts(), set())
    assert len(a.units) == 2 and a.run_options["limit"] == 3  # [options] applied
    # the same weights elsewhere, under other folder names: the same keys
    copy = tmp_path / "copy"
    for name in ("m0", "m0-a0", "m0-a1", "m1", "m1-a0", "m1-a1"):
        shutil.copytree(family / name, copy / f"x{name}")
    b = plan_from_file(write_grid(copy, "keys.toml", prefix="x"), opts(), set())
    assert [u.key for u in b.units] == [u.key for u in a.units]
    # what changes the records changes the key: the limit, a seed, an adapter's label
    c = plan_from_file(grid, opts(limit=2), {"limit"})
    assert c.run_options["limit"] == 2 and not {u.key for u in c.units} & {u.key for u in a.units}
    d = plan_from_file(grid, opts(seed=1), {"seed"})
    assert not {u.key for u in d.units} & {u.key for u in a.units}
    relabel = family / "relabel.toml"
    relabel.write_text(grid.read_text().replace("a=m0-a0", "first=m0-a0"), encoding="utf-8")
    e = plan_from_file(relabel, opts(), set())
    assert e.units[0].key != a.units[0].key and e.units[1].key == a.units[1].key


def test_multi_node_engine_options_reach_vllm_and_ray_resources(family: Path) -> None:
    from evalkit.backends.base import VLLMConfig
    from evalkit.backends.vllm import engine_kwargs
    from evalkit.cli_options import _SPECS, RunOptions
    from evalkit.grid.plan import plan_from_file
    from evalkit.grid.ray_exec import RayExecutor

    vals = {k: v.default for k, (_, v) in _SPECS.items()}
    grid = write_grid(family, "vllm.toml", 'backend = "vllm"\ntensor_parallel_size = 4\n'
                      'pipeline_parallel_size = 2\n')
    plan = plan_from_file(grid, RunOptions(**vals), set(),
                          {"distributed_executor_backend": "ray"})
    opts = plan.run_options["backend_options"]
    assert opts["pipeline_parallel_size"] == 2 and opts["distributed_executor_backend"] == "ray"
    kw = engine_kwargs(VLLMConfig(model="m", **opts), cpu=False, model_path="m",
                       lora_rank=None, n_adapters=0)
    assert kw["tensor_parallel_size"] == 4 and kw["pipeline_parallel_size"] == 2
    assert kw["distributed_executor_backend"] == "ray"
    assert "pipeline_parallel_size" not in engine_kwargs(
        VLLMConfig(model="m"), cpu=False, model_path="m", lora_rank=None, n_adapters=0)
    ex = RayExecutor()
    # vLLM's Ray executor places the engine itself; otherwise the unit holds its GPUs
    assert ex.resources(plan, cluster_gpus=16) == {"num_cpus": 1, "num_gpus": 0}
    opts.pop("distributed_executor_backend")
    assert ex.resources(plan, cluster_gpus=16) == {"num_cpus": 1, "num_gpus": 8}
    assert ex.resources(plan, cluster_gpus=0) == {"num_cpus": 1.0, "num_gpus": 0}


def test_ray_grid_matches_local_and_reruns_do_nothing(family: Path, ray_cluster: str,
                                                      tmp_path: Path) -> None:
    grid = write_grid(family, "grid.toml")
    local, ray = tmp_path / "local", tmp_path / "ray"
    proc = _evalkit("grid", grid, "--out", local, "--executor", "local")
    assert proc.returncode == 0, proc.stderr[-3000:]
    # a relative --out: the workers' own folder is elsewhere
    proc = _evalkit("grid", grid, "--out", "ray", "--executor", "ray", "--ray-address",
                    ray_cluster, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 run, 0 already done, 0 failed" in proc.stdout
    want, got = snapshot(local), snapshot(ray)
    assert len([k for k in want if k.endswith(".jsonl")]) == 2 * 3 * 2  # models × variants × tasks
    assert any(k.startswith("leaderboards/") for k in want)
    assert got == want
    # the units ran as Ray tasks, and the manifest records the cluster
    manifest = json.loads(next((ray / "grid").glob("grid-*.json")).read_text())
    assert manifest["cluster"]["ray_version"] and len(manifest["cluster"]["nodes"]) == 2
    assert {u["worker"]["executor"] for u in manifest["units"]} == {"ray"}
    assert all(u["worker"]["node_id"] for u in manifest["units"])
    # rerunning does no work: no generation, no summary, no Ray
    before = (len(store_lines(ray)), summary_line_counts(ray))
    proc = _evalkit("grid", grid, "--out", ray, "--executor", "ray", "--ray-address",
                    ray_cluster)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "0 run, 2 already done, 0 failed" in proc.stdout
    assert (len(store_lines(ray)), summary_line_counts(ray)) == before
    # a unit whose records went missing runs again, from the store (no new generations)
    victim = next(d for d in local.iterdir() if d.name.startswith("m1+b-"))
    next((victim / "samples").glob("*.jsonl")).unlink()
    n_store = len(store_lines(local))
    proc = _evalkit("grid", grid, "--out", local)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 run, 1 already done, 0 failed" in proc.stdout
    assert len(store_lines(local)) == n_store
    assert snapshot(local) == want


def test_killed_worker_unit_completes_elsewhere(family: Path, ray_cluster: str,
                                                tmp_path: Path) -> None:
    # slower units (batch size 1, more tokens) so the kill lands mid-generation
    grid = write_grid(family, "slow.toml", "batch_size = 1\n").read_text()
    path = family / "slow.toml"
    path.write_text(grid.replace("limit = 3", "limit = 6").replace("max_new_tokens = 4",
                                                                   "max_new_tokens = 24"))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "evalkit.cli", "grid", str(path), "--out",
                             str(out), "--executor", "ray", "--ray-address", ray_cluster],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **RAY_ENV})
    killed: tuple[str, int] | None = None
    deadline = time.monotonic() + 600
    try:
        while killed is None and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            store = out / "cache" / "generations.jsonl"
            if not store.exists() or len(store.read_bytes().splitlines()) < 3:
                continue
            for marker in (out / "grid" / "running").glob("*.json"):
                try:
                    pid = json.loads(marker.read_text())["pid"]
                except (OSError, ValueError):
                    continue
                os.kill(pid, signal.SIGKILL)  # a Ray worker process running one unit
                killed = (marker.stem, pid)
                break
        stdout, stderr = proc.communicate(timeout=max(1, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed is not None, "no unit was caught running"
    assert proc.returncode == 0, stderr[-3000:]
    assert "2 run, 0 already done, 0 failed" in stdout
    unit = json.loads((out / "grid" / "units" / f"{killed[0]}.json").read_text())
    assert unit["worker"]["pid"] != killed[1]  # finished by another worker process
    # every variant × task has each sample exactly once, and no request was generated twice
    for d in (p for p in out.iterdir() if (p / "summary.jsonl").is_file()):
        assert {s.n_samples for s in read_summaries(d)} == {6}
        for f in (d / "samples").glob("*.jsonl"):
            ids = [r.sample_id for r in read_lines(f, SampleRecord, "sample")]
            assert len(ids) == 6 and len(set(ids)) == 6
    keys = [line["key"] for line in store_lines(out)]
    assert len(keys) == len(set(keys))


@pytest.mark.slow
def test_ray_without_shared_out_returns_records(family: Path, ray_cluster: str,
                                                tmp_path: Path) -> None:
    grid = write_grid(family, "grid.toml")
    local, ray = tmp_path / "local", tmp_path / "ray"
    assert _evalkit("grid", grid, "--out", local).returncode == 0
    proc = _evalkit("grid", grid, "--out", ray, "--executor", "ray", "--ray-address",
                    ray_cluster, "--no-shared-out")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert snapshot(ray) == snapshot(local)
    assert sorted(k["key"] for k in store_lines(ray)) == sorted(k["key"]
                                                                for k in store_lines(local))
    again = _evalkit("grid", grid, "--out", ray, "--executor", "ray", "--ray-address",
                     ray_cluster, "--no-shared-out")
    assert "0 run, 2 already done" in again.stdout
