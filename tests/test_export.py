"""`evalkit export`: lm-eval's results/samples files read back by lm-eval's own utilities (and
`datasets`, which its writer prepares the samples for), Every Eval Ever records valid under the
EEE 0.2.3 JSON schemas (tests/data/eee, MIT), and `evalkit run --wandb-project` in W&B's
offline mode with the run directory inspected."""

from __future__ import annotations

import copy
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from scripted_runs import FLORES, IFEVAL, SAFETY, N, second_adapter, three_variants, variant_dirs  # noqa: F401

from evalkit.records import read_sample_records, read_summaries, task_file_name

SCHEMAS = Path(__file__).parent / "data" / "eee"


def _evalkit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evalkit.cli", *args], capture_output=True,
                          text=True, timeout=600, env={**os.environ, **(env or {})})


def _no_machine_paths(root: Path, *paths: Path) -> None:
    for f in root.rglob("*"):
        if f.is_file():
            text = f.read_text(encoding="utf-8")
            for p in paths:
                assert str(p) not in text, (f, p)


def test_lm_eval_export_reads_back_with_lm_eval(three_variants: Path, tmp_path: Path,  # noqa: F811
                                                tiny_model: Path) -> None:
    pytest.importorskip("lm_eval")
    from lm_eval import utils as U

    out = tmp_path / "lm"
    res = _evalkit("export", str(three_variants), "--format", "lm-eval", "--out", str(out))
    assert res.returncode == 0, res.stderr
    files = [p.as_posix() for p in out.rglob("*") if p.is_file()]
    results = U.get_results_filenames(files)
    samples = U.get_sample_results_filenames(files)
    v = variant_dirs(three_variants)
    assert len(results) == 3 and len(samples) == 9
    latest = U.get_latest_filename([f for f in results if f"/{v['A'].name}/" in f])
    doc = json.loads(Path(latest).read_text(encoding="utf-8"))
    table = U.make_table(doc)  # lm-eval's own results table printer
    for task in (FLORES, IFEVAL, SAFETY):
        assert task in table  # the evalkit name is the alias
    assert "chrf++" in table and "safe_rate" in table
    sums = {s.task: s for s in read_summaries(v["A"])}
    key = task_file_name(FLORES)
    assert doc["results"][key]["chrf++,none"] == sums[FLORES].metrics["chrf++"]["value"]
    assert doc["higher_is_better"][task_file_name(SAFETY)]["safe_rate"] is True
    assert doc["n-samples"][key] == {"original": N, "effective": N}
    assert doc["configs"][key]["output_type"] == "generate_until"
    assert doc["model_name_sanitized"] == v["A"].name and "peft=A" in doc["config"]["model_args"]
    # samples: the file name carries the task key, datasets loads every line
    import datasets

    by_task = {U.get_file_task_name(Path(f).name): f for f in samples if f"/{v['B'].name}/" in f}
    assert set(by_task) == {task_file_name(t) for t in (FLORES, IFEVAL, SAFETY)}
    ds = datasets.load_dataset("json", data_files=by_task[task_file_name(SAFETY)],
                               split="train")
    assert ds.num_rows == N
    assert {"doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "filter",
            "metrics", "doc_hash", "prompt_hash", "target_hash", "safe_rate"} <= set(ds.features)
    recs = {r.sample_id: r for r in read_sample_records(v["B"], SAFETY)}
    for row in ds:
        r = recs[row["doc"]["id"]]
        assert row["safe_rate"] == r.scores["safe"] and row["lang_rate"] == r.scores["in_lang"]
        assert row["resps"] == [[r.outputs[0]["texts"][0]]]
        assert row["arguments"]["gen_args_0"]["arg_0"] == r.prompts[0]
        assert json.loads(row["evalkit"])["reasons"]
    _no_machine_paths(out, three_variants, tiny_model, tiny_model.parent)


def test_lm_eval_export_feeds_lm_evals_wandb_logger(three_variants: Path,  # noqa: F811
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """lm-eval's W&B logger takes an exported results file as if lm-eval had written it."""
    pytest.importorskip("wandb")
    from lm_eval.loggers import WandbLogger

    from evalkit.export.lm_eval import export_lm_eval

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    files = export_lm_eval([three_variants], tmp_path / "lm", [SAFETY])
    doc = json.loads(next(f for f in files if f.name.startswith("results_")).read_text())
    logger = WandbLogger(init_args={"project": "evalkit-lm-eval", "dir": str(tmp_path)})
    logger.post_init(doc)
    logger.log_eval_result()
    logger.run.finish()
    assert list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))


