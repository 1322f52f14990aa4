"""Differential test: evalkit's IFEval scoring vs lm-eval's own checkers on ≥ 2,000 responses.

Responses: samples from two tiny random models (`evalkit.testing.build_tiny_model`, tokenizers
trained on the IFEval prompts) on the IFEval prompts, plus mechanically mutated responses built
from those samples and FLORES English text, steered by each prompt's own kwargs (case,
bullets, highlights, sections, titles, postscripts, JSON, quotations, placeholders, keywords,
letters, commas, lengths, paragraphs, two responses, repeated prompts, other languages, and
the extra first/last lines and ``*`` that the loose variants strip), with the counts jittered by
±1 so that both verdicts occur.

lm-eval side: ``lm_eval.tasks.ifeval.utils.process_results`` unchanged. evalkit side: the
``ifeval:en`` task's ``score``. Every per-instruction strict and loose verdict must be equal.
Where a kwarg is invalid, lm-eval draws a random value from Python's global ``random``;
evalkit seeds that draw with ``f"{key}:{index}"``, so the lm-eval run here seeds it the same
way (through a lookup hook on its instruction registry) and those instructions are compared too.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("lm_eval")
pytest.importorskip("langdetect")

from evalkit.data import DataLayer  # noqa: E402
from evalkit.runner import load_task  # noqa: E402
from evalkit.types import Generation, Sample, ScoringContext  # noqa: E402

MUTANTS_PER_PROMPT = 3
FLORES_LANGS = ("cat_Latn", "eus_Latn", "ita_Latn", "nob_Latn", "spa_Latn", "swh_Latn")


# --------------------------------------------------------------------------------------------
# responses
# --------------------------------------------------------------------------------------------

def _tiny_samples(prompts: list[str], tmp: Path) -> list[str]:
    """One sampled continuation per prompt, alternating between two tiny random models."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from evalkit.testing import build_tiny_model

    out: list[str] = [""] * len(prompts)
    for m in range(2):
        path = build_tiny_model(tmp / f"tiny{m}", seed=m, vocab_size=384,
                                texts=prompts[m::2] * 2)
        tok = AutoTokenizer.from_pretrained(path)
        tok.padding_side = "left"
        model = AutoModelForCausalLM.from_pretrained(path).eval()
        idx = list(range(m, len(prompts), 2))
        torch.manual_seed(m)
        for b in range(0, len(idx), 96):
            batch = [prompts[i] for i in idx[b:b + 96]]
            enc = tok(batch, return_tensors="pt", padding=True, truncation=True, max_length=96)
            with torch.no_grad():
                gen = model.generate(**enc, do_sample=True, top_k=0, temperature=1.0,
                                     max_new_tokens=48, pad_token_id=tok.pad_token_id)
            texts = tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            for i, t in zip(idx[b:b + 96], texts):
                out[i] = t
    return out


def _jitter(n: Any, rng: random.Random) -> int:
    try:
        n = int(n)
    except (TypeError, ValueError):
        n = 2
    return max(0, n + rng.choice((-1, 0, 0, 1)))


def _para(rng: random.Random, words: list[str], k: int | None = None) -> str:
    k = k or rng.randint(4, 18)
    return " ".join(rng.choice(words) for _ in range(k)).capitalize() + rng.choice(".!?.")


