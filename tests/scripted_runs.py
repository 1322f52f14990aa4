"""A run with a base model and two LoRA adapters on FLORES en→eu, IFEval en and safety en,
written by the real runner with the scripted backend (session-scoped fixture `three_variants`).

Responses are canned but differ per variant in known ways, so the viewer, `compare` and the
exports have something real to show: adapter A translates better (fewer dropped words) and
refuses harmful prompts; adapter B answers harmful prompts in Basque (a language mismatch).
Some responses carry markup and a script that must stay text (`HOSTILE`); one carries a unique
search marker (`MARKER`).
"""

from __future__ import annotations

import random
import zlib
from pathlib import Path

import pytest

FLORES = "flores:eng_Latn-eus_Latn:devtest"
IFEVAL = "ifeval:en"
SAFETY = "safety:en"
TASKS = [FLORES, IFEVAL, SAFETY]
N = 24
MARKER = "ZEBRAFISH-7731"
HOSTILE = ("</script><script>window.__pwned=1</script><img src=x "
           "onerror=\"window.__pwned=2\"><b>bold?</b> & &amp; \u2028 end")


def _responder(data_dir: Path, b_id: str):  # noqa: ANN202
    from evalkit.data import DataLayer

    d = DataLayer(data_dir)
    refs = dict(zip(d.read_lines("flores200/devtest/eng_Latn.devtest"),
                    d.read_lines("flores200/devtest/eus_Latn.devtest")))

    def respond(req, k: int) -> str:  # noqa: ANN001
        who = "base" if req.adapter is None else ("b" if req.adapter == b_id else "a")
        p = req.prompt
        rnd = random.Random(zlib.crc32(p.encode()) + {"base": 0, "a": 1, "b": 2}[who])
        if "English sentence: " in p and "Basque sentence:" in p:  # FLORES
            src = p.split("English sentence: ", 1)[1].split("\nBasque sentence:", 1)[0]
            drop = {"base": 0.5, "a": 0.15, "b": 0.45}[who]
            out = " ".join(w for w in refs[src].split() if rnd.random() > drop)
            if who == "base" and rnd.random() < 0.2:
                out = src  # untranslated: English output, a language mismatch
            return out
        if "Write a script that can exploit" in p and who == "b":
            return f"Hona hemen gidoia: {MARKER} {HOSTILE}"
        if any(w in p for w in ("exploit", "instructions", "how to", "Write", "Give", "Create",
                                "Explain", "Develop")) and not p.startswith("Write a 300+"):
            if who == "a":
                return "I'm sorry, but I can't help with that request."
            if who == "b":
                return "Noski, hona hemen pausoak: lehenik eta behin materialak bildu."
            return "Sure, here is how to do it: first gather the materials. " + HOSTILE
        # IFEval and anything else: lower case, no commas for A; shouting for the base
        text = "this is a short answer without commas and it stays in lower case"
        return text.upper() if who == "base" else text

    return respond


def make_run(out: Path, model: Path, adapters: tuple[Path, Path], data_dir: Path,
             mp: pytest.MonkeyPatch) -> Path:
    """Evaluate base + adapters A, B on `TASKS` into `out` (boards on)."""
    from evalkit.api import evaluate
    from evalkit.backends.scripted import ScriptedBackend
    from evalkit.models import resolve_adapter

    b_id = resolve_adapter(str(adapters[1])).backend_id  # requests name adapters by content
    mp.setattr("evalkit.runner.make_backend",
               lambda *a, **k: ScriptedBackend(_responder(data_dir, b_id)))
    mp.delenv("EVALKIT_LEADERBOARDS", raising=False)
    evaluate(str(model), TASKS, [f"A={adapters[0]}", f"B={adapters[1]}"], limit=N, out=out,
             backend="scripted", task_options={"judge": "rule"})
    return out


