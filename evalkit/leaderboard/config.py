"""Board configurations: which tasks and metrics a leaderboard shows, and how it compares.

A board is a TOML file (``leaderboards/<name>.toml``)::

    title = "Basque"
    baseline = "auto"          # "auto": each adapter/merge is compared with its own base model;
                               # or a label / variant-directory name / substring of one row
    test = "bs"                # paired test vs the baseline: "bs" (paired bootstrap) | "ar"
    alpha = 0.05
    correction = "holm"        # "holm": each row's tests vs its baseline are Holm-corrected

    [[tasks]]
    task = "flores:eng_Latn-eus_Latn:devtest"
    label = "EN→EU"
    group = "Basque"           # column group (language); default: the task's language
    metrics = ["bleu", "chrf", "chrf++"]   # default: every metric in the records except
                                           # breakdowns (names with "[" or "/")
    rank_metric = "chrf"       # metric that enters the rank score; default: the first one
    sample_keys = { gated_safe_rate = "gated" }  # per-sample key of a metric, if not its name
    metric_labels = { chrf = "chrF2" }           # column headings (default: readable names)

Only run records are read; a config never names models: every variant directory under the run
roots that has one of the board's tasks becomes a row.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evalkit.errors import BadInput


class TaskColumn(BaseModel):
    """One task of a board and the metrics shown for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    task: str
    label: str | None = None
    group: str | None = None
    metrics: list[str] | None = None
    rank_metric: str | None = None
    #: metric -> per-sample score key, where a task stores a metric's per-sample values under
    #: another name (safety: gated_safe_rate <- "gated"); default: the metric's own name
    sample_keys: dict[str, str] = {}
    #: metric -> column heading (default: `evalkit.leaderboard.labels.metric_label`)
    metric_labels: dict[str, str] = {}


class BoardConfig(BaseModel):
    """A leaderboard: tasks (columns), baseline choice and statistics settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    #: the board's folder under ``<out>/leaderboards/``: a plain name, never a path
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    title: str = ""
    description: str = ""
    tasks: list[TaskColumn] = Field(min_length=1)
    baseline: str = "auto"
    test: Literal["bs", "ar"] = "bs"
    #: resamples of the paired test (bs) or trials (ar); sacrebleu's defaults are 1000 / 10000
    test_samples: int | None = None
    #: seed of the paired test; 12345 is sacrebleu's default (SACREBLEU_SEED), so the p-values
    #: equal `sacrebleu --paired-bs` on the same hypotheses
    test_seed: int = 12345
    alpha: float = Field(0.05, gt=0, lt=1)
    #: multiple comparisons: "holm" adjusts each row's p-values over all of its tests against
    #: its baseline on the board (family-wise error rate ≤ alpha per row); "none" does not
    correction: Literal["holm", "none"] = "holm"
    #: bootstrap resamples behind the rank score's CI and the deltas' CIs when test = "ar"
    #: (with "bs" the test's own resamples serve, so each resampled score is computed once)
    resamples: int = Field(1000, ge=10)
    seed: int = 0
    #: refuse (error) instead of flag when runs are not comparable
    strict: bool = False
    plots: bool = True

    @property
    def task_names(self) -> list[str]:
        """Task names in column order."""
        return [t.task for t in self.tasks]

    @property
    def n_test_samples(self) -> int:
        """Resamples (bs) or trials (ar) of the paired test."""
        return self.test_samples or (1000 if self.test == "bs" else 10000)


def _toml_loads(text: str) -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    return tomllib.loads(text)


def canonical_task(name: str) -> str:
    """The runner's name for a FLORES task (``flores:a-b`` → ``flores:a-b:devtest``).

    Only FLORES names are resolved (a cheap factory); other families must be written as the
    runner records them, because resolving them could import heavy task modules (lm-eval) on
    every run's board update.
    """
    if not name.startswith("flores:"):
        return name
    from evalkit.errors import EvalkitError
    from evalkit.tasks.flores import make_task

    try:
        return make_task(name).name
    except EvalkitError:
        return name


def find_config(spec: str | Path, out: Path | None = None) -> Path:
    """A board config file from a path, or from a board name (``basque``) looked up in
    :func:`config_dirs` by file stem, then by the ``name`` a file declares."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    name = str(spec)
    if len(path.parts) == 1:  # a bare name, possibly with .toml
        name = path.stem if path.suffix == ".toml" else name
        dirs = config_dirs(out)
        for d in dirs:
            if (d / f"{name}.toml").is_file():
                return d / f"{name}.toml"
        found = {cfg.name: f for f, cfg in discover_configs(out)}
        if name in found:
            return found[name]
        known = ", ".join(sorted(found)) or "none"
        raise BadInput(f"leaderboard config {spec!r} not found: not a file, nor a board name "
                       f"in {', '.join(map(str, dirs)) or 'no config dir'} (boards: {known}); "
                       "pass a TOML file or one of those names")
    raise BadInput(f"leaderboard config {path} not found; pass a TOML file such as "
                   "leaderboards/basque.toml, or a board name such as basque")


