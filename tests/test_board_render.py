"""Boards on a base + two adapters run: Holm-corrected verdicts, readable labels, per-task
settings and model metadata in the details, and plots with one axis per metric scale, no
empty panels, nothing clipped and a significance mark for every significant cell."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from scripted_runs import FLORES, IFEVAL, SAFETY, second_adapter, three_variants  # noqa: F401

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def basque(three_variants: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201, F811
    from evalkit.leaderboard.build import generate
    from evalkit.leaderboard.config import load_config

    cfg = load_config(REPO / "leaderboards" / "basque.toml")
    return generate([three_variants], cfg, tmp_path_factory.mktemp("board"))


def test_holm_decides_the_marks(basque) -> None:  # noqa: ANN001
    from evalkit.stats import holm

    board = basque
    for r in board.rows:
        cells = [(c, board.cell(r, c)) for c in board.columns]
        tested = [(c, x) for c, x in cells if x.p_value is not None]
        if not board.baselines.get(r.key):
            assert not tested
            continue
        adjusted = holm([x.p_value for _, x in tested])
        for (c, x), p in zip(tested, adjusted):
            assert x.p_holm == pytest.approx(p)
            significant = p < board.config.alpha and x.delta != 0
            assert (x.verdict in ("better", "worse")) == significant, (r.label, c.id)
    # adapter B's BLEU gain passes at α alone but not after the correction: no dot
    b = next(r for r in board.rows if r.adapter_label == "B")
    cell = board.cell(b, next(c for c in board.columns if c.task == FLORES and c.metric == "bleu"))
    assert cell.p_value < 0.05 <= cell.p_holm and cell.verdict == "same"
    # the target-language rate is tested from the detected languages the records keep
    tl = board.cell(b, next(c for c in board.columns if c.metric == "target_lang_rate"
                            and c.task == FLORES))
    assert tl.p_value is not None and tl.verdict == "better"


def test_labels_and_details(basque, three_variants: Path, tmp_path: Path) -> None:  # noqa: ANN001, F811
    from evalkit.leaderboard.collect import load_rows
    from evalkit.leaderboard.details import row_details

    board = basque
    labels = {c.metric: c.metric_label for c in board.columns}
    assert labels["inst_level_strict_acc"] == "Instruction strict"
    assert labels["gated_safe_rate"] == "Safe + in language" and labels["chrf++"] == "chrF++"
    ad = next(r for r in board.rows if r.adapter_label == "A")
    details = dict(row_details(ad))
    assert details["adapter rank"].startswith("r = 4, alpha = 8")
    assert details["parameters"].endswith("(111,424)")
    assert "/" not in details["model"] and "/" not in details["adapter base model"]
    # chat template per task: a run where only IFEval used it says so
    runs = tmp_path / "runs"
    src = next(d for d in three_variants.iterdir() if d.name.startswith("tiny-"))
    shutil.copytree(src, runs / src.name)
    lines = (runs / src.name / "summary.jsonl").read_text().splitlines()
    edited = []
    for line in lines:
        s = json.loads(line)
        s["chat_template"] = {"chat_applied": s["task"] == IFEVAL,
                              "chat_template_sha256": "ab" * 32 if s["task"] == IFEVAL else None}
        edited.append(json.dumps(s))
    (runs / src.name / "summary.jsonl").write_text("\n".join(edited) + "\n")
    (row,) = load_rows([runs])
    chat = dict(row_details(row))["chat template"]
    assert chat == (f"applied on {IFEVAL} · not applied on {FLORES}, {SAFETY} "
                    "(template sha256 abababababab)")


def _inside(fig) -> None:  # noqa: ANN001
    fig.canvas.draw()
    box = fig.bbox
    def shown(ax, labels, lim, i):  # noqa: ANN001, ANN202 - ticks beyond the limits are not drawn
        lo, hi = sorted(lim)
        return [t for t in labels if lo - 1e-9 <= t.get_position()[i] <= hi + 1e-9]

    texts = [t for ax in fig.axes
             for t in (*shown(ax, ax.get_xticklabels(), ax.get_xlim(), 0),
                       *shown(ax, ax.get_yticklabels(), ax.get_ylim(), 1),
                       ax.xaxis.label, ax.yaxis.label) if t.get_text()]
    texts += list(fig.texts) + [t for lg in fig.legends for t in lg.get_texts()]
    for t in texts:
        bb = t.get_window_extent()
        assert bb.x0 >= -0.5 and bb.y0 >= -0.5 and bb.x1 <= box.x1 + 0.5 and \
            bb.y1 <= box.y1 + 0.5, (t.get_text(), bb, box)


def test_plots_one_axis_per_scale_no_empty_panels_nothing_clipped(basque) -> None:  # noqa: ANN001
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from evalkit.leaderboard.plots import _deltas_figure, _groups, _metrics_figure

    board = basque
    cols = [c for c in board.columns if any(board.cell(r, c).value is not None
                                            for r in board.rows)]
    assert len(cols) < len(board.columns)  # eu→en, IFEval eu, safety eu, BL2MP: not run
    groups = _groups(board, cols)
    assert [g[0] for g in groups] == ["points", "rate"]
    fig = _metrics_figure(plt, board, groups)
    assert len(fig.axes) == 2  # one per scale, none empty
    points, rates = fig.axes
    assert points.get_ylim()[1] <= 100 and rates.get_ylim() == (0, 1.12)
    ticks = [t.get_text() for ax in fig.axes for t in ax.get_xticklabels()]
    assert all("eu→en" not in t and "BL2MP" not in t for t in ticks)
    assert all(t.get_text().endswith(("BLEU", "chrF", "chrF++"))
               for t in points.get_xticklabels())
    dots = sum(1 for ax in fig.axes for t in ax.texts if t.get_text() == "●")
    significant = sum(1 for r in board.rows for c in cols
                      if board.cell(r, c).verdict in ("better", "worse"))
    assert dots == significant > 0
    _inside(fig)
    plt.close(fig)
    pairs = [r for r in board.rows if board.baselines.get(r.key)]
    fig = _deltas_figure(plt, board, pairs, groups)
    assert len(fig.axes) == 2
    assert sum(1 for ax in fig.axes for t in ax.texts if t.get_text() == "●") == significant
    _inside(fig)
    plt.close(fig)