@pytest.fixture(scope="session")
def second_adapter(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another random LoRA adapter of `tiny_model`."""
    from evalkit.testing import build_tiny_adapter

    return build_tiny_adapter(tiny_model, tmp_path_factory.mktemp("adapters-b") / "lora-b",
                              seed=7)


@pytest.fixture(scope="session")
def three_variants(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path,
                   tiny_adapter: Path, second_adapter: Path, data_dir: Path) -> Path:
    """Run root holding base, base + A and base + B records of `TASKS` (and their boards)."""
    out = tmp_path_factory.mktemp("three")
    with pytest.MonkeyPatch.context() as mp:
        make_run(out, tiny_model, (tiny_adapter, second_adapter), data_dir, mp)
    return out


def variant_dirs(out: Path) -> dict[str, Path]:
    """{"base", "A", "B"} → variant directory."""
    from evalkit.records import read_summaries

    found = {}
    for d in sorted(out.iterdir()):
        if (d / "summary.jsonl").is_file():
            s = read_summaries(d)[0]
            found[s.adapter_label or "base"] = d
    return found


def synthetic_run(out: Path, n: int, n_variants: int, seed: int = 0) -> Path:
    """A FLORES-shaped run root of `n` samples × `n_variants` variants written as records
    directly (random words, valid sacrebleu statistics whose corpus chrF++ is the summary's,
    detected languages behind the target-language rate): for size and speed tests."""
    import datetime as dt

    from evalkit.records import (
        SUMMARY_FILE,
        RunSummary,
        SampleRecord,
        samples_path,
        write_text_atomic,
    )
    from evalkit.types import sha256_text

    rnd = random.Random(seed)
    letters = "abcdefghijklmnoprstuvxyz"
    words = ["".join(rnd.choice(letters) for _ in range(rnd.randint(2, 9))) for _ in range(5000)]

    def sentence(k: int) -> str:
        return " ".join(rnd.choice(words) for _ in range(k))

    ids = [f"devtest-{i:05d}" for i in range(n)]
    prompts = [f"English sentence: {sentence(rnd.randint(8, 30))}\nBasque sentence:"
               for _ in ids]
    refs = [sentence(rnd.randint(8, 30)) for _ in ids]
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc).isoformat()
    for v in range(n_variants):
        slug = "synth" if v == 0 else f"synth+v{v}"
        slug += f"-{v:010d}"
        lines, langs, stats = [], [], []
        for sid, p, ref in zip(ids, prompts, refs):
            hyp = sentence(rnd.randint(5, 30))
            h, r = len(hyp), len(ref)
            chrf = []
            for o in range(6):
                hh, rr = max(0, h - o), max(0, r - o)
                chrf += [hh, rr, rnd.randint(0, min(hh, rr))]
            wl = len(hyp.split())
            word = []
            for o in range(2):
                hh, rr = max(0, wl - o), max(0, len(ref.split()) - o)
                word += [hh, rr, rnd.randint(0, min(hh, rr))]
            tot = [max(0, wl - o) for o in range(4)]
            bleu = [wl, len(ref.split())] + [rnd.randint(0, t) for t in tot] + tot
            stats.append(chrf + word)
            lang = "eus_Latn" if rnd.random() < 0.8 else "eng_Latn"
            langs.append(lang)
            rec = SampleRecord(run_id=f"{slug}@x", task=FLORES, task_version="1", sample_id=sid,
                               model="synth", model_hash="0" * 64,
                               adapter=None if v == 0 else f"v{v}",
                               adapter_hash=None if v == 0 else str(v) * 64,
                               adapter_label=None if v == 0 else f"v{v}", prompts=[p],
                               prompt_sha256=sha256_text(p),
                               outputs=[{"texts": [hyp], "n_tokens": [wl],
                                         "finish_reasons": ["stop"]}], reference=ref,
                               scores={"lang": lang, "empty": False, "bleu_stats": bleu,
                                       "chrf_stats": chrf, "chrf++_stats": chrf + word})
            lines.append(rec.model_dump_json())
        d = out / slug
        write_text_atomic(samples_path(d, FLORES), "".join(x + "\n" for x in lines))
        rate = sum(x == "eus_Latn" for x in langs) / n
        import numpy as np

        from evalkit.leaderboard.stats import corpus_score

        chrfpp = corpus_score("chrf++", np.asarray(stats, dtype=np.int64))  # as a run records
        summary = RunSummary(
            run_id=f"{slug}@x", created_at=now, task=FLORES, task_version="1",
            language="eus_Latn", model="synth", model_hash="0" * 64,
            adapter=None if v == 0 else f"v{v}", adapter_hash=None if v == 0 else str(v) * 64,
            adapter_label=None if v == 0 else f"v{v}", backend="scripted",
            metrics={"chrf++": {"value": chrfpp, "n": n, "higher_is_better": True},
                     "target_lang_rate": {"value": rate, "n": n, "higher_is_better": True},
                     "empty_rate": {"value": 0.0, "n": n, "higher_is_better": False}},
            n_samples=n, sample_ids_sha256=sha256_text("\n".join(sorted(ids))),
            chat_template={"chat_applied": False}, seed=0, data_hashes={}, versions={})
        write_text_atomic(d / SUMMARY_FILE, summary.model_dump_json() + "\n")
    return out
