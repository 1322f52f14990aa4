"""Leaderboards end to end: two runs (a tiny model, then a LoRA adapter of it) regenerate the
boards; mismatched runs are flagged or refused; the HTML page renders and sorts in Chromium.

The runs use the scripted backend (canned translations derived from the FLORES references,
so the adapter is measurably better) through the real runner, records and board code; the hf
path is covered by the slow test at the end.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import zlib
from pathlib import Path

import pytest

from evalkit.api import evaluate
from evalkit.backends.scripted import ScriptedBackend
from evalkit.errors import BadInput
from evalkit.records import read_summaries
from evalkit.runner import RunConfig, run

TASK = "flores:eng_Latn-eus_Latn:devtest"
N = 40


def _responder(data_dir: Path, drop_base: float = 0.30, drop_adapter: float = 0.22):
    """Hypotheses = the reference with words dropped (fewer for the adapter), per sample."""
    from evalkit.data import DataLayer

    d = DataLayer(data_dir)
    refs = dict(zip(d.read_lines("flores200/devtest/eng_Latn.devtest"),
                    d.read_lines("flores200/devtest/eus_Latn.devtest")))

    def respond(req, k: int) -> str:  # noqa: ANN001
        src = req.prompt.split("\n")[0].split("sentence: ", 1)[1]
        rnd = random.Random(zlib.crc32(src.encode()) + (req.adapter is not None))
        p = drop_base if req.adapter is None else drop_adapter
        return " ".join(w for w in refs[src].split() if rnd.random() > p)

    return respond


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path, tiny_adapter: Path,
             data_dir: Path) -> Path:
    """Run 1: the base model; run 2: its LoRA adapter alone. Both with board updates on."""
    out = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("evalkit.runner.make_backend",
                   lambda *a, **k: ScriptedBackend(_responder(data_dir)))
        mp.delenv("EVALKIT_LEADERBOARDS", raising=False)
        evaluate(str(tiny_model), [TASK], limit=N, out=out, backend="scripted")
        board = out / "leaderboards" / "basque"
        assert (board / "board.csv").exists()
        first = list(csv.DictReader(open(board / "board.csv", encoding="utf-8")))
        assert len(first) == 1
        evaluate(str(tiny_model), [TASK], [str(tiny_adapter)], include_base=False, limit=N,
                 out=out, backend="scripted")
    return out


def _summaries(out: Path) -> dict[str, dict]:
    res = {}
    for d in out.iterdir():
        if (d / "summary.jsonl").exists():
            (s,) = read_summaries(d)
            res["adapter" if s.adapter else "base"] = s.model_dump()
    return res


def test_boards_regenerate_after_each_run(two_runs: Path) -> None:
    board = two_runs / "leaderboards" / "basque"
    for name in ("index.html", "board.md", "board.csv", "board_long.csv", "board.json"):
        assert (board / name).is_file(), name
    # plots are drawn on demand (`evalkit leaderboard`), never by a run's refresh
    assert not (board / "plots" / "metrics.svg").exists()
    assert "plots/" not in (board / "index.html").read_text(encoding="utf-8")
    # a configured board took the run: no catch-all board
    assert not (two_runs / "leaderboards" / "all").exists()
    # the source tree's leaderboards/ only holds configs: nothing was written there
    repo_boards = Path(__file__).resolve().parents[1] / "leaderboards"
    assert not any(p.is_dir() for p in repo_boards.iterdir())
    rows = list(csv.DictReader(open(board / "board.csv", encoding="utf-8")))
    assert len(rows) == 2
    sums = _summaries(two_runs)
    by_base = {r["baseline"] == "": r for r in rows}
    base_row, ad_row = by_base[True], by_base[False]
    col = f"{TASK}|bleu"
    assert float(base_row[f"Basque/{col}"]) == pytest.approx(
        sums["base"]["metrics"]["bleu"]["value"], abs=1e-6)
    assert float(ad_row[f"Basque/{col}"]) == pytest.approx(
        sums["adapter"]["metrics"]["bleu"]["value"], abs=1e-6)
    assert float(ad_row[f"{col} ci_low"]) == pytest.approx(
        sums["adapter"]["metrics"]["bleu"]["ci"][0], abs=1e-6)
    # fewer dropped words: the adapter is significantly better on BLEU and chrF, ranked first
    assert ad_row[f"{col} verdict"] == "better"
    assert ad_row[f"{TASK}|chrf verdict"] == "better"
    assert float(ad_row[f"{col} p"]) < 0.05
    assert float(ad_row["rank_score"]) == 1.0 < float(base_row["rank_score"])
    assert rows[0]["baseline"] != ""  # sorted by rank score
    md = (board / "board.md").read_text(encoding="utf-8")
    assert "● better" in md and "Δ +" in md and "nrefs:1|case:mixed|eff:no|tok:13a" in md
    assert float(ad_row[f"{col} p_holm"]) >= float(ad_row[f"{col} p"])
    doc = json.loads((board / "board.json").read_text(encoding="utf-8"))
    assert not doc["mismatches"]


def test_cli_builds_board_with_config(two_runs: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from evalkit.cli import app

    repo = Path(__file__).resolve().parents[1]
    res = CliRunner().invoke(app, ["leaderboard", str(two_runs), "--config",
                                   str(repo / "leaderboards" / "basque.toml"), "--out",
                                   str(tmp_path / "b"), "--test", "ar", "--no-plots"])
    assert res.exit_code == 0, res.output
    assert "2 models" in res.output
    long = list(csv.DictReader(open(tmp_path / "b" / "board_long.csv", encoding="utf-8")))
    bleu = [r for r in long if r["metric"] == "bleu" and r["baseline"]]
    assert bleu and bleu[0]["test"] == "sacrebleu-paired-ar-10000"
    assert not (tmp_path / "b" / "plots").exists()


def _clone_variant(src: Path, dst: Path, edit) -> Path:  # noqa: ANN001
    """Copy a variant dir under a new name, editing its summary lines with `edit`."""
    shutil.copytree(src, dst)
    lines = (dst / "summary.jsonl").read_text(encoding="utf-8").splitlines()
    (dst / "summary.jsonl").write_text(
        "\n".join(json.dumps(edit(json.loads(x))) for x in lines if x) + "\n", encoding="utf-8")
    return dst


@pytest.mark.parametrize("field,value,reason", [
    ("task_version", "2", "task_version 2 vs 1"),
    ("sample_ids_sha256", "0" * 64, "different sample set"),
    ("signature", "nrefs:1|case:lc|eff:no|tok:intl|smooth:exp|version:2.6.0",
     "sacrebleu signature"),
])
def test_mismatched_runs_are_flagged_or_refused(two_runs: Path, tmp_path: Path, field: str,
                                                value: str, reason: str) -> None:
    from evalkit.leaderboard.build import generate
    from evalkit.leaderboard.config import load_config

    runs = tmp_path / "runs"
    runs.mkdir()
    for d in two_runs.iterdir():
        if (d / "summary.jsonl").exists():
            shutil.copytree(d, runs / d.name)
    adapter_dir = next(d for d in runs.iterdir() if "+" in d.name)

    def edit(s: dict) -> dict:
        if field == "signature":
            s["metrics"]["bleu"]["signature"] = value
        else:
            s[field] = value
        return s

    _clone_variant(adapter_dir, adapter_dir.with_name(adapter_dir.name + "-odd"), edit)
    # make the odd copy a distinct adapter (its own base relation stays the same model)
    cfg = load_config(Path(__file__).resolve().parents[1] / "leaderboards" / "basque.toml")
    board = generate([runs], cfg.model_copy(update={"plots": False}), tmp_path / "out")
    flagged = [m for m in board.mismatches if reason in m.reason]
    assert flagged, board.mismatches
    odd = next(r for r in board.rows if r.key.endswith("-odd"))
    col = next(c for c in board.columns if c.metric == "bleu" and c.task == TASK)
    cell = board.cell(odd, col)
    assert not cell.comparable and cell.p_value is None and cell.verdict is None
    assert cell.test_note == "not tested: runs not comparable"
    # the flagged cell is not ranked against the others and the page says why
    html = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert "Not comparable" in html and "⚠" in html
    with pytest.raises(BadInput, match="not comparable"):
        generate([runs], cfg.model_copy(update={"strict": True, "plots": False}),
                 tmp_path / "strict")


def test_explicit_baseline_and_missing_inputs(two_runs: Path, tmp_path: Path) -> None:
    from evalkit.leaderboard.build import generate
    from evalkit.leaderboard.config import auto_config, load_config

    cfg = auto_config("x", [TASK]).model_copy(update={"baseline": "lora", "plots": False})
    board = generate([two_runs], cfg, tmp_path / "x")
    base = next(r for r in board.rows if r.adapter is None)
    col = next(c for c in board.columns if c.metric == "bleu")
    assert board.baselines[base.key] is not None
    assert board.cell(base, col).verdict == "worse"
    with pytest.raises(BadInput, match="no such run directory"):
        generate([tmp_path / "nope"], None, tmp_path / "y")
    bad = tmp_path / "bad.toml"
    bad.write_text("title = 'x'\n[[tasks]]\ntask = 'flores:eng_Latn-eus_Latn'\nmetricz = []\n")
    with pytest.raises(BadInput, match="metricz"):
        load_config(bad)


@pytest.fixture(scope="module")
def close_runs(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path, tiny_adapter: Path,
               data_dir: Path) -> Path:
    """Base and adapter in one run, with nearly equal hypotheses (p-values not at the floor)."""
    out = tmp_path_factory.mktemp("close")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("evalkit.runner.make_backend",
                   lambda *a, **k: ScriptedBackend(_responder(data_dir, 0.30, 0.26)))
        run(RunConfig(model=str(tiny_model), adapters=[str(tiny_adapter)], tasks=[TASK],
                      limit=N, out=out, backend="scripted", update_leaderboards=False))
    return out


@pytest.mark.parametrize("test,samples", [("bs", 1000), ("ar", 2000)])
def test_paired_significance_equals_sacrebleu(close_runs: Path, tmp_path: Path, test: str,
                                              samples: int) -> None:
    """The board's p-values are sacrebleu's own paired test on the same hypotheses."""
    from sacrebleu.metrics import BLEU, CHRF
    from sacrebleu.significance import PairedTest

    from evalkit.leaderboard.build import generate
    from evalkit.leaderboard.config import auto_config
    from evalkit.records import read_sample_records

    cfg = auto_config("sig", [TASK]).model_copy(update={
        "test": test, "test_samples": samples, "plots": False})
    board = generate([close_runs], cfg, tmp_path / "b")
    base = next(r for r in board.rows if r.adapter is None)
    ad = next(r for r in board.rows if r.adapter is not None)

    def hyps(row) -> tuple[list[str], list[str]]:  # noqa: ANN001
        recs = sorted(read_sample_records(row.run_dir, TASK), key=lambda r: r.sample_id)
        return [r.outputs[0]["texts"][0].strip() for r in recs], [r.reference for r in recs]

    (hb, refs), (ha, refs_a) = hyps(base), hyps(ad)
    assert refs == refs_a
    metrics = {"bleu": BLEU(), "chrf": CHRF(), "chrf++": CHRF(word_order=2)}
    _, scores = PairedTest([("base", hb), ("adapter", ha)], metrics, [refs], test_type=test,
                           n_samples=samples)()
    ps = []
    for name, key in (("bleu", "BLEU"), ("chrf", "chrF2"), ("chrf++", "chrF2++")):
        col = next(c for c in board.columns if c.metric == name)
        cell = board.cell(ad, col)
        ref = scores[key][1]
        assert cell.p_value == ref.p_value, (name, cell.p_value, ref.p_value)
        assert cell.delta == pytest.approx(ref.score - scores[key][0].score, abs=1e-9)
        assert cell.test_method == f"sacrebleu-paired-{test}-{samples}"
        ps.append(cell.p_value)
    # a meaningful comparison: not every p-value sits at the resampling floor
    assert max(ps) > 5 / (samples + 1)


# ---------------------------------------------------------------- the page in a real browser


def test_html_renders_sorts_and_links_in_chromium(two_runs: Path, tiny_model: Path,
                                                  tmp_path: Path) -> None:
    from cdp import Chromium, chromium_binary, save_artifact

    from evalkit.view.build import build_view

    exe = chromium_binary()
    if exe is None:
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    board_dir = two_runs / "leaderboards" / "basque"
    page = board_dir / "index.html"
    build_view([two_runs], two_runs / "view")  # what `evalkit run` / `leaderboard` write
    sums = _summaries(two_runs)
    # nothing on a publishable page names a path of this machine
    for f in ("index.html", "board.md", "board.csv", "board_long.csv", "board.json"):
        text = (board_dir / f).read_text(encoding="utf-8")
        assert str(two_runs) not in text and str(tiny_model) not in text, f
        assert str(Path(tiny_model).parent) not in text and "/tmp/" not in text, f
    with Chromium(exe, tmp_path / "profile", width=1400, height=1000) as browser:
        browser.set_viewport(1400, 1000)
        browser.open(page.as_uri())
        # fits a 1,400 px page: no page scroll, no table scroll, the model column sticks
        assert browser.eval("document.documentElement.scrollWidth") <= 1400
        assert browser.eval("Array.from(document.querySelectorAll('.scroll'))"
                            ".every(d => d.scrollWidth <= d.clientWidth)")
        assert browser.eval("getComputedStyle(document.querySelector('td.model')).position") \
            == "sticky"
        table = "#board-0"
        heads = browser.eval(f"Array.from(document.querySelectorAll('{table} th.metric'))"
                             ".map(h => [h.innerText.trim(), h.title, h.getAttribute('data-col')])")
        bleu = next(h for h in heads if h[0].startswith("BLEU"))
        assert "bleu" in bleu[1] and "higher is better" in bleu[1]  # the id in the tooltip
        assert not any("_" in h[0] for h in heads)  # readable names, not ids
        bleu_i = int(bleu[2])
        rows = browser.eval(f"Array.from(document.querySelectorAll('{table} tr.main'))"
                            ".map(r => Array.from(r.cells).map(c => c.innerText.trim()))")
        assert len(rows) == 2
        # rank order: the adapter first, its BLEU as recorded, Δ vs the base with the dot
        assert rows[0][0].startswith("tiny + ") and "lora" in rows[0][0]
        ad = sums["adapter"]["metrics"]["bleu"]["value"]
        base = sums["base"]["metrics"]["bleu"]["value"]
        cell = rows[0][bleu_i].split("\n")
        assert cell[0] == f"{ad:.2f}" and cell[-1] == f"Δ {ad - base:+.2f}●"
        assert rows[1][bleu_i].split("\n")[0] == f"{base:.2f}"
        sig = browser.eval(f"document.querySelector('{table} tr.main td:nth-child({bleu_i + 1}) "
                           ".d.better .sig').textContent")
        assert sig == "●"
        # the sort arrow is the header's, not the cell's: distinct symbols
        assert browser.eval(f"getComputedStyle(document.querySelector('{table} th.rank'), "
                            "'::after').content").strip('"').strip() == "▲"
        browser.screenshot(tmp_path / "board.png")
        # a real mouse click on the BLEU header sorts ascending
        names = (f"Array.from(document.querySelectorAll('{table} tr.main .name'))"
                 ".map(n => n.innerText)")
        before = browser.eval(names)
        assert before[1].startswith("tiny (")  # the base model
        browser.click(f"{table} th.sortable[data-col='{bleu_i}']")
        assert browser.eval(names) == before[::-1]  # ascending BLEU: the base model first
        assert browser.eval(f"document.querySelector(\"{table} th[data-col='{bleu_i}']\")"
                            ".getAttribute('aria-sort')") == "ascending"
        # the details row: model size, adapter rank, per-task chat template
        browser.click(f"{table} tbody:last-child button.more")  # the adapter, after sorting
        details = browser.eval(f"document.querySelector('{table} tbody:last-child "
                               "tr.details').innerText")
        assert not browser.eval(f"document.querySelector('{table} tbody:last-child "
                                "tr.details').hidden")
        assert "adapter rank" in details and "r = 4" in details and "parameters" in details
        assert "chat template" in details and TASK in details
        browser.screenshot(tmp_path / "board-details.png")
        # every value links to its samples: click through to the viewer, adapter selected
        href = browser.eval(f"document.querySelector('{table} tbody:last-child "
                            f"td:nth-child({bleu_i + 1}) a').href")
        assert href.startswith("file:")
        assert "/view/flores__eng_Latn-eus_Latn__devtest.html#v=" in href
        browser.click(f"{table} tbody:last-child td:nth-child({bleu_i + 1}) a")
        browser.wait("document.getElementById('va') !== null")
        key = next(d.name for d in two_runs.iterdir() if "+" in d.name)
        assert browser.eval("document.querySelector('.col.a').getAttribute('data-v')") == key
        # no request left the machine: every resource is inline or a local file
        assert all(u.startswith(("file:", "data:", "about:")) for u in browser.requested)
        assert not browser.errors, browser.errors
    for name in ("board.png", "board-details.png"):
        assert (tmp_path / name).stat().st_size > 10_000
        save_artifact(tmp_path / name)


# ---------------------------------------------------------------- the real hf path (slow)


@pytest.mark.slow
def test_hf_runs_of_model_and_adapter_build_boards(tiny_model: Path, tiny_adapter: Path,
                                                   data_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from evalkit.cli import app

    for extra in ([], ["--adapter", str(tiny_adapter), "--no-base"]):
        res = CliRunner().invoke(app, ["run", str(tiny_model), *extra, "-t", TASK, "--limit",
                                       "8", "--backend", "hf", "--out", str(tmp_path),
                                       "--dtype", "float32", "--device", "cpu"])
        assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(open(tmp_path / "leaderboards" / "basque" / "board.csv",
                                    encoding="utf-8")))
    assert len(rows) == 2 and {r["baseline"] == "" for r in rows} == {True, False}