def _steer(iid: str, kw: dict[str, Any], text: str, prompt: str, rng: random.Random,
           words: list[str], foreign: list[str]) -> str:
    """Edit `text` towards (or, by the jitter, just past) what instruction `iid` asks."""
    if iid == "change_case:english_capital":
        return text.upper() if rng.random() < 0.8 else text.title()
    if iid == "change_case:english_lowercase":
        return text.lower() if rng.random() < 0.8 else text.capitalize()
    if iid == "change_case:capital_word_frequency":
        n = _jitter(kw.get("capital_frequency"), rng)
        caps = " ".join(rng.choice(words).upper() or "OK" for _ in range(n))
        return f"{text} {caps}"
    if iid == "detectable_format:number_bullet_lists":
        n = _jitter(kw.get("num_bullets"), rng)
        mark = rng.choice(("*", "-", "* ", "1."))
        return text + "\n" + "\n".join(f"{mark} {_para(rng, words, 4)}" for _ in range(n))
    if iid == "detectable_format:number_highlighted_sections":
        n = _jitter(kw.get("num_highlights"), rng)
        hl = rng.choice(("*{}*", "**{}**", "* *", "*{}"))
        return text + " " + " ".join(hl.format(rng.choice(words)) for _ in range(n))
    if iid == "detectable_format:multiple_sections":
        n = _jitter(kw.get("num_sections"), rng)
        sp = kw.get("section_spliter") or "Section"
        sp = rng.choice((sp, sp.upper(), sp.lower()))
        return "\n\n".join(f"{sp} {i + 1}\n{_para(rng, words)}" for i in range(n)) or text
    if iid == "detectable_format:json_format":
        r = rng.random()
        if r < 0.4:
            return json.dumps({"answer": text, "n": rng.randint(0, 9)})
        if r < 0.7:
            return "```json\n" + json.dumps({"text": text}) + "\n```"
        return "{" + text + "}"
    if iid == "detectable_format:title":
        return rng.choice(("<<{}>>\n", "<<>>\n", "<{}>\n", "Title: <<{}>> ")).format(
            rng.choice(words).title()) + text
    if iid == "detectable_format:constrained_response":
        return text + " " + rng.choice(("My answer is yes.", "My answer is no.",
                                        "My answer is maybe.", "My answer is probably."))
    if iid == "startend:quotation":
        return rng.choice(('"{}"', '"{}', "'{}'", ' "{}" ')).format(text)
    if iid == "startend:end_checker":
        end = kw.get("end_phrase") or "Bye."
        return text + " " + rng.choice((end, end + " ", end.lower(), end[:-1], end + "!"))
    if iid == "detectable_content:postscript":
        mk = kw.get("postscript_marker") or "P.S."
        mk = rng.choice((mk, mk.lower(), mk.replace(".", ""), "P.P.S", "PS:"))
        return f"{text}\n\n{mk} {_para(rng, words, 5)}"
    if iid == "detectable_content:number_placeholders":
        n = _jitter(kw.get("num_placeholders"), rng)
        return text + " " + " ".join(f"[{rng.choice(words)}]" for _ in range(n)) + \
            rng.choice(("", " []", " [a b]"))
    if iid == "keywords:existence":
        keys = list(kw.get("keywords") or [])
        keep = [k for k in keys if rng.random() < 0.8]
        return text + " " + " ".join(rng.choice((k, k.upper(), k + "s")) for k in keep)
    if iid == "keywords:forbidden_words":
        bad = list(kw.get("forbidden_words") or [])
        return text + (" " + rng.choice(bad) if bad and rng.random() < 0.5 else "")
    if iid == "keywords:frequency":
        n = _jitter(kw.get("frequency"), rng)
        k = kw.get("keyword") or "word"
        return text + " " + " ".join(rng.choice((k, k.title(), k + ",")) for _ in range(n))
    if iid == "keywords:letter_frequency":
        n = _jitter(kw.get("let_frequency"), rng)
        letter = str(kw.get("letter") or "a")
        stripped = re.sub(re.escape(letter), "", text, flags=re.I) if rng.random() < 0.5 else text
        return stripped + " " + " ".join(letter * rng.randint(1, 2) for _ in range(n))
    if iid == "punctuation:no_comma":
        return text.replace(",", "") if rng.random() < 0.6 else text + ", and so, on"
    if iid == "length_constraints:number_words":
        n = _jitter(kw.get("num_words"), rng)
        return " ".join((text.split() + [rng.choice(words) for _ in range(n)])[:n])
    if iid == "length_constraints:number_sentences":
        n = _jitter(kw.get("num_sentences"), rng)
        return " ".join(_para(rng, words, rng.randint(3, 8)) for _ in range(n)) + \
            rng.choice(("", " Mr. Smith agreed.", " e.g. this"))
    if iid == "length_constraints:number_paragraphs":
        n = _jitter(kw.get("num_paragraphs"), rng)
        sep = rng.choice(("\n***\n", "\n\n***\n\n", " *** ", "\n* * *\n"))
        return sep.join(_para(rng, words) for _ in range(n)) + rng.choice(("", sep))
    if iid == "length_constraints:nth_paragraph_first_word":
        n = _jitter(kw.get("num_paragraphs"), rng)
        nth = int(kw.get("nth_paragraph") or 1)
        first = str(kw.get("first_word") or "the")
        paras = [_para(rng, words) for _ in range(max(n, 1))]
        if 0 < nth <= len(paras):
            paras[nth - 1] = rng.choice((first, first.title(), f'"{first}"', "The")) + " " + \
                paras[nth - 1]
        return "\n\n".join(paras)
    if iid == "combination:two_responses":
        a, b = _para(rng, words), rng.choice((_para(rng, words), text))
        return rng.choice(("{}\n******\n{}", "{}\n******\n{}\n******\n", "{} ***** {}",
                           "{}\n******\n{}")).format(a, a if rng.random() < 0.2 else b)
    if iid == "combination:repeat_prompt":
        rep = str(kw.get("prompt_to_repeat") or prompt)
        return rng.choice((rep, rep.lower(), rep[:-1], " " + rep)) + "\n" + text
    if iid == "language:response_language":
        return rng.choice(foreign) if rng.random() < 0.7 else text
    return text


