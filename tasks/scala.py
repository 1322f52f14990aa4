"""``scala:nob``: ScaLA-nb grammaticality, rebuilt deterministically from the UD Bokmål treebank.

Scoring: AUROC of the mean per-token log-prob (length-normalised, because deletions shorten
sentences) of correct vs corrupted texts, and the summed-log-prob AUROC beside it; plus the
paired accuracy (correct scores above its own corruption).

The set is built by the published recipe (EuroEval's ``create_scala.py``), reimplemented:

* **Sentences**: UD Bokmål dev + test from the mirror (the train split is not mirrored; both
  are held out from evalkit's embedded model). Filters as published: de-duplicated by text,
  more than 5 tokens, more than 5 distinct UPOS tags, an even number of ``"``, not starting
  with PUNCT/SYM, at most one ``=``.
* **Corruptions** (one per sentence, type drawn at random, the other tried if it is impossible):
  - ``flip_neighbours``: swap two adjacent words (neither PUNCT/SYM) of different UPOS; pairs
    PRON+AUX are excluded as in the recipe, since that swap makes a grammatical V2 question
    ("Han er" → "Er han"). When position 0 moves, the new first word is capitalised and the old
    one lower-cased unless it is a proper noun or all caps.
  - ``delete``: drop one token that is not ADJ/ADV/PUNCT/SYM/DET/NUM, and not a NOUN/PROPN with
    a NOUN/PROPN neighbour (such deletions usually leave a grammatical sentence).
* **Test set**: 1,024 originals drawn with a fixed seed, each paired with its corruption →
  1,024 correct + 1,024 incorrect texts.

Differences from the published script, all deliberate: a seeded RNG per sentence (EuroEval's is
unseeded, so its sets cannot be rebuilt); swap pairs are drawn uniformly among eligible pairs
(EuroEval draws a token, then a neighbour); both texts are detokenised with the treebank's own
``SpaceAfter=No`` marks (EuroEval re-joins tokens with spaces and strips some), and a deleted
token's spacing passes to its left neighbour; a sentence-initial deletion capitalises the new
first word (otherwise a lower-case start would give the corruption away without any grammar).

The set is written once to ``$EVALKIT_CACHE/scala/`` under a key of (recipe version, seed,
size, source-file hashes) and its sha256 is recorded in the run's data hashes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.errors import BadInput
from evalkit.metrics import Metric, auroc_metric
from evalkit.tasks.loglik_utils import check_name, loglik_output, pair_wins
from evalkit.types import (
    LoglikRequest,
    Output,
    Sample,
    ScoredTask,
    ScoringContext,
    sha256_text,
    stable_hash,
)

RECIPE_VERSION = 1
SEED = 4242  # EuroEval's split seed; ours also drives the corruptions
TEST_SIZE = 1024
UD_FILES = ("UD_Norwegian-Bokmaal/no_bokmaal-ud-dev.conllu",
            "UD_Norwegian-Bokmaal/no_bokmaal-ud-test.conllu")

_NO_DELETE = frozenset({"ADJ", "ADV", "PUNCT", "SYM", "DET", "NUM"})
_NOMINAL = frozenset({"NOUN", "PROPN"})
_NON_WORD = frozenset({"PUNCT", "SYM"})


@dataclass(frozen=True, slots=True)
class UDSentence:
    """One treebank sentence: forms, UPOS tags and whether a space follows each token."""

    sent_id: str
    text: str
    forms: tuple[str, ...]
    upos: tuple[str, ...]
    space_after: tuple[bool, ...]


def parse_conllu(text: str) -> list[UDSentence]:
    """Sentences of a CoNLL-U document (multiword-token and empty-node lines skipped)."""
    out: list[UDSentence] = []
    sid, stext = "", ""
    forms: list[str] = []
    upos: list[str] = []
    space: list[bool] = []
    for line in text.splitlines() + [""]:
        if not line.strip():
            if forms:
                out.append(UDSentence(sid or str(len(out)), stext or detokenize(forms, space),
                                      tuple(forms), tuple(upos), tuple(space)))
            sid, stext, forms, upos, space = "", "", [], [], []
        elif line.startswith("# sent_id ="):
            sid = line.split("=", 1)[1].strip()
        elif line.startswith("# text ="):
            stext = line.split("=", 1)[1].strip()
        elif not line.startswith("#"):
            cols = line.split("\t")
            if len(cols) != 10 or "-" in cols[0] or "." in cols[0]:
                continue
            forms.append(cols[1])
            upos.append(cols[3])
            space.append("SpaceAfter=No" not in cols[9].split("|"))
    return out


def detokenize(forms: Sequence[str], space_after: Sequence[bool]) -> str:
    """Join tokens with the treebank's own spacing."""
    parts: list[str] = []
    for i, (f, sp) in enumerate(zip(forms, space_after)):
        parts.append(f)
        if sp and i < len(forms) - 1:
            parts.append(" ")
    return "".join(parts)


