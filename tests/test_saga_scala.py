"""ScaLA-nb builder: corruption rules on hand-made sentences, determinism, caching."""

from __future__ import annotations

import random

import pytest

from evalkit.tasks.scala import (
    UDSentence,
    build_scala,
    corrupt,
    delete_candidates,
    delete_token,
    detokenize,
    flip_neighbours,
    load_scala,
    parse_conllu,
    passes_filters,
    swap_candidates,
)


def sent(pairs: list[tuple[str, str]], no_space_before_punct: bool = True,
         sid: str = "s1") -> UDSentence:
    forms = tuple(f for f, _ in pairs)
    upos = tuple(p for _, p in pairs)
    space = tuple(not (no_space_before_punct and i + 1 < len(pairs)
                       and upos[i + 1] == "PUNCT") for i in range(len(pairs)))
    return UDSentence(sid, detokenize(forms, space), forms, upos, space)


# "Han er ikke hjemme i dag, sier Kari." — a hand-tagged sentence
HAN = sent([("Han", "PRON"), ("er", "AUX"), ("ikke", "PART"), ("hjemme", "ADV"), ("i", "ADP"),
            ("dag", "NOUN"), (",", "PUNCT"), ("sier", "VERB"), ("Kari", "PROPN"), (".", "PUNCT")])


def test_detokenize_keeps_treebank_spacing() -> None:
    assert HAN.text == "Han er ikke hjemme i dag, sier Kari."


def test_swap_candidates_rules() -> None:
    cands = swap_candidates(HAN.upos)
    assert 0 not in cands  # PRON+AUX: the swap makes a grammatical question
    assert 5 not in cands and 6 not in cands  # nothing swaps with punctuation
    assert {1, 2, 3, 4, 7} <= set(cands)
    same = sent([("store", "ADJ"), ("grønne", "ADJ"), ("hus", "NOUN")])
    assert swap_candidates(same.upos) == [1]  # ADJ+ADJ excluded


def test_delete_candidates_rules() -> None:
    cands = delete_candidates(HAN.upos)
    assert 3 not in cands  # ADV
    assert 6 not in cands and 9 not in cands  # PUNCT
    assert {0, 1, 2, 4, 5, 7, 8} == set(cands)
    nn = sent([("Oslo", "PROPN"), ("kommune", "NOUN"), ("har", "VERB"), ("en", "DET"),
               ("stor", "ADJ"), ("plan", "NOUN"), ("to", "NUM")])
    # nouns next to nouns may not be deleted; DET/ADJ/NUM never
    assert delete_candidates(nn.upos) == [2, 5]


def test_flip_at_start_fixes_case() -> None:
    s = sent([("Regjeringen", "NOUN"), ("vil", "AUX"), ("føre", "VERB"), ("politikk", "NOUN"),
              (".", "PUNCT")])
    assert flip_neighbours(s, 0) == "Vil regjeringen føre politikk."
    p = sent([("Kari", "PROPN"), ("vil", "AUX"), ("reise", "VERB"), (".", "PUNCT")])
    assert flip_neighbours(p, 0) == "Vil Kari reise."  # proper nouns keep their capital
    assert flip_neighbours(HAN, 7) == "Han er ikke hjemme i dag, Kari sier."


def test_delete_moves_spacing_to_left_neighbour() -> None:
    assert delete_token(HAN, 5) == "Han er ikke hjemme i, sier Kari."
    assert delete_token(HAN, 0) == "Er ikke hjemme i dag, sier Kari."  # new first word capitalised


def test_corrupt_falls_back_and_gives_up() -> None:
    # only ADJ/ADV/PUNCT: nothing may be deleted, nothing swapped (same POS or punctuation)
    none = sent([("store", "ADJ"), ("fine", "ADJ"), (".", "PUNCT")])
    assert corrupt(none, random.Random(0)) is None
    # a swap is impossible (all NOUN) but a deletion is not: the other kind is tried
    only_del = sent([("hus", "NOUN"), (",", "PUNCT"), ("hytte", "NOUN")])
    for seed in range(5):
        text, kind = corrupt(only_del, random.Random(seed))
        assert kind == "delete" and text != only_del.text


def test_filters() -> None:
    assert passes_filters(HAN)
    short = sent([("Han", "PRON"), ("kom", "VERB"), (".", "PUNCT")])
    assert not passes_filters(short)
    odd_quote = UDSentence("q", 'Han sa " hei i dag til Kari .', HAN.forms, HAN.upos,
                           HAN.space_after)
    assert not passes_filters(odd_quote)


def test_parse_conllu_skips_multiword_lines() -> None:
    text = ("# sent_id = a1\n# text = Jeg så det.\n"
            "1\tJeg\tjeg\tPRON\t_\t_\t2\tnsubj\t_\t_\n"
            "2-3\tsådet\t_\t_\t_\t_\t_\t_\t_\t_\n"
            "2\tså\tse\tVERB\t_\t_\t0\troot\t_\t_\n"
            "3\tdet\tdet\tPRON\t_\t_\t2\tobj\t_\tSpaceAfter=No\n"
            "4\t.\t.\tPUNCT\t_\t_\t2\tpunct\t_\t_\n\n")
    [s] = parse_conllu(text)
    assert s.sent_id == "a1" and s.forms == ("Jeg", "så", "det", ".")
    assert detokenize(s.forms, s.space_after) == s.text


def test_build_is_deterministic_and_balanced() -> None:
    words = ["Kari", "leser", "en", "bok", "om", "fjellet", "i", "dag"]
    tags = ["PROPN", "VERB", "DET", "NOUN", "ADP", "NOUN", "ADP", "NOUN"]
    pool = []
    for i in range(40):
        pairs = list(zip(words, tags)) + [(str(i), "NUM"), (".", "PUNCT")]
        pool.append(sent(pairs, sid=f"x{i}"))
    a = build_scala(pool + pool[:5], size=30, seed=7)  # duplicates are dropped
    b = build_scala(pool, size=30, seed=7)
    assert a == b and len(a) == 30 and len({r["id"] for r in a}) == 30
    assert all(r["correct"] != r["incorrect"] for r in a)
    assert build_scala(pool, size=30, seed=8) != a


def test_load_scala_from_mirror_cached(data_dir, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    from evalkit.data import DataLayer

    monkeypatch.setenv("EVALKIT_CACHE", str(tmp_path))
    d1 = DataLayer(data_dir)
    rows = load_scala(d1)
    assert len(rows) == 1024
    assert {r["corruption_type"] for r in rows} == {"flip_neighbours", "delete"}
    files = list((tmp_path / "scala").glob("*.jsonl"))
    assert len(files) == 1
    d2 = DataLayer(data_dir)
    assert load_scala(d2) == rows
    key = "built:scala-nob-v1"
    assert d1.hashes[key] == d2.hashes[key]
    with pytest.raises(Exception, match="need 4000"):
        from evalkit.tasks.scala import UD_FILES
        sents = [s for rel in UD_FILES for s in parse_conllu(d1.read_text(rel))]
        build_scala(sents, size=4000)
