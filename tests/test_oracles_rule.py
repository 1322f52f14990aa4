"""The well-formedness rule on hand-built trees (UD and NDT labels), splitting, MATTR, reward."""

from __future__ import annotations

import pytest

from evalkit.oracles.base import Parse, ndt_feats_to_ud, ndt_upos, parse_from_columns
from evalkit.oracles.fake import FakeOracle
from evalkit.oracles.rule import (
    CHECKS,
    RuleConfig,
    check_parse,
    judge,
    judge_parses,
    make_reward,
    mattr,
    parse_score,
    parse_success,
    split_sentences,
    truncate_text,
)

FIN = "Mood=Ind|Tense=Pres|VerbForm=Fin"


def ud(rows: list[tuple[str, str, str, int, str]]) -> Parse:
    """Rows: (form, upos, feats, head, deprel) in UD labels."""
    forms, upos, feats, heads, rels = zip(*rows, strict=True)
    return parse_from_columns(forms, upos, feats, heads, rels, "ud")


def ndt(rows: list[tuple[str, str, str, int, str]]) -> Parse:
    """Rows: (form, NDT pos, NDT feats, head, NDT function) as in ndt_nob."""
    forms, pos, feats, heads, rels = zip(*rows, strict=True)
    return parse_from_columns(forms, [ndt_upos(p, f) for p, f in zip(pos, feats, strict=True)],
                              [ndt_feats_to_ud(p, f) for p, f in zip(pos, feats, strict=True)],
                              heads, rels, "ndt")


# "Jeg ser et landskap." / "Honnørordene er formspråk." / "Han har spist." in both schemes
UD_GOOD = ud([("Jeg", "PRON", "_", 2, "nsubj"), ("ser", "VERB", FIN, 0, "root"),
              ("et", "DET", "_", 4, "det"), ("landskap", "NOUN", "_", 2, "obj"),
              (".", "PUNCT", "_", 2, "punct")])
UD_COP = ud([("Ordene", "NOUN", "_", 3, "nsubj"), ("er", "AUX", FIN, 3, "cop"),
             ("formspråk", "NOUN", "_", 0, "root"), (".", "PUNCT", "_", 3, "punct")])
UD_AUX = ud([("Han", "PRON", "_", 3, "nsubj"), ("har", "AUX", FIN, 3, "aux"),
             ("spist", "VERB", "VerbForm=Part", 0, "root"), (".", "PUNCT", "_", 3, "punct")])
NDT_GOOD = ndt([("Jeg", "pron", "pers|1|ent|hum|nom", 2, "SUBJ"),
                ("ser", "verb", "pres", 0, "FINV"),
                ("et", "det", "nøyt|ent|kvant", 4, "DET"),
                ("landskap", "subst", "appell", 2, "DOBJ"),
                (".", "clb", "<punkt>", 2, "IP")])
NDT_AUX = ndt([("Han", "pron", "pers", 2, "SUBJ"), ("har", "verb", "pres", 0, "FINV"),
               ("spist", "verb", "perf-part", 2, "INFV"), (".", "clb", "<punkt>", 2, "IP")])
NDT_FSUBJ = ndt([("Det", "pron", "pers", 2, "FSUBJ"), ("regner", "verb", "pres", 0, "FINV"),
                 (".", "clb", "<punkt>", 2, "IP")])


@pytest.mark.parametrize("parse", [UD_GOOD, UD_COP, UD_AUX, NDT_GOOD, NDT_AUX, NDT_FSUBJ])
def test_well_formed_trees_pass(parse: Parse) -> None:
    v = check_parse(parse)
    assert v.passed, v.failed_checks
    assert v.q == 1.0


def test_single_root() -> None:
    two = ud([("Jeg", "PRON", "_", 2, "nsubj"), ("ser", "VERB", FIN, 0, "root"),
              ("Han", "PRON", "_", 4, "nsubj"), ("går", "VERB", FIN, 0, "ROOT")])
    assert check_parse(two).failed_checks == ("single_root",)
    ndt_two = ndt([("Jeg", "pron", "", 2, "SUBJ"), ("ser", "verb", "pres", 0, "FINV"),
                   ("mat", "subst", "", 0, "FRAG")])
    assert "single_root" in check_parse(ndt_two).failed_checks


def test_verbal_root() -> None:
    noun = ud([("Lam", "NOUN", "_", 0, "root"), ("og", "CCONJ", "_", 3, "cc"),
               ("piggvar", "NOUN", "_", 1, "conj"), (".", "PUNCT", "_", 1, "punct")])
    assert check_parse(noun).failed_checks == ("verbal_root", "finite_verb", "subject")
    ndt_frag = ndt([("Lam", "subst", "appell", 0, "FRAG"), ("og", "konj", "", 3, "KONJ"),
                    ("piggvar", "subst", "appell", 1, "KOORD"), (".", "clb", "", 1, "IP")])
    assert check_parse(ndt_frag).failed_checks == ("verbal_root", "finite_verb", "subject")
    # a copula child makes a nominal root verbal
    assert "verbal_root" not in check_parse(UD_COP).failed_checks


