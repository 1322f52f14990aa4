"""Assembling a board: columns (task × metric), cells with CIs, tests vs baselines, rank score.

`build_board` is pure with respect to the records it is given (rows from
`evalkit.leaderboard.collect.load_rows`); writers in `render` and `plots` only format its result.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from evalkit.errors import BadInput
from evalkit.leaderboard.cache import StatsCache, digest, values_digest
from evalkit.leaderboard.collect import Mismatch, Row, comparability_key, describe_difference
from evalkit.leaderboard.config import BoardConfig
from evalkit.leaderboard.labels import METRIC_DOCS, metric_label
from evalkit.leaderboard.stats import (
    PerSample,
    RankScore,
    TestResult,
    bootstrap_counts,
    bs_p_value,
    corpus_score,
    normal_replicates,
    paired_test,
    rank_scores,
    replicates,
)
from evalkit.leaderboard.values import SampleValues, sample_values


@dataclass(frozen=True)
class Column:
    """One task × metric column."""

    task: str
    metric: str
    label: str
    group: str
    higher_is_better: bool = True
    description: str = ""
    ranked: bool = False
    sample_key: str | None = None
    task_label: str = ""
    metric_label: str = ""
    #: the metric's declared kind and scale (`evalkit.metrics.Metric`); None for records
    #: written before metrics were declared
    kind: str | None = None
    scale: float | None = None

    @property
    def id(self) -> str:
        """Stable column id (CSV header, HTML data attribute)."""
        return f"{self.task}|{self.metric}"


@dataclass
class Cell:
    """One row's value in one column, its CI, comparability flags and baseline test."""

    value: float | None = None
    ci: tuple[float, float] | None = None
    n: int | None = None
    signature: str | None = None
    flags: list[str] = field(default_factory=list)
    comparable: bool = True
    delta: float | None = None
    delta_ci: tuple[float, float] | None = None
    p_value: float | None = None
    #: the p-value after Holm's correction over every test of this row against its baseline
    p_holm: float | None = None
    test_method: str | None = None
    test_note: str | None = None
    #: "better" / "worse" (significant at alpha after the board's multiple-comparison
    #: correction, direction-aware), "same", or None (no test)
    verdict: str | None = None


@dataclass
class Board:
    """Everything a writer needs."""

    config: BoardConfig
    columns: list[Column]
    rows: list[Row]
    cells: dict[tuple[str, str], Cell]
    baselines: dict[str, str | None]
    rank: dict[str, RankScore]
    mismatches: list[Mismatch]
    notes: list[str]

    def cell(self, row: Row | str, col: Column) -> Cell:
        """The cell of `row` in `col` (an empty cell when the row lacks the task)."""
        key = row if isinstance(row, str) else row.key
        return self.cells.get((key, col.id)) or Cell(flags=["not run"], comparable=False)

    def row(self, key: str) -> Row:
        """Row by key."""
        return next(r for r in self.rows if r.key == key)

    def groups(self) -> list[tuple[str, list[Column]]]:
        """Columns grouped by language group, in first-appearance order."""
        out: dict[str, list[Column]] = {}
        for c in self.columns:
            out.setdefault(c.group, []).append(c)
        return list(out.items())


def _columns(cfg: BoardConfig, rows: list[Row], notes: list[str]) -> list[Column]:
    cols: list[Column] = []
    for tc in cfg.tasks:
        summaries = [r.summaries[tc.task] for r in rows if tc.task in r.summaries]
        metrics = list(tc.metrics or [])
        if not metrics:
            for s in summaries:
                for m in s.metrics:
                    if "[" not in m and "/" not in m and m not in metrics:
                        metrics.append(m)
        if not summaries:
            notes.append(f"{tc.task}: no run records yet")
            if not metrics:
                continue
        rank_metric = tc.rank_metric or (metrics[0] if metrics else None)
        if rank_metric is not None and rank_metric not in metrics:
            raise BadInput(f"board {cfg.name}: rank_metric {rank_metric!r} of {tc.task} is not "
                           f"among its metrics {metrics}; add it to `metrics`")
        group = tc.group or (summaries[0].language if summaries else "")
        for m in metrics:
            info = next((s.metrics[m] for s in summaries if m in s.metrics), {})
            desc = METRIC_DOCS.get(m, "") or str(info.get("note") or "")
            hib = bool(info.get("higher_is_better", True))
            mlabel = tc.metric_labels.get(m) or metric_label(m)
            tlabel = tc.label or tc.task
            cols.append(Column(tc.task, m, f"{tlabel} {mlabel}", group, hib, desc,
                               m == rank_metric, tc.sample_keys.get(m), tlabel, mlabel,
                               info.get("kind"), info.get("scale")))
    return cols


