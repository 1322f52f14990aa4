"""Oracle-judged SAGA tasks (summ:nob, rc:nob) with the FakeOracle, and the hand-written set."""

from __future__ import annotations

import pytest

from evalkit.types import Generation, Sample, ScoringContext

FAKE = ScoringContext(options={"oracle": "fake"})


def test_answer_matching_is_whole_word() -> None:
    from evalkit.tasks.rc import best_option, contains_answer, normalize_tokens

    assert normalize_tokens("«KwaZulu-Natal», sa Hu.") == ["kwazulu", "natal", "sa", "hu"]
    assert contains_answer("Det var Hu som sa det.", ["Hu"])
    assert not contains_answer("Hun sa det.", ["Hu"])  # no substring matches
    assert contains_answer("Resultatet ble 21-20.", ["21–20"])  # dash variants
    assert best_option("Han kom fra Mexico.", ["Spania", "Mexico", "Chile", "Peru"]) == 1
    assert best_option("Jeg vet ikke.", ["Spania", "Mexico"]) is None
    assert best_option("Spania og Mexico", ["Spania", "Mexico"]) is None  # tie


def test_parse_metrics_product_and_ci() -> None:
    from evalkit.tasks.oracle_judged import parse_metrics

    m = parse_metrics([True, True, False, False], [1.0, 1.0, 0.5, 0.0])
    assert m["parse_success"].value == pytest.approx(0.5)
    assert m["parse_score"].value == pytest.approx(0.5 * 0.625)
    lo, hi = m["parse_score"].ci
    assert 0.0 <= lo <= m["parse_score"].value <= hi <= 1.0
    passing = parse_metrics([True, True, False, False], [1.0, 1.0, 0.5, 0.0], over="passing")
    assert passing["parse_score"].value == pytest.approx(0.5)


def test_article_ranges() -> None:
    from evalkit.tasks.summ import article_ranges

    assert article_ranges(["a", "a", "b", "c", "c", "c", "a"]) == [(0, 1), (2, 2), (3, 5), (6, 6)]


def test_rc_questions_are_valid(data_dir) -> None:  # noqa: ANN001
    from evalkit.data import DataLayer
    from evalkit.tasks.rc import contains_answer, load_rc_questions
    from evalkit.tasks.summ import load_articles

    _, ranges = load_articles(DataLayer(data_dir))
    rows = load_rc_questions()
    assert len(rows) >= 50 and len({r["id"] for r in rows}) == len(rows)
    for r in rows:  # each passage is one whole article
        assert tuple(r["lines"]) in ranges, r["id"]
    from evalkit.tasks.rc import make_rc_task

    for s in make_rc_task("rc:nob").samples(DataLayer(data_dir)):
        assert contains_answer(s.data["passage"], s.reference["answers"]), s.id


def test_summ_scoring_with_fake_oracle(data_dir) -> None:  # noqa: ANN001
    from evalkit.data import DataLayer
    from evalkit.oracles.fake import FakeOracle
    from evalkit.oracles.rule import judge, parse_score
    from evalkit.tasks.summ import make_summ_task

    task = make_summ_task("summ:nob")
    samples = task.samples(DataLayer(data_dir))
    assert len(samples) > 200 and all(len(s.data["passage"]) > 100 for s in samples)
    prompt, params = task.requests(samples[0], False)[0]
    assert samples[0].data["passage"] in prompt and params.greedy
    texts = ["Hun liker kaffe.", "Kaffe om morgenen.", "", "Han sier at det går bra."]
    outs = [[Generation((texts[i % 4],))] for i in range(len(samples))]
    scored = task.score(samples, outs, FAKE)
    verdicts = judge(FakeOracle(), [texts[i % 4] for i in range(len(samples))])
    want_ps = sum(v.passed for v in verdicts) / len(verdicts)
    assert 0.3 < want_ps < 0.7
    assert scored.metrics["parse_success"].value == pytest.approx(want_ps)
    assert scored.metrics["parse_score"].value == pytest.approx(parse_score(verdicts))
    assert scored.meta["oracle"] == "fake"


def test_rc_scoring_accuracy_and_aps() -> None:
    from evalkit.tasks.rc import ReadingTask

    task = ReadingTask()
    samples = [Sample(f"q{i}", {"passage": "p", "question": "q", "options": []},
                      {"answers": ["Jamie Siminoff", "Siminoff"]}) for i in range(4)]
    answers = ["Direktøren heter Jamie Siminoff.",  # well-formed, correct
               "Siminoff.",                          # not a sentence, correct
               "Han er sjef.",                       # well-formed, wrong
               ""]                                   # nothing
    scored = task.score(samples, [[Generation((a,))] for a in answers], FAKE)
    assert [p["correct"] for p in scored.per_sample] == [True, True, False, False]
    assert [p["passed"] for p in scored.per_sample] == [True, False, True, False]
    assert scored.metrics["aps"].value == pytest.approx(0.5)
    assert scored.metrics["accuracy"].value == pytest.approx(0.5)
    assert scored.metrics["accuracy_and_wellformed"].value == pytest.approx(0.25)


def test_belebele_option_scoring() -> None:
    from evalkit.tasks.rc import ReadingTask, rc_prompt

    task = ReadingTask(name="rc:nob:belebele", source="belebele")
    opts = ["i Oslo", "i Bergen", "i Tromsø", "i Bodø"]
    s = Sample("b0", {"passage": "p", "question": "Hvor?", "options": opts},
               {"answers": ["i Bergen"], "gold_option": 1})
    assert "2) i Bergen" in rc_prompt("p", "Hvor?", opts)
    scored = task.score([s, s], [[Generation(("Han bor i Bergen.",))],
                                 [Generation(("Han bor i Oslo.",))]], FAKE)
    assert [p["correct"] for p in scored.per_sample] == [True, False]


def test_bad_task_names() -> None:
    from evalkit.errors import BadInput
    from evalkit.tasks.ppl import make_ppl_task
    from evalkit.tasks.rc import make_rc_task
    from evalkit.tasks.summ import make_summ_task

    for fn, name in ((make_ppl_task, "ppl:eus"), (make_rc_task, "rc:dan"),
                     (make_summ_task, "summ:nno")):
        with pytest.raises(BadInput):
            fn(name)