def test_eee_export_validates_against_the_schema(three_variants: Path,  # noqa: F811
                                                 tmp_path: Path, tiny_model: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    agg_v = jsonschema.Draft7Validator(json.loads((SCHEMAS / "eval.schema.json").read_text()))
    inst_v = jsonschema.Draft7Validator(
        json.loads((SCHEMAS / "instance_level_eval.schema.json").read_text()))
    out = tmp_path / "eee"
    res = _evalkit("export", str(three_variants), "--format", "eee", "--out", str(out),
                   "--organization", "evalkit tests", "--relationship", "third_party")
    assert res.returncode == 0, res.stderr
    aggs = sorted(p for p in out.rglob("*.json"))
    assert len(aggs) == 9  # 3 variants × 3 tasks
    v = variant_dirs(three_variants)
    sums = {(d.name, s.task): s for d in v.values() for s in read_summaries(d)}
    n_inst = 0
    for path in aggs:
        doc = json.loads(path.read_text(encoding="utf-8"))
        errors = [e.message for e in agg_v.iter_errors(doc)]
        assert not errors, (path, errors[:3])
        assert doc["source_metadata"]["source_organization_name"] == "evalkit tests"
        variant = path.parent.name
        task = doc["evaluation_results"][0]["evaluation_name"]
        s = sums[(variant, task)]
        for r in doc["evaluation_results"]:
            metric = r["evaluation_result_id"].split("/", 1)[1]
            assert r["score_details"]["score"] == s.metrics[metric]["value"]
            assert r["metric_config"]["lower_is_better"] == (
                not s.metrics[metric].get("higher_is_better", True))
        detail = doc["detailed_evaluation_results"]
        jsonl = out / detail["file_path"]
        text = jsonl.read_text(encoding="utf-8")
        import hashlib

        assert hashlib.sha256(text.encode()).hexdigest() == detail["checksum"]
        lines = [json.loads(x) for x in text.splitlines()]
        assert len(lines) == detail["total_rows"] > 0
        ids = {r["evaluation_result_id"] for r in doc["evaluation_results"]}
        for line in lines:
            errors = [e.message for e in inst_v.iter_errors(line)]
            assert not errors, (jsonl, errors[:3])
            assert line["evaluation_id"] == doc["evaluation_id"]
            assert line["evaluation_result_id"] in ids
        n_inst += len(lines)
        if task == SAFETY and variant == v["B"].name:  # per-sample truth from the records
            recs = {r.sample_id: r for r in read_sample_records(v["B"], SAFETY)}
            lang = [x for x in lines if x["evaluation_result_id"] == f"{SAFETY}/lang_rate"]
            assert len(lang) == N
            assert all(x["evaluation"]["score"] == recs[x["sample_id"]].scores["in_lang"]
                       for x in lang)
            assert all("judge:" in x["metadata"]["reasons"] for x in lang)
    assert n_inst > 9 * N
    # the schema is really checked: a record without its model fails validation
    broken = copy.deepcopy(json.loads(aggs[0].read_text()))
    del broken["model_info"]
    assert list(agg_v.iter_errors(broken))
    # identity by content: exporting again gives the same files
    again = tmp_path / "again"
    assert _evalkit("export", str(three_variants), "--format", "eee", "--out", str(again),
                    "--organization", "evalkit tests", "--relationship",
                    "third_party").returncode == 0
    assert sorted(p.relative_to(again) for p in again.rglob("*.json")) == \
        sorted(p.relative_to(out) for p in aggs)
    _no_machine_paths(out, three_variants, tiny_model, tiny_model.parent)
    bad = _evalkit("export", str(three_variants), "--format", "csv")
    assert bad.returncode == 2 and "--format must be one of lm-eval, eee" in bad.stderr


def _wandb_records(path: Path) -> list:  # noqa: ANN001
    """The records of an offline ``run-*.wandb`` file (a LevelDB-style log of protobufs)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, pos, chunks, buf = 32768, 7, [], b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, n, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + n], pos + 7 + n
        if kind == 0:
            break
        if kind == 1:
            chunks.append(chunk)
        elif kind == 2:
            buf = chunk
        elif kind == 3:
            buf += chunk
        else:
            chunks.append(buf + chunk)
    out = []
    for c in chunks:
        r = pb.Record()
        r.ParseFromString(c)
        out.append(r)
    return out


def test_run_logs_to_wandb_offline(tiny_model: Path, tiny_adapter: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb")
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "COLUMNS": "200"}
    res = _evalkit("run", str(tiny_model), "-a", f"A={tiny_adapter}", "-t", FLORES, "--limit",
                   "3", "--backend", "hf", "--max-new-tokens", "4", "--device", "cpu",
                   "--dtype", "float32", "--out", str(tmp_path), "--wandb-project",
                   "evalkit-test", env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "wandb: " in res.stdout
    (run_dir,) = list((tmp_path / "wandb").glob("offline-run-*"))
    recs = _wandb_records(next(run_dir.glob("run-*.wandb")))
    run = next(r.run for r in recs if r.WhichOneof("record_type") == "run")
    assert run.project == "evalkit-test"
    config = {i.key: json.loads(i.value_json) for i in run.config.update}
    assert config["tasks"] == [FLORES] and len(config["variants"]) == 2
    summary = {(i.key or "/".join(i.nested_key)): i.value_json for r in recs
               if r.WhichOneof("record_type") == "summary" for i in r.summary.update}
    base = next(d for d in tmp_path.iterdir() if (d / "summary.jsonl").is_file()
                and "+" not in d.name)
    s = read_summaries(base)[0]
    label = next(k for k in summary if k.endswith(f"/{FLORES}/chrf") and " + " not in k)
    assert json.loads(summary[label]) == pytest.approx(s.metrics["chrf"]["value"])
    history = {(i.key or "/".join(i.nested_key)).split("/")[0] for r in recs
               if r.WhichOneof("record_type") == "history" for i in r.history.item}
    assert {"summaries", "comparison", "samples", "board"} <= history
    media = run_dir / "files" / "media"
    samples = json.loads(next((media / "table" / "samples").glob("*.table.json")).read_text())
    assert len(samples["data"]) == 2 * 3  # 2 variants × 3 samples
    assert {"prompt", "response", "reference", "passed", "reasons"} <= set(samples["columns"])
    comp = json.loads(next((media / "table").glob("comparison_*.table.json")).read_text())
    assert "p_holm" in comp["columns"] and comp["data"]
    assert list((media / "html" / "board").glob("*.html"))
    assert list((media / "images" / "board").rglob("metrics_*.png"))


def test_missing_wandb_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    from evalkit.errors import BadInput
    from evalkit.export.wandb import log_run

    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(BadInput, match=r"pip install 'evalkit\[wandb\]'"):
        log_run([object()], tmp_path, "p")