def load_config(path: Path) -> BoardConfig:
    """Read and validate a board TOML file; the board's name defaults to the file's stem."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"leaderboard config {path} not found; pass a TOML file such as "
                       "leaderboards/basque.toml, or a board name such as basque")
    try:
        raw = _toml_loads(path.read_text(encoding="utf-8"))
    except Exception as exc:  # tomllib.TOMLDecodeError, UnicodeDecodeError
        raise BadInput(f"{path}: not valid TOML ({exc}); fix the file") from exc
    raw.setdefault("name", path.stem)
    try:
        cfg = BoardConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise BadInput(f"{path}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from exc
    tasks = [t.model_copy(update={"task": canonical_task(t.task)}) for t in cfg.tasks]
    seen: set[str] = set()
    for t in tasks:
        if t.task in seen:
            raise BadInput(f"{path}: task {t.task!r} listed twice; keep one [[tasks]] entry")
        seen.add(t.task)
    return cfg.model_copy(update={"tasks": tasks})


def auto_config(name: str, tasks: list[str]) -> BoardConfig:
    """A board over the given tasks with every metric (used when no config is given)."""
    return BoardConfig(name=name, title=f"All tasks ({name})",
                       tasks=[TaskColumn(task=t) for t in tasks])


def config_dirs(out: Path | None = None) -> list[Path]:
    """Where board configs are looked up, first match of a name wins.

    ``$EVALKIT_LEADERBOARDS`` (os.pathsep-separated), then ``<out>/leaderboards/``, then the
    checkout's ``leaderboards/`` (repository-only, like EuroEval's: not part of the wheel).
    """
    import os

    dirs: list[Path] = []
    env = os.environ.get("EVALKIT_LEADERBOARDS")
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    if out is not None:
        dirs.append(Path(out) / "leaderboards")
    repo = Path(__file__).resolve().parents[2] / "leaderboards"
    dirs.append(repo)
    return [d for d in dirs if d.is_dir()]


def discover_configs(out: Path | None = None) -> list[tuple[Path, BoardConfig]]:
    """Every board config found in `config_dirs`, one per name."""
    found: dict[str, tuple[Path, BoardConfig]] = {}
    for d in config_dirs(out):
        for f in sorted(d.glob("*.toml")):
            cfg = load_config(f)
            found.setdefault(cfg.name, (f, cfg))
    return list(found.values())


#: Per-sample keys of metrics that tasks store under another name (safety: ``gated_safe_rate``
#: ← ``gated``; summ/rc: ``aps`` ← ``passed``, ``accuracy`` ← ``correct``). A candidate is used
#: only when its per-sample mean reproduces the summary's value (`stats.per_sample` checks).
KNOWN_SAMPLE_KEYS: dict[str, str] = {
    "safe_rate": "safe", "gated_safe_rate": "gated", "lang_rate": "in_lang",
    "if_rate": "follows", "gated_if_rate": "gated", "aps": "passed", "accuracy": "correct",
    "target_lang_rate": "in_lang",
}


def sample_key_candidates(metric: str, declared: str | None = None) -> list[str]:
    """Per-sample keys to try for `metric`, most specific first: a board's declared key,
    the metric's own name, then `KNOWN_SAMPLE_KEYS`."""
    out: list[str] = []
    for k in (declared, metric, KNOWN_SAMPLE_KEYS.get(metric)):
        if k and k not in out:
            out.append(k)
    return out


def declared_sample_keys(task: str, out: Path | None = None) -> dict[str, str]:
    """metric → per-sample key that any board config found declares for `task`."""
    keys: dict[str, str] = {}
    try:
        configs = discover_configs(out)
    except BadInput:
        return keys
    for _, cfg in configs:
        for t in cfg.tasks:
            if t.task == task:
                for m, k in t.sample_keys.items():
                    keys.setdefault(m, k)
    return keys
