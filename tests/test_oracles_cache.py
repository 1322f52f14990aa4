"""The persistent parse cache: keys, round trips, persistence across instances, speed."""

from __future__ import annotations

import time
from pathlib import Path

from evalkit.oracles.base import Parse, Token, parse_from_json, parse_to_json
from evalkit.oracles.cache import CachedOracle, ParseCache
from evalkit.oracles.fake import FakeOracle
from evalkit.oracles.rule import judge


class SlowOracle(FakeOracle):
    """FakeOracle that costs 2 ms per sentence, like a (fast) real parser."""

    def parse(self, texts):  # type: ignore[override]
        time.sleep(0.002 * len(texts))
        return super().parse(texts)


def test_json_round_trip() -> None:
    p = Parse((Token("Jeg", 1, "nsubj", "subject", "PRON"),
               Token("går", -1, "root", "root", "VERB", True, False),
               Token("«😀\x00»", 1, "punct", "punct", "PUNCT")), "ud")
    q = parse_from_json(parse_to_json(p))
    assert q == p
    assert q.tokens[1].finite and not q.tokens[1].imperative


def test_key_depends_on_oracle_model_and_text() -> None:
    k = ParseCache.key("spacy", "abc", "Jeg går.")
    assert k != ParseCache.key("stanza", "abc", "Jeg går.")
    assert k != ParseCache.key("spacy", "abd", "Jeg går.")
    assert k != ParseCache.key("spacy", "abc", "Jeg går!")
    assert k == ParseCache.key("spacy", "abc", "Jeg går.")
    # separator: ("ab", "c") and ("a", "bc") must not collide
    assert ParseCache.key("ab", "c", "x") != ParseCache.key("a", "bc", "x")


def test_cached_oracle_persists_and_only_parses_misses(tmp_path: Path) -> None:
    db = tmp_path / "parses.sqlite"
    inner = FakeOracle()
    cached = CachedOracle(inner, ParseCache(db))
    texts = ["Jeg liker kaffe.", "Kaffe og te.", "Jeg liker kaffe."]
    first = cached.parse(texts)
    assert first == inner.parse(texts)
    assert cached.misses == 2 and cached.hits == 1
    # a new process: empty memory level, same sqlite file
    inner2 = FakeOracle()
    cached2 = CachedOracle(inner2, ParseCache(db))
    assert cached2.parse(texts) == first
    assert inner2.calls == 0 and cached2.hits == 3
    cached2.parse(["Hun liker te."])
    assert inner2.calls == 1
    assert len(cached2.cache) == 3


def test_model_hash_change_invalidates(tmp_path: Path) -> None:
    db = ParseCache(tmp_path / "p.sqlite")
    a = FakeOracle()
    CachedOracle(a, db).parse(["Jeg liker kaffe."])
    b = FakeOracle()
    b.model_hash = "fake-v2"
    CachedOracle(b, db).parse(["Jeg liker kaffe."])
    assert b.calls == 1


def test_judge_through_cache_is_identical(tmp_path: Path) -> None:
    texts = ["Jeg liker kaffe. Han er her.", "Kaffe og te.", "", "😀😀😀", "Kom hit!"]
    plain = judge(FakeOracle(), texts)
    cached = judge(CachedOracle(FakeOracle(), ParseCache(tmp_path / "c.sqlite")), texts)
    assert plain == cached


def test_disk_hits_are_much_faster_than_parsing(tmp_path: Path) -> None:
    texts = [f"Jeg liker kaffe nummer {i} med melk og sukker i dag." for i in range(300)]
    db = ParseCache(tmp_path / "s.sqlite")
    slow = SlowOracle()
    t0 = time.perf_counter()
    CachedOracle(slow, db).parse(texts)
    parse_s = time.perf_counter() - t0
    hit_s = min(_timed(CachedOracle(slow, db).parse, texts) for _ in range(3))
    assert parse_s / hit_s > 10  # sleep-based parser: 2 ms/sentence; real ratio is in BENCHMARKS


def _timed(fn, arg) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    fn(arg)
    return time.perf_counter() - t0
