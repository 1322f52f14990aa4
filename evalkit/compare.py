"""`evalkit compare A B`: two model variants side by side, metric by metric, with paired tests.

For every task both variants ran and every metric (breakdowns such as ``safe_rate/<category>``
only with ``--all-metrics``): A, B, Δ = B − A with a 95 % paired-bootstrap interval, a paired
p-value and the same p-value after Holm's correction over all tests of the comparison (the
family is one comparison: every task × metric tested between A and B).

Which test (all on the per-sample records, aligned by sample id):

* sacrebleu metrics (BLEU, chrF, chrF++, spBLEU): sacrebleu's own paired bootstrap (``--test
  bs``, 1,000 resamples) or approximate randomisation (``ar``, 10,000 trials), replayed from
  the stored per-sentence statistics (`evalkit.leaderboard.stats.mt_paired_test`): the p-value
  is ``sacrebleu --paired-bs`` / ``--paired-ar``'s with seed 12345;
* means of 0/1 outcomes (accuracies, pass and language rates): the exact McNemar test;
* other means of per-sample values: the two-sided sign-flip permutation test (exact when
  2^n ≤ 10,000, else 10,000 random flips, seed 12345);
* anything without per-sample values (κ, spreads over seeds, corpus ratios): A, B and Δ only.

Cells whose task version, sample set or sacrebleu signature differ are never tested.
`print_run_comparison` is what `evalkit run` prints when it evaluated adapters with their base.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import typer

from evalkit.errors import BadInput

BS_RESAMPLES = 1000
AR_TRIALS = 10000
TEST_SEED = 12345  # sacrebleu's SACREBLEU_SEED default: p-values equal `sacrebleu --paired-*`


@dataclass(frozen=True)
class MetricRow:
    """One task × metric of a comparison."""

    task: str
    metric: str
    label: str
    higher_is_better: bool
    a: float | None
    b: float | None
    n: int | None
    delta: float | None = None
    delta_ci: tuple[float, float] | None = None
    p_value: float | None = None
    p_holm: float | None = None
    test: str = ""
    #: "better" / "worse" (B vs A, Holm-corrected p < alpha, direction-aware), "same", or None
    verdict: str | None = None


@dataclass
class Comparison:
    """A vs B over their common tasks."""

    a: str
    b: str
    a_key: str
    b_key: str
    alpha: float
    test: str
    rows: list[MetricRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (the ``--format json`` document)."""
        return {"a": {"label": self.a, "variant": self.a_key},
                "b": {"label": self.b, "variant": self.b_key},
                "delta": "b - a", "alpha": self.alpha, "correction": "holm",
                "mt_test": f"sacrebleu-paired-{self.test}", "rows": [asdict(r) for r in self.rows],
                "notes": self.notes}


# ---------------------------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------------------------

def _finite(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def mean_pair_test(xa: Any, xb: Any, scale: float = 1.0, seed: int = TEST_SEED,
                   den: Any = None) -> tuple[float, float, str, tuple[float, float] | None]:
    """(Δ, p, method, Δ CI) for per-sample values whose mean is the metric (NaN pairs dropped).

    0/1 outcomes: exact McNemar; otherwise the sign-flip permutation test. The CI is the
    percentile bootstrap of the paired difference (1,000 resamples, seed 0). With `den` the
    metric is Σ x / Σ den (a rate pooled over clusters, such as IFEval's instruction level):
    the sign flips act on whole clusters and the bootstrap resamples clusters (ratio estimator).
    """
    import numpy as np

    from evalkit.stats import (
        is_binary,
        mcnemar_exact,
        percentile_interval,
        resample_weights,
        sign_flip_test,
    )

    keep = ~(np.isnan(xa) | np.isnan(xb))
    a, b = xa[keep], xb[keep]
    n = int(a.size)
    if n == 0:
        return float("nan"), float("nan"), "not tested: no paired samples", None
    if den is not None:
        dd = np.asarray(den, dtype=float)[keep]
        w = resample_weights(n, BS_RESAMPLES, 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            reps = (w @ (b - a)) / (w @ dd)
        exact = 2 ** n <= AR_TRIALS
        p = sign_flip_test(b, a, AR_TRIALS, seed, exact=exact)
        return (float((b.sum() - a.sum()) / dd.sum()), float(p),
                "cluster sign-flip permutation" + (" (exact)" if exact else f" ({AR_TRIALS})"),
                percentile_interval(reps, n=n))
    delta = float((b.mean() - a.mean()) * scale)
    if is_binary(a.tolist()) and is_binary(b.tolist()):
        p, method = mcnemar_exact(b.tolist(), a.tolist()), "exact McNemar"
    else:
        exact = 2 ** n <= AR_TRIALS
        p = sign_flip_test(b, a, AR_TRIALS, seed, exact=exact)
        method = "sign-flip permutation" + (" (exact)" if exact else f" ({AR_TRIALS})")
    w = resample_weights(n, BS_RESAMPLES, 0)
    reps = (w @ (b - a)) / n * scale
    return delta, float(p), method, percentile_interval(reps, n=n)


def mt_pair_test(metric: str, sa: Any, sb: Any, test: str = "bs"
                 ) -> tuple[float, float, str, tuple[float, float] | None]:
    """(Δ, p, method, Δ CI) from sacrebleu sufficient statistics: sacrebleu's paired test."""
    import numpy as np

    from evalkit.leaderboard.stats import PerSample, bootstrap_counts, mt_paired_test, replicates

    res = mt_paired_test(metric, sb, sa, test, BS_RESAMPLES if test == "bs" else AR_TRIALS,
                         TEST_SEED)
    counts = bootstrap_counts(sa.shape[0], BS_RESAMPLES, TEST_SEED)
    d = (replicates(PerSample(metric, "mt", (), sb), counts)
         - replicates(PerSample(metric, "mt", (), sa), counts))
    d = d[~np.isnan(d)]
    ci = (float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))) if d.size else None
    return res.delta, res.p_value, res.method, ci


