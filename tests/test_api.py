"""The Python API: `evalkit.evaluate` gives the numbers the CLI gives, as DataFrames."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FLORES = "flores:eng_Latn-nob_Latn"


def test_evaluate_equals_the_cli_and_tabulates(tiny_model: Path, tiny_adapter: Path,
                                               tmp_path: Path, data_dir: Path) -> None:
    pytest.importorskip("pandas")
    import evalkit

    res = evalkit.evaluate(str(tiny_model), [FLORES], [f"lora={tiny_adapter}"], limit=5,
                           max_new_tokens=8, out=tmp_path / "api", leaderboards=False)
    cli = subprocess.run([sys.executable, "-m", "evalkit.cli", "run", str(tiny_model), "-t",
                          FLORES, "--adapter", f"lora={tiny_adapter}", "--limit", "5",
                          "--max-new-tokens", "8", "--out", str(tmp_path / "cli"),
                          "--no-leaderboard", "--json"],
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert cli.returncode == 0, cli.stderr[-2000:]
    by_cli = {json.loads(x)["adapter_label"]: json.loads(x)["metrics"]
              for x in cli.stdout.splitlines() if x.startswith("{")}
    assert {s.adapter_label: s.metrics for s in res.summaries} == by_cli

    df = res.to_pandas()
    assert set(df["adapter"].fillna("base")) == {"base", "lora"}
    assert {"task", "metric", "value", "ci_low", "ci_high", "n"} <= set(df.columns)
    chrf = df[(df.metric == "chrf") & df.adapter.isna()].iloc[0]
    assert chrf.value == by_cli[None]["chrf"]["value"] and chrf.n == 5

    samples = res.samples(FLORES)
    assert len(samples) == 5 and {"id", "prompt", "response", "reference"} <= set(samples)
    assert res.samples(FLORES, adapter="lora")["response"].tolist() != \
        samples["response"].tolist()
    from evalkit.errors import BadInput

    with pytest.raises(BadInput, match="no records"):
        res.samples("ifeval:en")


def test_evaluate_refuses_unknown_options(tmp_path: Path) -> None:
    import evalkit
    from evalkit.errors import BadInput

    with pytest.raises(BadInput, match="unknown option"):
        evalkit.evaluate("default", [FLORES], limits=3, out=tmp_path)


def test_markdown_format_pastes_the_same_numbers(tiny_model: Path, tmp_path: Path,
                                                 data_dir: Path) -> None:
    base = [sys.executable, "-m", "evalkit.cli", "run", str(tiny_model), "-t", FLORES,
            "--limit", "3", "--max-new-tokens", "6", "--no-leaderboard"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    md = subprocess.run([*base, "--out", str(tmp_path / "a"), "--format", "markdown"],
                        capture_output=True, text=True, timeout=600, env=env)
    js = subprocess.run([*base, "--out", str(tmp_path / "b"), "--format", "json"],
                        capture_output=True, text=True, timeout=600, env=env)
    assert md.returncode == 0 and js.returncode == 0, md.stderr[-2000:] + js.stderr[-2000:]
    (summary,) = [json.loads(x) for x in js.stdout.splitlines() if x.startswith("{")]
    rows = [r.split("|")[1:-1] for r in md.stdout.splitlines() if r.startswith("| base")]
    got = {r[2].strip(): r[3].strip() for r in rows}
    chrf = summary["metrics"]["chrf"]["value"]
    assert got["chrf"] == f"{chrf:.2f}" if abs(chrf) >= 2 else f"{chrf:.3f}"
    assert "partial run: --limit 3" in md.stdout and "Chat template per task" in md.stdout
    bad = subprocess.run([*base, "--out", str(tmp_path / "c"), "--format", "yaml"],
                         capture_output=True, text=True, timeout=600, env=env)
    assert bad.returncode == 2 and "--format" in bad.stderr


def test_readme_python_example_runs(tmp_path: Path, data_dir: Path) -> None:
    """The README's API example, verbatim, in a fresh folder: it runs and its frames hold the
    run's rows."""
    pytest.importorskip("pandas")
    import re

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    code = next(m.group(1) for m in re.finditer(r"```python\n(.*?)```", readme, re.S)
                if "evalkit.evaluate" in m.group(1))
    code = "\n".join(line.strip() for line in code.splitlines())  # the block is indented
    probe = code + ("\nimport json\nprint(json.dumps([len(res.to_pandas()), "
                    "len(res.samples('flores:eng_Latn-nob_Latn'))]))\n")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600,
                          env={**os.environ, "EVALKIT_DATA_DIR": str(data_dir)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    n_rows, n_samples = json.loads(proc.stdout.strip().splitlines()[-1])
    assert n_rows >= 4 and n_samples == 20
    assert (tmp_path / "runs").is_dir()
