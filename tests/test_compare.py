"""`evalkit compare`: sacrebleu's own paired tests for BLEU/chrF, exact McNemar / permutation
tests for rates and means, Holm's correction (a hand-worked table), the three output formats,
and `evalkit run` with adapters ending with the comparison against the base."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scripted_runs import FLORES, IFEVAL, SAFETY, second_adapter, three_variants, variant_dirs  # noqa: F401

from evalkit.compare import MetricRow, apply_holm, compare_dirs, mean_pair_test


def _hyps(d: Path, task: str) -> tuple[list[str], list[str]]:
    from evalkit.records import read_sample_records

    recs = sorted(read_sample_records(d, task), key=lambda r: r.sample_id)
    return [r.outputs[0]["texts"][0].strip() for r in recs], [r.reference for r in recs]


@pytest.mark.parametrize("test", ["bs", "ar"])
def test_mt_p_values_are_sacrebleus(three_variants: Path, test: str) -> None:  # noqa: F811
    from sacrebleu.metrics import BLEU, CHRF
    from sacrebleu.significance import PairedTest

    v = variant_dirs(three_variants)
    comp = compare_dirs(v["base"], v["B"], [FLORES], test=test)
    (hb, refs), (hB, refs_b) = _hyps(v["base"], FLORES), _hyps(v["B"], FLORES)
    assert refs == refs_b
    n = 1000 if test == "bs" else 10000
    _, scores = PairedTest([("base", hb), ("B", hB)],
                           {"bleu": BLEU(), "chrf": CHRF(), "chrf++": CHRF(word_order=2)},
                           [refs], test_type=test, n_samples=n)()
    for metric, key in (("bleu", "BLEU"), ("chrf", "chrF2"), ("chrf++", "chrF2++")):
        row = next(r for r in comp.rows if r.metric == metric)
        assert row.p_value == scores[key][1].p_value, (metric, row.p_value)
        assert row.delta == pytest.approx(scores[key][1].score - scores[key][0].score, abs=1e-9)
        assert row.test == f"sacrebleu-paired-{test}-{n}"
        assert row.delta_ci is not None and row.delta_ci[0] <= row.delta <= row.delta_ci[1]


def test_rates_use_exact_mcnemar(three_variants: Path) -> None:  # noqa: F811
    from scipy.stats import binomtest

    from evalkit.records import read_sample_records

    v = variant_dirs(three_variants)
    comp = compare_dirs(v["base"], v["B"], [SAFETY])
    row = next(r for r in comp.rows if r.metric == "lang_rate")
    a = {r.sample_id: r.scores["in_lang"] for r in read_sample_records(v["base"], SAFETY)}
    b = {r.sample_id: r.scores["in_lang"] for r in read_sample_records(v["B"], SAFETY)}
    k = sum(1 for i in a if b[i] and not a[i])
    l_ = sum(1 for i in a if a[i] and not b[i])
    assert k + l_ > 0  # B answers some prompts in Basque: a real difference
    assert row.test == "exact McNemar"
    assert row.p_value == pytest.approx(binomtest(k, k + l_, 0.5).pvalue, rel=1e-12)
    assert row.delta == pytest.approx((sum(b.values()) - sum(a.values())) / len(a))
    assert row.verdict == "worse"  # fewer replies in the prompt's language, after Holm
    # the target-language rate of FLORES is tested from the detected languages it records
    fl = compare_dirs(v["base"], v["A"], [FLORES])
    tl = next(r for r in fl.rows if r.metric == "target_lang_rate")
    assert tl.test == "exact McNemar" and tl.p_value is not None and tl.delta > 0


def test_non_binary_means_use_the_sign_flip_permutation_test() -> None:
    from scipy.stats import permutation_test

    rng = np.random.default_rng(3)
    a = rng.normal(size=12)
    b = a + rng.normal(0.4, 1.0, size=12)
    d, p, method, ci = mean_pair_test(a, b)
    assert method == "sign-flip permutation (exact)"
    ref = permutation_test((b, a), lambda x, y: np.mean(x - y), permutation_type="samples",
                           n_resamples=np.inf, alternative="two-sided")
    assert p == pytest.approx(ref.pvalue, rel=1e-9)
    assert d == pytest.approx(float(np.mean(b - a)))
    assert ci is not None and ci[0] < d < ci[1]
    # pooled over clusters (IFEval's instruction level): Δ of the pooled rates
    num_a, num_b, den = np.array([1., 0., 2.]), np.array([2., 1., 2.]), np.array([2., 1., 3.])
    d2, p2, m2, _ = mean_pair_test(num_a, num_b, den=den)
    assert d2 == pytest.approx((5 - 3) / 6) and m2.startswith("cluster sign-flip")
    # two of the three clusters differ, both upwards: |Δ| is reached whenever their signs
    # agree, 4 of the 8 sign assignments
    assert p2 == pytest.approx(4 / 8)


def test_holm_on_a_hand_worked_table() -> None:
    """p = 0.01, 0.04, 0.03, 0.005 (+ one untested row): sorted 0.005·4 = 0.02, 0.01·3 =
    0.03, 0.03·2 = 0.06, 0.04·1 → max(0.06, 0.04) = 0.06. At α = 0.05 only the first and the
    last row stay significant, although all four raw p-values are below α."""
    def row(metric: str, p: float | None, delta: float, hib: bool = True) -> MetricRow:
        return MetricRow("t", metric, metric, hib, 0.5, 0.5 + delta, 100, delta=delta,
                         p_value=p, test="x" if p is not None else "not tested")

    rows = [row("m1", 0.01, 0.1), row("m2", 0.04, 0.1), row("m3", 0.03, -0.1),
            row("m4", 0.005, 0.2, hib=False), row("kappa", None, 0.3)]
    out = apply_holm(rows, 0.05)
    assert [r.p_holm for r in out[:4]] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert [r.verdict for r in out] == ["better", "same", "same", "worse", None]
    assert out[4].p_holm is None  # untested rows are not in the family (m = 4, not 5)


def _evalkit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evalkit.cli", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})


def test_cli_formats_and_errors(three_variants: Path, tmp_path: Path) -> None:  # noqa: F811
    v = variant_dirs(three_variants)
    res = _evalkit("compare", str(v["base"]), str(v["A"]), "--format", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["correction"] == "holm" and doc["a"]["variant"] == v["base"].name
    tasks = {r["task"] for r in doc["rows"]}
    assert tasks == {FLORES, IFEVAL, SAFETY}
    tested = [r for r in doc["rows"] if r["p_value"] is not None]
    assert all(r["p_holm"] >= r["p_value"] for r in tested)
    safe = next(r for r in doc["rows"] if r["metric"] == "safe_rate")
    assert safe["verdict"] == "better" and safe["label"] == "Safe"  # A refuses harm
    md = _evalkit("compare", str(v["base"]), str(v["A"]), "-t", FLORES, "-f", "markdown")
    assert md.returncode == 0 and "| task | metric | A | B |" in md.stdout
    assert "chrF++" in md.stdout and "Holm" in md.stdout and IFEVAL not in md.stdout
    table = _evalkit("compare", str(v["base"]), str(v["A"]), "-t", SAFETY)
    assert table.returncode == 0 and "● better" in table.stdout and "p (Holm)" in table.stdout
    for args, needle in ((["-f", "xml"], "--format"), (["-t", "nope"], "not run by both"),
                         ([], "holds 3 variants")):
        a, b = (str(three_variants), str(v["A"])) if not args else (str(v["base"]), str(v["A"]))
        bad = _evalkit("compare", a, b, *args)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
        lines = bad.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], bad.stderr
    (tmp_path / "empty").mkdir()
    bad = _evalkit("compare", str(tmp_path / "empty"), str(v["A"]))
    assert bad.returncode == 2 and "no run records" in bad.stderr


def test_run_with_adapters_ends_with_the_comparison(tiny_model: Path, tiny_adapter: Path,
                                                    second_adapter: Path,  # noqa: F811
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Real generation (hf backend, tiny model and two random adapters) through the CLI."""
    from typer.testing import CliRunner

    from evalkit.cli import app

    monkeypatch.setenv("COLUMNS", "200")
    common = ["-t", FLORES, "--limit", "4", "--backend", "hf", "--max-new-tokens", "6",
              "--device", "cpu", "--dtype", "float32"]
    res = CliRunner().invoke(app, ["run", str(tiny_model), "-a", f"A={tiny_adapter}", "-a",
                                   f"B={second_adapter}", *common, "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    out = res.output
    # one comparison per adapter against the base, no separate per-variant tables
    assert out.count("vs  tiny") == 2 and "tiny + A  vs  tiny" in out
    assert "Δ B−A" in out and "p (Holm)" in out and "value [95% CI]" not in out
    assert "samples: " in out and (tmp_path / "view" / "index.html").is_file()
    # without a base there is nothing to compare with: the plain table is printed
    res = CliRunner().invoke(app, ["run", str(tiny_model), "-a", f"A={tiny_adapter}",
                                   "--no-base", *common, "--out", str(tmp_path / "nb")])
    assert res.exit_code == 0, res.output
    assert "value [95% CI]" in res.output and "p (Holm)" not in res.output