def _baselines(cfg: BoardConfig, rows: list[Row], notes: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    if cfg.baseline == "auto":
        for r in rows:
            base = None
            if not r.is_base:
                base = next((b.key for b in rows if b.is_base and b.model_hash == r.model_hash),
                            None)
                if base is None:
                    notes.append(f"{r.label}: its base model ({r.model}) is not on the board; "
                                 "no significance marks")
            out[r.key] = base
        return out
    want = cfg.baseline
    exact = [r for r in rows if want in (r.key, r.label)]
    hits = exact or [r for r in rows if want in r.key or want in r.label]
    if len(hits) != 1:
        notes.append(f"baseline {want!r} matches {len(hits)} rows "
                     f"({', '.join(r.label for r in hits) or 'none'}); no significance marks")
        return {r.key: None for r in rows}
    return {r.key: (None if r.key == hits[0].key else hits[0].key) for r in rows}


def build_board(cfg: BoardConfig, rows: list[Row], cache: StatsCache | None = None) -> Board:
    """Compute every cell, test and the rank score of `rows` under `cfg`.

    With `cache` (`evalkit.leaderboard.cache`), per-sample values, bootstrap replicates and
    paired tests are looked up by content before being computed; the board is the same.
    """
    import numpy as np

    from evalkit.metrics import resample_weights

    stash = _Stash(cache or StatsCache(None))
    notes: list[str] = []
    columns = _columns(cfg, rows, notes)
    baselines = _baselines(cfg, rows, notes)
    cells: dict[tuple[str, str], Cell] = {}
    mismatches: list[Mismatch] = []
    samples: dict[tuple[str, str, str], SampleValues | None] = {}
    why_not: dict[tuple[str, str, str], str] = {}
    weights: dict[tuple[str, int], Any] = {}
    reps: dict[tuple[str, str], Any] = {}

    def get_ps(r: Row, col: Column) -> SampleValues | None:
        k = (r.key, col.task, col.metric)
        if k not in samples:
            samples[k], why_not[k] = stash.values(r, col)
        return samples[k]

    def get_reps(r: Row, col: Column, cell: Cell) -> Any:
        k = (r.key, col.id)
        if k not in reps:
            ps = get_ps(r, col)
            if ps is not None:
                n = len(ps.ids)

                def draw() -> Any:
                    if (col.task, n) not in weights:
                        # with the bootstrap test, its draws (sacrebleu's) are also the
                        # replicates behind CIs and the rank score: each resampled score is
                        # computed once; as floats once: every product with them would
                        # convert the counts anew
                        weights[(col.task, n)] = (
                            bootstrap_counts(n, cfg.n_test_samples, cfg.test_seed)
                            if cfg.test == "bs" else resample_weights(n, cfg.resamples,
                                                                      cfg.seed)
                        ).astype(np.float64)
                    return _replicates(ps, weights[(col.task, n)])

                spec = (("bs", n, cfg.n_test_samples, cfg.test_seed) if cfg.test == "bs"
                        else ("multinomial", n, cfg.resamples, cfg.seed))
                reps[k] = stash.replicates(ps, spec, draw)
            else:  # unpaired fallback from the summary's SE / CI
                seed = cfg.seed + zlib.crc32(f"{r.key}|{col.id}".encode())
                reps[k] = normal_replicates(r.summaries[col.task].metrics.get(col.metric, {}),
                                            cfg.resamples, seed)
        return reps[k]

    cell: Cell | None  # a new cell below, a looked-up one (or None) further down
    for col in columns:
        present = [r for r in rows if col.task in r.summaries]
        keys = {r.key: comparability_key(r.summaries[col.task], col.metric) for r in present}
        ref = _reference(keys, baselines)
        for r in present:
            m = r.summaries[col.task].metrics.get(col.metric)
            cell = Cell()
            cells[(r.key, col.id)] = cell
            if m is None:
                cell.flags.append("metric not in record")
                cell.comparable = False
                continue
            cell.value, cell.n = m.get("value"), m.get("n")
            cell.ci = (float(m["ci"][0]), float(m["ci"][1])) if m.get("ci") else None
            cell.signature = m.get("signature")
            limit = r.summaries[col.task].limit
            if limit is not None:
                cell.flags.append(f"partial run (--limit {limit})")
            if ref is not None and keys[r.key] != ref:
                why = describe_difference(keys[r.key], ref)
                cell.flags.append(f"not comparable: {why}")
                cell.comparable = False
                mismatches.append(Mismatch(r.label, col.task, col.metric, why))
    if cfg.strict and mismatches:
        x = mismatches[0]
        raise BadInput(f"board {cfg.name}: {x.row} on {x.task} ({x.metric}) is not comparable: "
                       f"{x.reason}; re-run it with the same task version and samples, or "
                       "drop strict to flag it instead")

    for col in columns:
        for r in rows:
            cell = cells.get((r.key, col.id))
            base_key = baselines.get(r.key)
            if cell is None or base_key is None or cell.value is None:
                continue
            bcell = cells.get((base_key, col.id))
            base = next(b for b in rows if b.key == base_key)
            if bcell is None or bcell.value is None:
                cell.test_note = "baseline has no value"
                continue
            if not (cell.comparable and bcell.comparable):
                cell.test_note = "not tested: runs not comparable"
                continue
            a, b = get_ps(r, col), get_ps(base, col)
            if a is None or b is None:
                side = r.key if a is None else base.key
                cell.test_note = f"not tested: {why_not[(side, col.task, col.metric)]}"
                cell.delta = cell.value - bcell.value
                continue
            if a.ids != b.ids:
                cell.test_note = "not tested: different samples"
                continue
            ra, rb = get_reps(r, col, cell), get_reps(base, col, bcell)

            def test(a: SampleValues = a, b: SampleValues = b, ra: Any = ra, rb: Any = rb,
                     metric: str = col.metric) -> TestResult:
                if a.kind == "mt" and cfg.test == "bs":
                    va = corpus_score(metric, a.values)
                    vb = corpus_score(metric, b.values)
                    return TestResult(va - vb, bs_p_value(ra, rb, abs(vb - va)),
                                      f"sacrebleu-paired-bs-{cfg.n_test_samples}")
                if a.kind == "ratio":
                    return _ratio_test(a, b, ra, rb, cfg.test, cfg.n_test_samples,
                                       cfg.test_seed)
                res = paired_test(_as_per_sample(a), _as_per_sample(b), cfg.test,
                                  cfg.n_test_samples, cfg.test_seed)
                assert res is not None  # same ids checked above
                return res

            # the bs test's draws are the replicates': `ra`/`rb` follow from the same key
            res = stash.test(a, b, (cfg.test, cfg.n_test_samples, cfg.test_seed), test)
            cell.delta, cell.p_value, cell.test_method = res.delta, res.p_value, res.method
            d = ra - rb
            d = d[~np.isnan(d)]
            if d.size:
                lo, hi = np.percentile(d, [2.5, 97.5])
                cell.delta_ci = (float(lo), float(hi))
    _correct(cells, baselines, cfg.alpha, cfg.correction, {c.id: c for c in columns})

    points: dict[str, dict[str, float]] = {}
    rank_reps: dict[str, dict[str, Any]] = {}
    hib: dict[str, bool] = {}
    for col in columns:
        if not col.ranked:
            continue
        hib[col.id] = col.higher_is_better
        points[col.id], rank_reps[col.id] = {}, {}
        for r in rows:
            cell = cells.get((r.key, col.id))
            if cell is None or cell.value is None or not cell.comparable:
                continue
            rr = get_reps(r, col, cell)
            if rr is None:
                continue
            points[col.id][r.key] = float(cell.value)
            rank_reps[col.id][r.key] = rr
    rank = rank_scores(points, rank_reps, hib, cfg.alpha)
    n_ranked = sum(1 for c in columns if c.ranked and points.get(c.id))
    for key, rs in rank.items():
        if rs.n_tasks < n_ranked:
            notes.append(f"{next(r.label for r in rows if r.key == key)}: rank score over "
                         f"{rs.n_tasks} of {n_ranked} tasks")
    return Board(cfg, columns, rows, cells, baselines, rank, mismatches, notes)


class _Stash:
    """`build_board`'s content-keyed look-ups in a `StatsCache` (see its module)."""

    def __init__(self, cache: StatsCache) -> None:
        self.cache = cache
        self._digests: dict[int, str] = {}

    def _digest(self, sv: SampleValues) -> str:
        if id(sv) not in self._digests:
            self._digests[id(sv)] = values_digest(sv)
        return self._digests[id(sv)]

    def values(self, r: Row, col: Column) -> tuple[SampleValues | None, str]:
        """`sample_values` of a row's column, from the cache when its records are unchanged."""
        summary = r.summaries[col.task]
        if self.cache.root is None:
            return sample_values(col.metric, summary, r.samples(col.task), col.sample_key)
        sha = r.samples_sha256(col.task)
        key = digest(("sample_values", sha, summary.model_dump_json(), col.metric,
                      col.sample_key))
        got = self.cache.get("values", key)
        if got is not None:
            if "why" in got:
                return None, str(got["why"])
            ids = str(got["ids"])
            return SampleValues(col.metric, str(got["kind"]),
                                tuple(ids.split("\n")) if ids else (), got["values"],
                                float(got["scale"]), got.get("den"), str(got["source"])), ""
        sv, why = sample_values(col.metric, summary, r.samples(col.task), col.sample_key)
        if sv is None:
            self.cache.put("values", key, {"why": why})
            return sv, why
        if any("\n" in i for i in sv.ids):  # not storable as one joined string
            return sv, why
        import numpy as np

        entry = {"kind": sv.kind, "ids": "\n".join(sv.ids), "values": np.asarray(sv.values),
                 "scale": float(sv.scale), "source": sv.source}
        if sv.den is not None:
            entry["den"] = np.asarray(sv.den)
        self.cache.put("values", key, entry)
        return sv, why

    def replicates(self, sv: SampleValues, spec: tuple[Any, ...], compute: Any) -> Any:
        """Bootstrap replicates of `sv` under the resampling `spec`."""
        key = digest(("replicates", self._digest(sv), *spec))
        got = self.cache.get("reps", key)
        if got is not None:
            return got["reps"]
        reps = compute()
        import numpy as np

        self.cache.put("reps", key, {"reps": np.asarray(reps)})
        return reps

    def test(self, a: SampleValues, b: SampleValues, spec: tuple[Any, ...], compute: Any
             ) -> TestResult:
        """The paired test of `a` against baseline `b` (`spec`: test, resamples, seed)."""
        key = digest(("paired_test", self._digest(a), self._digest(b), *spec))
        got = self.cache.get("test", key)
        if got is not None:
            return TestResult(float(got["delta"]), float(got["p_value"]), str(got["method"]))
        res = compute()
        self.cache.put("test", key, {"delta": float(res.delta), "p_value": float(res.p_value),
                                     "method": res.method})
        return res


def _as_per_sample(v: SampleValues) -> PerSample:
    return PerSample(v.metric, v.kind, v.ids, v.values, v.scale)


def _replicates(v: SampleValues, weights: Any) -> Any:
    """Bootstrap replicates of the metric; pooled rates resample whole clusters."""
    import numpy as np

    if v.kind == "ratio":
        with np.errstate(invalid="ignore", divide="ignore"):
            return (weights @ v.values) / (weights @ v.den)
    return replicates(_as_per_sample(v), weights)


def _ratio_test(a: SampleValues, b: SampleValues, ra: Any, rb: Any, test: str, samples: int,
                seed: int | None) -> TestResult:
    """A rate pooled over clusters (IFEval's instruction level): the board's test on clusters.

    "bs": the paired bootstrap over prompts (the board's shared draws `ra`, `rb`), p-value as
    for means; "ar": the sign-flip permutation of whole prompts.
    """
    import numpy as np

    from evalkit.stats import sign_flip_test

    delta = float((a.values.sum() - b.values.sum()) / a.den.sum())
    if test == "ar":
        return TestResult(delta, sign_flip_test(a.values, b.values, samples, seed, exact=False),
                          f"cluster-sign-flip-{samples}")
    diffs = np.abs(ra - rb)
    diffs = diffs[~np.isnan(diffs)]
    p = float((np.sum(diffs - diffs.mean() >= abs(delta) - 1e-12) + 1) / (diffs.size + 1))
    return TestResult(delta, p, f"paired-bs-clusters-{diffs.size}")


def _correct(cells: dict[tuple[str, str], Cell], baselines: dict[str, str | None],
             alpha: float, correction: str, columns: dict[str, Column]) -> None:
    """Holm-adjust each row's p-values (the family: every test of that row against its
    baseline on this board) and set the verdicts from the adjusted values."""
    from evalkit.stats import holm

    by_row: dict[str, list[tuple[str, str]]] = {}
    for (row, col), c in cells.items():
        if c.p_value is not None and not math.isnan(c.p_value) and baselines.get(row):
            by_row.setdefault(row, []).append((row, col))
    for keys in by_row.values():
        ps = [cells[k].p_value for k in keys]
        adjusted = holm(ps) if correction == "holm" else ps  # type: ignore[arg-type]
        for k, p in zip(keys, adjusted):
            c, column = cells[k], columns[k[1]]
            c.p_holm = p
            if p is not None and p < alpha and c.delta:
                c.verdict = "better" if (c.delta > 0) == column.higher_is_better else "worse"
            else:
                c.verdict = "same"


def _reference(keys: dict[str, tuple[str, str, str]],
               baselines: dict[str, str | None]) -> tuple[str, str, str] | None:
    """The comparability key most cells of a column share (ties: a baseline's key)."""
    if not keys:
        return None
    counts = Counter(keys.values())
    best = max(counts.values())
    tied = [k for k, c in counts.items() if c == best]
    if len(tied) > 1:
        base_keys = {keys[b] for b in baselines.values() if b in keys}
        tied.sort(key=lambda k: (k not in base_keys, str(k)))
    return tied[0]