def test_finite_verb() -> None:
    inf = ud([("Han", "PRON", "_", 3, "nsubj"), ("å", "PART", "_", 3, "mark"),
              ("spise", "VERB", "VerbForm=Inf", 0, "root"), (".", "PUNCT", "_", 3, "punct")])
    assert check_parse(inf).failed_checks == ("finite_verb",)
    ndt_inf = ndt([("Han", "pron", "", 2, "SUBJ"), ("spise", "verb", "inf", 0, "FRAG"),
                   ("mat", "subst", "", 2, "DOBJ")])
    assert check_parse(ndt_inf).failed_checks == ("finite_verb",)
    # finite aux child rescues a participle root (UD)
    assert check_parse(UD_AUX).passed


def test_subject_and_imperative_exemption() -> None:
    nosubj = ud([("Ser", "VERB", FIN, 0, "root"), ("et", "DET", "_", 3, "det"),
                 ("landskap", "NOUN", "_", 1, "obj"), (".", "PUNCT", "_", 1, "punct")])
    assert check_parse(nosubj).failed_checks == ("subject",)
    imp = ud([("Spis", "VERB", "Mood=Imp|VerbForm=Fin", 0, "root"),
              ("maten", "NOUN", "_", 1, "obj"), ("!", "PUNCT", "_", 1, "punct")])
    assert check_parse(imp).passed
    assert check_parse(imp, RuleConfig(imperative_exempt=False)).failed_checks == ("subject",)
    ndt_imp = ndt([("Spis", "verb", "imp", 0, "FINV"), ("maten", "subst", "", 1, "DOBJ"),
                   ("!", "clb", "", 1, "IP")])
    assert check_parse(ndt_imp).passed
    # subject must be a child of the root, not deeper
    deep = ud([("Ser", "VERB", FIN, 0, "root"), ("at", "SCONJ", "_", 4, "mark"),
               ("han", "PRON", "_", 4, "nsubj"), ("går", "VERB", FIN, 1, "ccomp")])
    assert check_parse(deep).failed_checks == ("subject",)
    expl = ud([("Det", "PRON", "_", 2, "expl"), ("regner", "VERB", FIN, 0, "root"),
               (".", "PUNCT", "_", 2, "punct")])
    assert check_parse(expl).passed


def test_dep_is_parser_failure_or_a_check() -> None:
    dep = ud([("Jeg", "PRON", "_", 2, "nsubj"), ("ser", "VERB", FIN, 0, "root"),
              ("landskap", "NOUN", "_", 2, "dep")])
    v = check_parse(dep)
    assert v.parser_failure and v.q == 0.0 and v.failed_checks == ("no_dep",)
    v2 = check_parse(dep, RuleConfig(dep_is_parser_failure=False))
    assert not v2.parser_failure and v2.q == pytest.approx(5 / 6)
    ndt_dep = ndt([("Jeg", "pron", "", 2, "SUBJ"), ("ser", "verb", "pres", 0, "FINV"),
                   ("ting", "subst", "", 2, "dep")])
    assert check_parse(ndt_dep).parser_failure
    # a parse without a dep arc is no failure even if dep is disabled as a check
    assert check_parse(dep, RuleConfig(checks=("single_root",), dep_is_parser_failure=False)).passed


def test_min_tokens() -> None:
    short = ud([("Han", "PRON", "_", 2, "nsubj"), ("går", "VERB", FIN, 0, "root")])
    assert check_parse(short).failed_checks == ("min_tokens",)
    assert check_parse(short, RuleConfig(min_tokens=2)).passed
    nums = ud([("12", "NUM", "_", 0, "root"), ("34", "NUM", "_", 1, "nummod"),
               ("!", "PUNCT", "_", 1, "punct")])
    assert "min_tokens" in check_parse(nums).failed_checks


def test_checks_are_configurable() -> None:
    noun = ud([("Lam", "NOUN", "_", 0, "root"), ("og", "CCONJ", "_", 3, "cc"),
               ("piggvar", "NOUN", "_", 1, "conj")])
    cfg = RuleConfig(checks=("single_root", "no_dep", "min_tokens"))
    assert check_parse(noun, cfg).passed
    with pytest.raises(ValueError):
        RuleConfig(checks=("nonsense",))
    with pytest.raises(ValueError):
        RuleConfig(mattr_weight=1.5)
    assert set(CHECKS) == {"single_root", "verbal_root", "finite_verb", "subject", "no_dep",
                           "min_tokens"}