_GENERIC = (
    lambda t, r: "Sure, here is my answer:\n" + t,          # loose: drop the first line
    lambda t, r: t + "\nI hope this helps!",                 # loose: drop the last line
    lambda t, r: f"**{t}**",                                 # loose: strip '*'
    lambda t, r: t.replace("\n", " "),
    lambda t, r: t.upper(),
    lambda t, r: t[: max(1, len(t) // 2)],
    lambda t, r: t + "\n\n" + t,
    lambda t, r: "   " + t + "\n\n",
    lambda t, r: "",                                         # blank: strict fails everything
)


def _mutants(s: Sample, base: str, rng: random.Random, words: list[str],
             foreign: list[str]) -> str:
    text = base
    ids, kwargs = s.data["instruction_id_list"], s.data["kwargs"]
    for iid, kw in zip(ids, kwargs):
        if rng.random() < 0.75:
            text = _steer(iid, {k: v for k, v in kw.items() if v is not None}, text,
                          s.data["prompt"], rng, words, foreign)
    for _ in range(rng.choice((0, 0, 1, 1, 2))):
        g = rng.choice(_GENERIC)
        if g is _GENERIC[-1] and rng.random() < 0.8:
            continue
        text = g(text, rng)
    return text


@pytest.fixture(scope="module")
def corpus(data_dir: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[list[Sample], list[str]]:
    layer = DataLayer(data_dir)
    samples = load_task("ifeval:en").samples(layer)
    sampled = _tiny_samples([s.data["prompt"] for s in samples],
                            tmp_path_factory.mktemp("diff-models"))
    english = [x.strip() for x in layer.read_lines("flores200/dev/eng_Latn.dev") if x.strip()]
    words = sorted({w.strip(".,;:!?\"'()").lower() for x in english[:400] for w in x.split()}
                   - {""})
    foreign = [next(x for x in layer.read_lines(f"flores200/dev/{c}.dev") if x.strip()).strip()
               for c in FLORES_LANGS]
    rng = random.Random(21)
    items: list[Sample] = []
    responses: list[str] = []
    for s, tiny in zip(samples, sampled):
        items.append(s)
        responses.append(tiny)
        for _ in range(MUTANTS_PER_PROMPT):
            base = tiny if rng.random() < 0.5 else " ".join(rng.sample(english, 2))
            items.append(s)
            responses.append(_mutants(s, base, rng, words, foreign))
    return items, responses


# --------------------------------------------------------------------------------------------
# the comparison
# --------------------------------------------------------------------------------------------

class _SeededRegistry(dict):
    """lm-eval's INSTRUCTION_DICT, seeding Python's `random` at each lookup the way evalkit
    seeds a checker build (``f"{key}:{index}"``); lm-eval looks instructions up in order."""

    key = ""
    n = 1
    calls = 0

    def __getitem__(self, iid: str) -> Any:
        random.seed(f"{self.key}:{self.calls % self.n}")
        self.calls += 1
        return super().__getitem__(iid)


def _lm_eval_verdicts(items: list[Sample], responses: list[str],
                      monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[bool], list[bool]]]:
    from evalkit.tasks.ifeval_checks import runtime_info

    runtime_info()  # punkt + seeded langdetect, as evalkit runs them
    from lm_eval.tasks.ifeval import instructions_registry, utils

    seeded = _SeededRegistry(instructions_registry.INSTRUCTION_DICT)
    monkeypatch.setattr(instructions_registry, "INSTRUCTION_DICT", seeded)
    out = []
    for s, r in zip(items, responses):
        seeded.key, seeded.n, seeded.calls = s.id, max(1, len(s.data["instruction_id_list"])), 0
        doc = {"key": s.id, "instruction_id_list": s.data["instruction_id_list"],
               "prompt": s.data["prompt"], "kwargs": s.data["kwargs"]}
        res = utils.process_results(doc, [r])
        out.append((list(res["inst_level_strict_acc"]), list(res["inst_level_loose_acc"])))
    monkeypatch.undo()
    return out


def test_every_verdict_equals_lm_eval(corpus: tuple[list[Sample], list[str]],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    items, responses = corpus
    assert len(responses) >= 2000
    t0 = time.perf_counter()
    scored = load_task("ifeval:en").score(items, [[Generation((r,))] for r in responses],
                                          ScoringContext(seed=0))
    t_evalkit = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = _lm_eval_verdicts(items, responses, monkeypatch)
    t_lm_eval = time.perf_counter() - t0
    mismatches = []
    verdicts: dict[str, Counter[bool]] = {}
    fallback = 0
    for s, r, row, (strict, loose) in zip(items, responses, scored.per_sample, ref):
        got = (row["inst_level_strict_acc"], row["inst_level_loose_acc"])
        if got != (strict, loose):
            mismatches.append(f"key {s.id} {s.data['instruction_id_list']}: evalkit {got}, "
                              f"lm-eval {(strict, loose)}; response {r[:120]!r}")
        for iid, v in zip(s.data["instruction_id_list"], strict):
            verdicts.setdefault(iid, Counter())[v] += 1
        fallback += any("seeded_random_fallback" in str(n)
                        for n in row.get("adaptations", {}).values())
    assert not mismatches, f"{len(mismatches)} of {len(responses)} differ:\n" + \
        "\n".join(mismatches[:20])
    # the responses exercise the checkers: both verdicts for (nearly) every instruction id
    both = [iid for iid, c in verdicts.items() if c[True] and c[False]]
    assert len(verdicts) == 25 and len(both) >= 23, {k: dict(v) for k, v in verdicts.items()}
    assert fallback >= 8  # the random-fallback prompts were compared too (same seed)
    print(f"\n{len(responses)} responses, {sum(map(len, (r[0] for r in ref)))} instructions: "
          f"evalkit {t_evalkit:.1f} s, lm-eval {t_lm_eval:.1f} s; both verdicts for "
          f"{len(both)}/25 ids")


def test_unseeded_lm_eval_can_differ_only_on_random_fallbacks(
        corpus: tuple[list[Sample], list[str]]) -> None:
    """Without the shared seed, lm-eval's verdicts may move, but only on the instructions whose
    invalid kwargs make it draw a random value (the ones evalkit records as seeded)."""
    from evalkit.tasks.ifeval_checks import runtime_info

    runtime_info()
    from lm_eval.tasks.ifeval import utils

    items, responses = corpus
    picked = [(s, r) for s, r in zip(items, responses) if s.id in ("1122", "1129")]
    scored = load_task("ifeval:en").score([s for s, _ in picked],
                                          [[Generation((r,))] for _, r in picked],
                                          ScoringContext(seed=0))
    for (s, r), row in zip(picked, scored.per_sample):
        random.seed(f"unrelated:{r}")
        res = utils.process_results({"key": s.id, "instruction_id_list":
                                     s.data["instruction_id_list"], "prompt": s.data["prompt"],
                                     "kwargs": s.data["kwargs"]}, [r])
        seeded = {int(k.split(":", 1)[0]) for k, notes in row.get("adaptations", {}).items()
                  if any("seeded_random_fallback" in n for n in notes)}
        for i, (a, b) in enumerate(zip(row["inst_level_strict_acc"],
                                       res["inst_level_strict_acc"])):
            assert a == b or i in seeded