def apply_holm(rows: list[MetricRow], alpha: float) -> list[MetricRow]:
    """Holm-adjust every tested row's p-value as one family and set the verdicts."""
    from dataclasses import replace

    from evalkit.stats import holm

    tested = [i for i, r in enumerate(rows) if r.p_value is not None
              and math.isfinite(r.p_value)]
    adjusted = holm([rows[i].p_value for i in tested])  # type: ignore[misc]
    out = list(rows)
    for i, p_adj in zip(tested, adjusted):
        r = rows[i]
        verdict = "same"
        if p_adj < alpha and r.delta:
            verdict = "better" if (r.delta > 0) == r.higher_is_better else "worse"
        out[i] = replace(r, p_holm=p_adj, verdict=verdict)
    return out


# ---------------------------------------------------------------------------------------------
# records
# ---------------------------------------------------------------------------------------------

def resolve_variant(path: Path) -> Path:
    """A variant directory from a path: the directory itself, or a run root holding one."""
    from evalkit.leaderboard.collect import find_variant_dirs

    dirs = find_variant_dirs([Path(path)])
    if len(dirs) == 1:
        return dirs[0]
    if not dirs:
        raise BadInput(f"{path}: no run records (summary.jsonl); pass a variant directory "
                       "written by `evalkit run`")
    raise BadInput(f"{path} holds {len(dirs)} variants ({', '.join(d.name for d in dirs)}); "
                   "pass one of those directories")


def _label(s: Any) -> str:
    from evalkit.leaderboard.labels import public_name

    name = public_name(s.model)
    if s.adapter:
        name += f" + {s.adapter_label or public_name(s.adapter)}"
    return name