def test_split_sentences() -> None:
    text = ("Dr. Ehud Ur sa det. Han kom kl. 12 i dag. Så gikk han! «Hei,» sa hun. "
            "Det var f.eks. 3,5 mill. kr. i kassa. Hvorfor? Fordi.\nNy linje uten punktum")
    assert split_sentences(text) == [
        "Dr. Ehud Ur sa det.", "Han kom kl. 12 i dag.", "Så gikk han!", "«Hei,» sa hun.",
        "Det var f.eks. 3,5 mill. kr. i kassa.", "Hvorfor?", "Fordi.", "Ny linje uten punktum"]
    assert split_sentences("") == []
    assert split_sentences("   \n\n ") == []
    assert split_sentences("Han sa «Kom.» Hun kom.") == ["Han sa «Kom.»", "Hun kom."]
    assert split_sentences("tall 3. mai er fint.") == ["tall 3. mai er fint."]


def test_truncate_text() -> None:
    assert truncate_text("Jeg liker kaffe. Han er") == "Jeg liker kaffe."
    assert truncate_text("Han sa «nei.» og så") == "Han sa «nei.»"
    assert truncate_text("ingen punktum her") == ""


def test_mattr() -> None:
    assert mattr("") == 0.0
    assert mattr("a b c d") == 1.0
    assert mattr("a a a a") == 0.25
    words = " ".join(["x"] * 40)
    assert mattr(words) == pytest.approx(1 / 20)
    distinct = " ".join(f"w{i}" for i in range(50))
    assert mattr(distinct) == 1.0


def test_judge_reward_shape() -> None:
    oracle = FakeOracle(broken={"Hun liker te."})
    texts = ["Jeg liker kaffe. Han er", "Kaffe og te.", "", "Hun liker te.", "...",
             "Jeg liker kaffe. Kaffe og te.", "ingen punktum"]
    v = judge(oracle, texts)
    assert [x.passed for x in v] == [True, False, False, False, False, False, False]
    assert v[0].reward == pytest.approx(0.8 * 1.0 + 0.2 * 1.0)
    assert v[1].q == 0.5 and v[1].reward == pytest.approx(0.8 * 0.5 + 0.2)
    assert v[2].reward == -1.0 and v[2].failed_checks == ("no_sentence",)
    assert v[3].reward == -1.0 and "parser_failure" in v[3].failed_checks
    assert v[4].reward == -1.0 and v[6].reward == -1.0
    assert v[5].n_sentences == 2 and v[5].q == pytest.approx(0.75)
    first = judge(oracle, texts[5:6], RuleConfig(first_sentence_only=True))[0]
    assert first.passed and first.n_sentences == 1
    off = judge(oracle, texts[:2], RuleConfig(mattr_weight=0.0))
    assert off[0].reward == 1.0 and off[0].mattr is None and off[1].reward == 0.5
    assert all(-1.0 <= x.reward <= 1.0 for x in v)


def test_judge_batches_one_parse_call() -> None:
    oracle = FakeOracle()
    judge(oracle, ["Jeg liker kaffe. Han er her.", "Hun liker te."] * 10)
    assert oracle.calls == 1


def test_judge_parses_checks_length() -> None:
    with pytest.raises(RuntimeError):
        judge_parses(["Jeg liker kaffe."], lambda texts: [])


def test_aggregates_and_reward_fn() -> None:
    oracle = FakeOracle()
    v = judge(oracle, ["Jeg liker kaffe.", "Kaffe og te."])
    assert parse_success(v) == 0.5
    assert parse_score(v) == pytest.approx(0.5 * (1.0 + 0.5) / 2)
    assert parse_score(v, over="passing") == pytest.approx(0.5)
    assert parse_success([]) == 0.0
    from evalkit.oracles.rule import parse_stats

    st = parse_stats(v + judge(oracle, [""]))  # the empty text has no complete sentence
    assert (st.ps, st.n, st.complete_share) == (pytest.approx(1 / 3), 3, pytest.approx(2 / 3))
    assert st.parse_score == pytest.approx(parse_score(v + judge(oracle, [""])))
    assert st.mean_reward == pytest.approx(sum(x.reward for x in v + judge(oracle, [""])) / 3)
    assert parse_stats(v, over="passing").parse_score == pytest.approx(0.5)
    reward = make_reward(oracle)
    assert reward(["liker kaffe."], prompts=["Jeg "]) == [pytest.approx(1.0)]
    assert reward([[{"role": "assistant", "content": "Jeg liker kaffe."}]]) == [pytest.approx(1.0)]
