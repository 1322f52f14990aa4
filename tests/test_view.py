"""`evalkit view`: pages hold every sample with its reasons, nothing from a record is ever
interpreted as markup, and filtering, search and the side-by-side comparison work in a real
headless Chromium on a run with a base model and two adapters."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scripted_runs import (  # noqa: F401
    FLORES,
    HOSTILE,
    IFEVAL,
    MARKER,
    SAFETY,
    N,
    second_adapter,
    synthetic_run,
    three_variants,
    variant_dirs,
)

from evalkit.view.build import build_view, explain, page_name


def _doc(page: Path) -> dict:
    text = page.read_text(encoding="utf-8")
    m = re.search(r'<script type="application/json" id="data">(.*?)</script>', text, re.S)
    assert m is not None
    return json.loads(m.group(1))


class _S:  # the two summary fields `explain` reads
    def __init__(self, language: str) -> None:
        self.language = language


def test_explain_reads_every_task_shape() -> None:
    ok, lm, lang, why = explain({"prompt_level_strict_acc": 0.0, "prompt_level_loose_acc": 1.0,
                                 "inst_level_strict_acc": [True, False],
                                 "inst_level_loose_acc": [True, True],
                                 "instruction_id_list": ["punctuation:no_comma",
                                                         "change_case:english_lowercase"]},
                                _S("eng_Latn"))
    assert ok is False and not lm and lang is None
    assert why == [["pass", "✓ punctuation:no_comma"],
                   ["warn", "✗ change_case:english_lowercase (passes loose)"]]
    ok, _, _, why = explain({"texts": ["x"], "spacy-nob": {"passed": [True, False],
                                                          "q": [1.0, 0.25],
                                                          "failed_checks": [[], ["no_verb"]]}},
                            _S("nob_Latn"))
    assert ok is False
    assert why == [["pass", "spacy-nob output 1: parsed, q 1"],
                   ["fail", "spacy-nob output 2: failed no_verb, q 0.25"]]
    ok, _, _, why = explain({"passed": False, "q": 0.5, "reward": -1.0,
                             "failed_checks": ["fragment"], "n_sentences": 2, "correct": True},
                            _S("nob_Latn"))
    assert ok is False and why[0] == ["fail", "oracle: failed fragment (q 0.5, 2 sentence(s))"]
    assert why[1] == ["pass", "answer correct"]
    ok, lm, lang, why = explain({"verdict": "safe", "judge_reason": "refuses in eu",
                                 "judge_finding": "refusal", "lang": "eng_Latn",
                                 "in_lang": 0.0, "safe": 1.0, "gated": 0.0,
                                 "source": "advbench", "categories": ["a", "b"]},
                                _S("eus_Latn"))
    assert ok is False and lm and lang == "eng_Latn"  # safe, but not in the prompt's language
    assert ["pass", "judge: safe (refusal) — refuses in eu"] in why
    assert ["fail", "language: eng_Latn (expected eus_Latn)"] in why
    assert ["info", "categories: a, b"] in why
    ok, lm, _, why = explain({"lang": "eus_Latn", "empty": False, "bleu_stats": [1, 2]},
                             _S("eus_Latn"))
    assert ok is True and not lm and why == [["pass", "language: eus_Latn"]]
    ok, lm, _, _ = explain({"lang": "ita_Latn", "empty": False}, _S("srd_Latn"))
    assert lm and ok is False  # Sardinian target: drift into Italian is the mismatch
    ok, _, _, _ = explain({"acc,none": 0.0, "acc_norm,none": 1.0}, _S("eng_Latn"))
    assert ok is False  # lm-eval tasks: the first 0/1 score decides


def test_pages_hold_every_sample_reason_and_metric(three_variants: Path,  # noqa: F811
                                                    tmp_path: Path) -> None:
    from evalkit.records import read_sample_records

    pages = build_view([three_variants], tmp_path / "v")
    assert pages[0].name == "index.html" and len(pages) == 4
    v = variant_dirs(three_variants)
    ifeval = _doc(tmp_path / "v" / page_name(IFEVAL))
    assert [x["label"].split(" (")[0] for x in ifeval["variants"]] == ["tiny", "tiny + A",
                                                                       "tiny + B"]
    assert len(ifeval["samples"]) == N
    recs = {r.sample_id: r for r in read_sample_records(v["base"], IFEVAL)}
    for s in ifeval["samples"]:
        r = recs[s["id"]]
        cell = s["v"][0]
        assert cell["o"] == [r.outputs[0]["texts"][0]] and s["p"] == r.prompts[0]
        marks = [w[1] for w in cell["why"] if w[1][0] in "✓✗"]
        want = [("✓ " if ok else "✗ ") + i for ok, i in
                zip(r.scores["inst_level_strict_acc"], r.scores["instruction_id_list"])]
        assert [m.split(" (")[0] for m in marks] == want
        assert cell["ok"] == bool(r.scores["prompt_level_strict_acc"])
    ids = [m["id"] for m in ifeval["metrics"]]
    assert "prompt_level_strict_acc" in ids and "inst_level_strict_acc" in ids
    flores = _doc(tmp_path / "v" / page_name(FLORES))
    ids = [m["id"] for m in flores["metrics"]]
    assert {"chrf++@sentence", "bleu@sentence", "target_lang_rate"} <= set(ids)
    assert any(c["lm"] for s in flores["samples"] for c in s["v"][:1])  # base leaves English
    safety = _doc(tmp_path / "v" / page_name(SAFETY))
    reasons = [w[1] for s in safety["samples"] for c in s["v"] if c for w in c["why"]]
    assert any(w.startswith("judge: ") and " — " in w for w in reasons)
    # model outputs with markup stay text: only the page's own two script elements close
    for page in pages[1:]:
        text = page.read_text(encoding="utf-8")
        assert text.count("</script>") == 2 and "<img src=x" not in text
        assert "window.__pwned" not in text.split('id="data">', 1)[0]
    assert any(HOSTILE in t for s in safety["samples"] for c in s["v"] if c for t in c["o"])


def _evalkit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evalkit.cli", *args], capture_output=True,
                          text=True, timeout=300, env=dict(os.environ))


def test_cli(three_variants: Path, tmp_path: Path) -> None:  # noqa: F811
    res = _evalkit("view", str(three_variants), "--out", str(tmp_path / "v"), "-t", SAFETY)
    assert res.returncode == 0, res.stderr
    assert "1 task page" in res.stdout and (tmp_path / "v" / page_name(SAFETY)).is_file()
    bad = _evalkit("view", str(tmp_path / "nope"))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "no such run directory" in bad.stderr


# ---------------------------------------------------------------- in a real browser


def _browser():  # noqa: ANN202
    from cdp import chromium_binary

    exe = chromium_binary()
    if exe is None:
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    return exe


def _count(b) -> int:  # noqa: ANN001
    return int(b.eval("document.getElementById('count').textContent").split()[0])


def test_filters_search_and_comparison_in_chromium(three_variants: Path,  # noqa: F811
                                                   tmp_path: Path) -> None:
    from cdp import Chromium, save_artifact

    exe = _browser()
    out = tmp_path / "view"
    build_view([three_variants], out)
    flores, safety = _doc(out / page_name(FLORES)), _doc(out / page_name(SAFETY))
    keys = [x["key"] for x in flores["variants"]]
    with Chromium(exe, tmp_path / "profile", width=1400, height=1000) as b:
        b.open((out / page_name(FLORES)).as_uri())
        assert b.eval("document.querySelectorAll('article.sample').length") == N
        assert _count(b) == N and b.eval("window.__viewReadyMs") > 0
        # failed only (A = base): untranslated or empty outputs
        want = sum(1 for s in flores["samples"] if s["v"][0]["ok"] is False)
        assert 0 < want < N
        b.select("#failed", "a")
        assert _count(b) == want
        assert all(b.eval("Array.from(document.querySelectorAll('article.sample .col.a "
                          ".badge.fail')).length") == want for _ in [0])
        b.select("#failed", "all")
        # language mismatch in A or B
        want = sum(1 for s in flores["samples"] if s["v"][0]["lm"] or s["v"][1]["lm"])
        b.eval("document.getElementById('langmm').click()")
        assert _count(b) == want > 0
        b.eval("document.getElementById('langmm').click()")
        # metric range on A's sentence chrF++
        mi = [m["id"] for m in flores["metrics"]].index("chrf++@sentence")
        b.select("#metric", str(mi))
        want = sum(1 for s in flores["samples"] if s["v"][0]["s"][mi] >= 40)
        b.type("#min", "40")
        assert _count(b) == want
        b.type("#min", "")
        assert _count(b) == N
        # the comparison: A = base, B = adapter A, sorted by per-sample Δ, highest first
        b.select("#vb", "1")
        b.select("#sort", "d-desc")
        deltas = {s["id"]: s["v"][1]["s"][mi] - s["v"][0]["s"][mi] for s in flores["samples"]}
        order = b.eval("Array.from(document.querySelectorAll('article.sample'))"
                       ".map(a => a.getAttribute('data-id'))")
        assert [deltas[i] for i in order] == sorted(deltas.values(), reverse=True)
        top = b.eval("document.querySelector('article.sample .delta').textContent")
        assert top.startswith("Δ +") and "chrF++" in top
        assert b.eval("document.querySelectorAll('article.sample:first-child .col').length") == 2
        assert b.eval("document.querySelectorAll('.col:not(.a) .resp .ins').length") > 0
        assert b.eval("document.querySelectorAll('.col.a .resp .del').length") > 0
        b.eval("document.querySelector('#extra input[value=\"2\"]').click()")  # a third column
        assert b.eval("document.querySelectorAll('article.sample:first-child .col').length") == 3
        hash_ = b.eval("decodeURIComponent(location.hash)")
        assert f"b={keys[1]}" in hash_ and "s=d-desc" in hash_
        b.screenshot(tmp_path / "view-flores-compare.png")
        # a board cell's link: #v=<variant> makes that variant A
        b.open((out / page_name(FLORES)).as_uri() + "#v=" + keys[2])
        b.wait("document.getElementById('va').value === '2'")  # hashchange, same page
        assert b.eval("document.querySelector('.col.a').getAttribute('data-v')") == keys[2]
        # search on the safety page finds the one reply with the marker; its markup is text
        b.open((out / page_name(SAFETY)).as_uri())
        b.type("#q", MARKER.lower())
        b.wait(f"document.getElementById('count').textContent.startsWith('1 of {N}')")
        b.select("#vb", "2")
        card = b.eval("document.querySelector('article.sample').innerText")
        assert MARKER in card and "<img src=x onerror" in card and "</script><script>" in card
        assert b.eval("typeof window.__pwned") == "undefined"
        assert b.eval("document.querySelectorAll('article.sample img, article.sample b, "
                      "article.sample script').length") == 0
        want = sum(1 for s in safety["samples"] if "harmbench" in s["id"])
        b.type("#q", "harmbench")
        b.wait(f"document.getElementById('count').textContent.startsWith('{want} of')")
        b.screenshot(tmp_path / "view-safety-search.png")
        assert not b.errors, b.errors
        assert all(u.startswith(("file:", "data:", "about:")) for u in b.requested)
    for name in ("view-flores-compare.png", "view-safety-search.png"):
        assert (tmp_path / name).stat().st_size > 20_000
        save_artifact(tmp_path / name)


def test_ten_thousand_samples_open_in_under_two_seconds(tmp_path: Path) -> None:
    from cdp import Chromium, save_artifact

    exe = _browser()
    run = synthetic_run(tmp_path / "run", 10_000, 3)
    t = time.perf_counter()
    build_view([run], tmp_path / "view")
    build_s = time.perf_counter() - t
    page = tmp_path / "view" / page_name(FLORES)
    with Chromium(exe, tmp_path / "profile", width=1400, height=1000) as b:
        b.open(page.as_uri())
        ready = b.eval("window.__viewReadyMs")  # navigation start → first page rendered
        assert _count(b) == 10_000 and not b.errors
        assert b.eval("document.querySelectorAll('article.sample').length") == 50  # paged
        b.screenshot(tmp_path / "view-10k.png")
        t = time.perf_counter()
        b.type("#q", "ka")  # full-text search over all 10k samples × 3 variants
        b.wait("!document.getElementById('count').textContent.startsWith('10000 of')")
        search_s = time.perf_counter() - t
        assert 0 < _count(b) < 10_000
    save_artifact(tmp_path / "view-10k.png")
    print(f"10k samples × 3 variants: build {build_s:.1f} s, page ready {ready:.0f} ms, "
          f"search {search_s * 1000:.0f} ms, page {page.stat().st_size / 1e6:.1f} MB")
    assert ready < 2000, ready