def compare_dirs(a_dir: Path, b_dir: Path, tasks: Sequence[str] | None = None, *,
                 test: str = "bs", alpha: float = 0.05, all_metrics: bool = False
                 ) -> Comparison:
    """Compare variant directories `a_dir` (reference) and `b_dir` on their common tasks."""
    import numpy as np

    from evalkit.leaderboard.collect import comparability_key, describe_difference
    from evalkit.leaderboard.config import declared_sample_keys
    from evalkit.leaderboard.labels import is_breakdown, metric_label
    from evalkit.leaderboard.values import sample_values
    from evalkit.records import read_sample_records, read_summaries

    if test not in ("bs", "ar"):
        raise BadInput(f"--test must be bs or ar, not {test!r}")
    sa = {s.task: s for s in read_summaries(a_dir)}
    sb = {s.task: s for s in read_summaries(b_dir)}
    if not sa or not sb:
        empty = a_dir if not sa else b_dir
        raise BadInput(f"{empty}: no run summaries; run `evalkit run` first")
    common = [t for t in sa if t in sb]
    if tasks:
        missing = [t for t in tasks if t not in common]
        if missing:
            raise BadInput(f"task(s) {', '.join(missing)} not run by both variants; common "
                           f"tasks: {', '.join(common) or 'none'}")
        common = [t for t in common if t in tasks]
    if not common:
        raise BadInput(f"{a_dir.name} and {b_dir.name} share no task; run the same tasks on both")
    first_a, first_b = sa[common[0]], sb[common[0]]
    comp = Comparison(_label(first_a), _label(first_b), a_dir.name, b_dir.name, alpha, test)
    only = sorted((set(sa) ^ set(sb)) - set(common)) if not tasks else []
    if only:
        comp.notes.append(f"not compared (run by one side only): {', '.join(only)}")
    rows: list[MetricRow] = []
    n_breakdowns = 0
    for task in common:
        A, B = sa[task], sb[task]
        recs: dict[str, Any] = {}

        def records(d: Path, side: str, recs: dict[str, Any] = recs, task: str = task) -> Any:
            if side not in recs:
                try:
                    recs[side] = read_sample_records(d, task)
                except FileNotFoundError:
                    recs[side] = None
            return recs[side]

        declared = declared_sample_keys(task)
        for metric, ma in A.metrics.items():
            if is_breakdown(metric) and not all_metrics:
                n_breakdowns += 1
                continue
            mb = B.metrics.get(metric)
            hib = bool(ma.get("higher_is_better", True))
            va, vb = _finite(ma.get("value")), _finite((mb or {}).get("value"))
            base: dict[str, Any] = dict(task=task, metric=metric, label=metric_label(metric),
                                        higher_is_better=hib, a=va, b=vb, n=ma.get("n"))
            if mb is None:
                rows.append(MetricRow(**base, test="not tested: B lacks this metric"))
                continue
            ka, kb = comparability_key(A, metric), comparability_key(B, metric)
            if ka != kb:
                rows.append(MetricRow(**base, delta=None,
                                      test=f"not comparable: {describe_difference(kb, ka)}"))
                continue
            delta = vb - va if va is not None and vb is not None else None
            if va is None or vb is None:
                rows.append(MetricRow(**base, delta=delta, test="not tested: no value"))
                continue
            va_s, why = sample_values(metric, A, records(a_dir, "a"), declared.get(metric))
            vb_s, why_b = sample_values(metric, B, records(b_dir, "b"), declared.get(metric))
            if va_s is None or vb_s is None or va_s.kind != vb_s.kind:
                rows.append(MetricRow(**base, delta=delta,
                                      test="not tested: "
                                      + (why or why_b or "values differ in kind")))
                continue
            if va_s.ids != vb_s.ids:
                rows.append(MetricRow(**base, delta=delta, test="not tested: different samples"))
                continue
            if va_s.kind == "mt":
                d, p, method, ci = mt_pair_test(metric, va_s.values, vb_s.values, test)
            else:
                d, p, method, ci = mean_pair_test(
                    np.asarray(va_s.values, dtype=float), np.asarray(vb_s.values, dtype=float),
                    va_s.scale, den=va_s.den if va_s.kind == "ratio" else None)
            rows.append(MetricRow(**base, delta=d if math.isfinite(d) else delta, delta_ci=ci,
                                  p_value=p if math.isfinite(p) else None, test=method))
    comp.rows = apply_holm(rows, alpha)
    if n_breakdowns:
        comp.notes.append(f"{n_breakdowns} breakdown metric(s) (per category/item) not shown; "
                          "--all-metrics shows them")
    return comp


# ---------------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------------

def _f(v: float | None, ref: float | None = None) -> str:
    from evalkit.leaderboard.labels import fmt

    if v is None:
        return "—"
    return fmt(v, 2 if abs(ref if ref is not None else v) >= 2 else 3)


def _delta(r: MetricRow) -> str:
    if r.delta is None:
        return "—"
    ref = r.a if r.a is not None else r.delta
    s = ("+" if r.delta > 0 else "") + _f(r.delta, ref)
    if r.delta_ci:
        s += f" [{_f(r.delta_ci[0], ref)}, {_f(r.delta_ci[1], ref)}]"
    return s


def _p(p: float | None) -> str:
    if p is None:
        return "—"
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"


MARK = {"better": "● better", "worse": "● worse", "same": "", None: ""}


def _cells(r: MetricRow) -> list[str]:
    return [r.task, r.label + ("" if r.higher_is_better else " ↓"), _f(r.a), _f(r.b, r.a),
            _delta(r), _p(r.p_value), _p(r.p_holm), MARK[r.verdict] or
            (r.test if r.test.startswith(("not ", "no ")) else "")]


HEAD = ["task", "metric", "A", "B", "Δ B−A [95% CI]", "p", "p (Holm)", ""]