def passes_filters(s: UDSentence) -> bool:
    """The published ScaLA sentence filters (dedup is done over the whole list)."""
    return (len(s.forms) > 5 and len(set(s.upos)) > 5 and s.text.count('"') % 2 == 0
            and s.upos[0] not in _NON_WORD and s.text.count("=") <= 1)


def swap_candidates(upos: Sequence[str]) -> list[int]:
    """Indices i such that tokens i and i+1 may be swapped."""
    return [i for i in range(len(upos) - 1)
            if upos[i] not in _NON_WORD and upos[i + 1] not in _NON_WORD
            and upos[i] != upos[i + 1] and {upos[i], upos[i + 1]} != {"PRON", "AUX"}]


def delete_candidates(upos: Sequence[str]) -> list[int]:
    """Indices of tokens whose deletion the recipe allows."""
    out = []
    for i, p in enumerate(upos):
        if p in _NO_DELETE:
            continue
        if p in _NOMINAL and ((i > 0 and upos[i - 1] in _NOMINAL)
                              or (i + 1 < len(upos) and upos[i + 1] in _NOMINAL)):
            continue
        out.append(i)
    return out


def _fix_case(forms: list[str], upos: list[str], old_first: int | None) -> None:
    """Capitalise a new sentence-initial word; lower-case the displaced old first word."""
    if forms and forms[0][:1].islower():
        forms[0] = forms[0][:1].upper() + forms[0][1:]
    if old_first is not None:
        w, p = forms[old_first], upos[old_first]
        if p != "PROPN" and not w.isupper() and w[:1].isupper():
            forms[old_first] = w[:1].lower() + w[1:]


def flip_neighbours(s: UDSentence, i: int) -> str:
    """The text with tokens i and i+1 swapped (spacing stays with the positions)."""
    forms, upos = list(s.forms), list(s.upos)
    forms[i], forms[i + 1] = forms[i + 1], forms[i]
    upos[i], upos[i + 1] = upos[i + 1], upos[i]
    if i == 0:
        _fix_case(forms, upos, old_first=1)
    return detokenize(forms, s.space_after)


def delete_token(s: UDSentence, i: int) -> str:
    """The text without token i; its left neighbour takes over its trailing spacing."""
    forms, upos, space = list(s.forms), list(s.upos), list(s.space_after)
    if i > 0:
        space[i - 1] = space[i]
    del forms[i], upos[i], space[i]
    if i == 0:
        _fix_case(forms, upos, old_first=None)
    return detokenize(forms, space)


def corrupt(s: UDSentence, rng: random.Random) -> tuple[str, str] | None:
    """One corruption of `s` as (text, type), or None when neither kind applies."""
    kinds = ["flip_neighbours", "delete"]
    first = rng.choice(kinds)
    for kind in (first, kinds[1 - kinds.index(first)]):
        if kind == "flip_neighbours":
            cands = swap_candidates(s.upos)
            if cands:
                text = flip_neighbours(s, rng.choice(cands))
                if text != s.text:
                    return text, kind
        else:
            cands = delete_candidates(s.upos)
            if cands:
                return delete_token(s, rng.choice(cands)), kind
    return None


def build_scala(sentences: Sequence[UDSentence], size: int = TEST_SIZE, seed: int = SEED
                ) -> list[dict[str, Any]]:
    """The balanced test set: `size` originals (seeded draw) each with one corruption."""
    seen: set[str] = set()
    pool: list[UDSentence] = []
    for s in sentences:
        if s.text in seen:
            continue
        seen.add(s.text)
        if passes_filters(s):
            pool.append(s)
    rng = random.Random(seed)
    order = list(range(len(pool)))
    rng.shuffle(order)
    rows: list[dict[str, Any]] = []
    for k in order:
        s = pool[k]
        # per-sentence RNG: a sentence's corruption does not depend on which others were drawn
        c = corrupt(s, random.Random(f"{seed}:{s.sent_id}"))
        if c is None:
            continue
        rows.append({"id": s.sent_id, "correct": s.text, "incorrect": c[0],
                     "corruption_type": c[1]})
        if len(rows) == size:
            break
    if len(rows) < size:
        raise BadInput(f"ScaLA-nb: only {len(rows)} usable sentences in the mirror's UD Bokmål "
                       f"files, need {size}; point --data-dir at a complete mirror")
    return rows


