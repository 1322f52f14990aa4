"""NDT → UPOS/FEATS mapping, leak-free splits, and the validate helpers (κ, AUROC, sections)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.oracles.base import ndt_feats_to_ud, ndt_rel_class, ndt_upos, ud_rel_class


def test_ndt_mapping() -> None:
    assert ndt_upos("subst", "appell|mask|ub|ent") == "NOUN"
    assert ndt_upos("subst", "prop") == "PROPN"
    assert ndt_upos("det", "mask|ent|kvant") == "NUM"
    assert ndt_upos("<komma>") == "PUNCT" and ndt_upos("clb") == "PUNCT"
    assert ndt_upos("nonsense") == "X"
    assert ndt_feats_to_ud("verb", "pres") == "Mood=Ind|Tense=Pres|VerbForm=Fin"
    assert ndt_feats_to_ud("verb", "pret|<s-verb>") == "Mood=Ind|Tense=Past|VerbForm=Fin"
    assert ndt_feats_to_ud("verb", "imp") == "Mood=Imp|VerbForm=Fin"
    assert ndt_feats_to_ud("verb", "inf|pass") == "VerbForm=Inf|Voice=Pass"
    assert ndt_feats_to_ud("verb", "perf-part") == "VerbForm=Part"
    assert ndt_feats_to_ud("subst", "pres") == "_"
    assert ndt_rel_class("SUBJ") == "subject" and ndt_rel_class("FSUBJ") == "subject"
    assert ndt_rel_class("FINV") == "finite-verb" and ndt_rel_class("IP") == "punct"
    assert ndt_rel_class("dep") == "unknown" and ndt_rel_class("DOBJ") == "other"
    assert ud_rel_class("nsubj:pass") == "subject" and ud_rel_class("expl") == "subject"
    assert ud_rel_class("ROOT") == "root" and ud_rel_class("aux:pass") == "aux"
    assert ud_rel_class("obj") == "other" and ud_rel_class("dep") == "unknown"


def test_splits_are_leak_free(data_dir: Path) -> None:  # noqa: ARG001
    from evalkit.oracles.train.treebanks import ndt_splits, read_conllu, ud_file

    splits = ndt_splits()
    test_keys = {s.key for s in read_conllu(ud_file("test"))}
    dev_keys = {s.key for s in read_conllu(ud_file("dev"))}
    train_keys = {s.key for s in splits["train"]}
    assert not train_keys & test_keys and not train_keys & dev_keys
    assert len(splits["test"]) > 1900 and len(splits["dev"]) > 2300
    assert sum(len(v) for v in splits.values()) == 20045
    # every NDT tree has exactly one root
    assert all(s.heads.count(0) == 1 for s in splits["test"])


def test_rule_on_gold_schemes_agree(data_dir: Path) -> None:  # noqa: ARG001
    from evalkit.oracles.rule import check_parse
    from evalkit.oracles.validate import GOLD_CONFIG, gold_parse, held_out_pairs
    from evalkit.stats import cohen_kappa

    pairs = held_out_pairs()[:400]
    ud = [check_parse(gold_parse(u, "ud"), GOLD_CONFIG).passed for u, _ in pairs]
    ndt = [check_parse(gold_parse(n, "ndt"), GOLD_CONFIG).passed for _, n in pairs]
    agree = sum(a == b for a, b in zip(ud, ndt)) / len(pairs)
    assert agree > 0.97 and cohen_kappa(ud, ndt) > 0.85


def test_kappa_and_auroc() -> None:
    from evalkit.oracles.validate import _auroc
    from evalkit.stats import cohen_kappa

    assert cohen_kappa([True, False, True, False], [True, False, True, False]) == 1.0
    assert cohen_kappa([True, True], [True, True]) is None  # chance agreement 1: undefined
    assert cohen_kappa([True, False], [False, True]) == pytest.approx(-1.0)
    assert _auroc([1.0, 1.0], [0.0, 0.0]) == 1.0
    assert _auroc([0.0], [1.0]) == 0.0
    assert _auroc([1.0, 0.0], [1.0, 0.0]) == 0.5
    assert _auroc([], [1.0]) is None


def test_benchmarks_section_is_replaced_alone(tmp_path: Path) -> None:
    from evalkit.oracles.validate import SECTION, write_benchmarks

    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\n## Other\n\nkeep me\n\n" + SECTION
                    + "\n\nOLD-SECTION-BODY\n\n## Later\n\nme too\n")
    fake = {"machine": "test box", "oracles": {}, "cross_oracle": {},
            "gold_ud_vs_ndt": {"n": 1, "accuracy": 100.0, "kappa": 1.0, "gold_pass": 100.0,
                               "pred_pass": 100.0}}
    write_benchmarks(fake, path)
    text = path.read_text()
    assert "keep me" in text and "me too" in text and "OLD-SECTION-BODY" not in text
    assert text.count(SECTION) == 1 and "test box" in text
    write_benchmarks(fake, tmp_path / "new.md")
    assert SECTION in (tmp_path / "new.md").read_text()