def _legend(c: Comparison) -> str:
    return (f"A = {c.a}, B = {c.b}. Δ = B − A with a 95% paired-bootstrap CI; p: sacrebleu's "
            f"paired {'bootstrap' if c.test == 'bs' else 'approximate randomisation'} for "
            "BLEU/chrF, exact McNemar for 0/1 rates, sign-flip permutation for other means; "
            f"Holm-corrected over the {sum(r.p_value is not None for r in c.rows)} tests "
            f"shown; ● = significant after correction (α = {c.alpha}); ↓ = lower is better.")


def to_markdown(c: Comparison) -> str:
    """A pipe table plus its legend and notes."""
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    out = [f"**{esc(c.b)}** vs **{esc(c.a)}**", "",
           "| " + " | ".join(HEAD) + " |", "| --- | --- |" + " ---: |" * 5 + " --- |"]
    out += ["| " + " | ".join(esc(x) for x in _cells(r)) + " |" for r in c.rows]
    out += ["", _legend(c)] + [f"- {n}" for n in c.notes]
    return "\n".join(out) + "\n"


def print_comparison(c: Comparison, fmt: str = "table") -> None:
    """Print `c` as a rich table, Markdown or JSON."""
    if fmt == "json":
        typer.echo(json.dumps(c.to_json(), ensure_ascii=False))
        return
    if fmt == "markdown":
        typer.echo(to_markdown(c), nl=False)
        return
    from rich.markup import escape
    from rich.table import Table

    from evalkit.report import _console

    table = Table(title=escape(f"{c.b}  vs  {c.a}"), title_justify="left")
    for i, h in enumerate(HEAD):
        table.add_column(h, justify="right" if 2 <= i <= 6 else "left", overflow="fold")
    last = None
    for r in c.rows:
        cells = [escape(x) for x in _cells(r)]
        if r.task == last:
            cells[0] = ""
        last = r.task
        if r.verdict in ("better", "worse"):
            color = "green" if r.verdict == "better" else "red"
            cells[-1] = f"[{color}]{cells[-1]}[/{color}]"
        table.add_row(*cells)
    console = _console()
    console.print(table)
    console.print(escape(_legend(c)), highlight=False)
    for n in c.notes:
        console.print(escape(f"note: {n}"), highlight=False)


def print_run_comparison(summaries: Sequence[Any], out: Path, fmt: str = "table") -> bool:
    """What `evalkit run` prints for base + adapters: each variant compared with the base.

    Returns False (printing nothing) when there is nothing to compare with: no base model among
    `summaries`, or no other variant; the caller then prints the plain results table.
    """
    by_slug: dict[str, list[Any]] = {}
    for s in summaries:
        by_slug.setdefault(s.run_id.split("@", 1)[0], []).append(s)
    bases = [k for k, ss in by_slug.items() if ss[0].adapter is None and "-merged" not in k]
    others = [k for k in by_slug if k not in bases]
    if len(bases) != 1 or not others:
        return False
    base_dir = Path(out) / bases[0]
    for k in others:
        tasks = [s.task for s in by_slug[k] if s.task in {x.task for x in by_slug[bases[0]]}]
        if not tasks:
            continue
        print_comparison(compare_dirs(base_dir, Path(out) / k, tasks), fmt)
    return True


# ---------------------------------------------------------------------------------------------
# command
# ---------------------------------------------------------------------------------------------

def compare(
    a: Path = typer.Argument(..., help="Reference variant directory (A), e.g. "
                             "runs/<model>-<hash>."),
    b: Path = typer.Argument(..., help="Variant directory to compare with A (B)."),
    task: list[str] = typer.Option([], "--task", "-t", help="Only this task (repeatable)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table | markdown | json."),
    test: str = typer.Option("bs", help="sacrebleu's paired test for BLEU/chrF: bs | ar."),
    alpha: float = typer.Option(0.05, help="Family-wise error rate for the ● marks (Holm)."),
    all_metrics: bool = typer.Option(False, "--all-metrics", help="Also per-category and "
                                     "per-item breakdown metrics."),
) -> None:
    """Compare two variants task × metric: A, B, Δ with CI, paired p-value, Holm-corrected."""
    if fmt not in ("table", "markdown", "json"):
        raise BadInput(f"--format must be table, markdown or json, not {fmt!r}")
    if not 0 < alpha < 1:
        raise BadInput(f"--alpha must lie in (0, 1), not {alpha}")
    comp = compare_dirs(resolve_variant(a), resolve_variant(b), task or None, test=test,
                        alpha=alpha, all_metrics=all_metrics)
    print_comparison(comp, fmt)


def register(app: typer.Typer) -> None:
    """Add the `compare` command."""
    app.command("compare")(compare)