def _cache_root() -> Path:
    from evalkit.models import cache_dir

    return cache_dir() / "scala"


def load_scala(data: Any, size: int = TEST_SIZE, seed: int = SEED) -> list[dict[str, Any]]:
    """The cached set (built on first use); its sha256 is added to ``data.hashes``."""
    texts = [data.read_text(rel) for rel in UD_FILES]  # also records the source hashes
    key = stable_hash([RECIPE_VERSION, seed, size, [sha256_text(t) for t in texts]])[:16]
    path = _cache_root() / f"scala-nob-v{RECIPE_VERSION}-{key}.jsonl"
    if path.exists():
        body = path.read_text(encoding="utf-8")
    else:
        sents = [s for t in texts for s in parse_conllu(t)]
        rows = build_scala(sents, size, seed)
        body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(body, encoding="utf-8")
        tmp.replace(path)
    data.hashes[f"built:scala-nob-v{RECIPE_VERSION}"] = sha256_text(body)
    return [json.loads(x) for x in body.splitlines() if x.strip()]


@dataclass(frozen=True)
class ScalaTask:
    """ScaLA-nb grammaticality: log-prob AUROC of correct vs corrupted sentences."""

    name: str = "scala:nob"
    version: str = "1"
    language: str = "nob_Latn"
    description: str = "ScaLA-nb (rebuilt, seeded): AUROC of mean per-token log-prob"

    def samples(self, data: Any) -> list[Sample]:
        """1,024 (correct, corrupted) pairs from the cached build."""
        return [Sample(id=r["id"], data=r, reference=r["corruption_type"])
                for r in load_scala(data)]

    def requests(self, sample: Sample, chat: bool) -> list[LoglikRequest]:
        """Correct text, then corrupted text, each after a BOS."""
        return [LoglikRequest("", sample.data["correct"]),
                LoglikRequest("", sample.data["incorrect"])]

    def score(self, samples: Sequence[Sample], outputs: Sequence[Sequence[Output]],
              ctx: ScoringContext) -> ScoredTask:
        """AUROC (mean and sum variants) with stratified bootstrap CIs; paired accuracy."""
        good = [loglik_output(o, 0) for o in outputs]
        bad = [loglik_output(o, 1) for o in outputs]
        mean_g = [r.logprob / max(1, r.n_tokens) for r in good]
        mean_b = [r.logprob / max(1, r.n_tokens) for r in bad]
        labels = [1] * len(good) + [0] * len(bad)
        # records keep the log-probs, not the wins: no per-sample keys
        auroc, auroc_sum = Metric("auroc", "corpus"), Metric("auroc_sum", "corpus")
        pair_acc = Metric("pair_accuracy", "proportion")
        metrics = {
            auroc.name: auroc.declare(auroc_metric(mean_g + mean_b, labels, seed=ctx.seed)),
            auroc_sum.name: auroc_sum.declare(
                auroc_metric([r.logprob for r in good + bad], labels, seed=ctx.seed)),
            pair_acc.name: pair_acc.mean(pair_wins(mean_g, mean_b), seed=ctx.seed,
                                         note="mean log-prob of correct > its corruption"),
        }
        by_kind: dict[str, list[float]] = {}
        for s, g, b in zip(samples, mean_g, mean_b):
            by_kind.setdefault(s.data["corruption_type"], []).append(float(g > b))
        for kind, wins in sorted(by_kind.items()):
            sub = Metric(f"pair_accuracy[{kind}]", "proportion")
            metrics[sub.name] = sub.mean(wins, seed=ctx.seed)
        per = [{"lp_correct": g.logprob, "n_correct": g.n_tokens, "lp_incorrect": b.logprob,
                "n_incorrect": b.n_tokens, "mean_correct": mg, "mean_incorrect": mb,
                "corruption_type": s.data["corruption_type"]}
               for s, g, b, mg, mb in zip(samples, good, bad, mean_g, mean_b)]
        meta = {"recipe": f"ScaLA (EuroEval create_scala) rebuilt, v{RECIPE_VERSION}, seed {SEED}",
                "source": "UD Bokmål dev+test (mirror)", "auroc_score": "mean per-token log-prob",
                "reconstructed": True}
        return ScoredTask(per, metrics, meta)


def make_scala_task(name: str) -> ScalaTask:
    """Factory for ``scala:nob``."""
    check_name(name, "scala", "nob")
    return ScalaTask()
