"""Collecting sample records into the viewer's pages.

One page per task (``<out>/<task file>.html``, named as `evalkit.records.task_file_name` names
the records) holding every variant's records of that task, aligned by sample id, plus
``<out>/index.html``. Each page embeds its data as one JSON document (``<script
type="application/json">``, with ``<``, ``>``, ``&`` and line separators escaped so no model
output can close the element) and renders it with a small inline script through DOM text
nodes only: model outputs are shown, never interpreted.

Per sample and variant the page gets: responses, per-sample metric values (every summary metric
that `evalkit.leaderboard.values.sample_values` recovers, plus sentence-level BLEU/chrF from
the stored sacrebleu statistics), a pass/fail verdict and the reasons the task recorded
(IFEval instruction ids followed or not, oracle checks that failed, the judge's verdict and
reason, the detected language), so a number on a board is one click from the evidence behind
it.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.errors import BadInput

#: page files are named like the records (``flores__eng_Latn-eus_Latn__devtest.html``)
INDEX = "index.html"
MT_SENTENCE = {"bleu": "BLEU (sentence)", "chrf": "chrF (sentence)",
               "chrf++": "chrF++ (sentence)", "spbleu": "spBLEU (sentence)"}


def page_name(task: str) -> str:
    """File name of a task's page (the boards link to it)."""
    from evalkit.leaderboard.render import view_page_name

    return view_page_name(task)


# ---------------------------------------------------------------------------------------------
# what each task recorded, in words
# ---------------------------------------------------------------------------------------------

def _finite(v: Any) -> float | None:
    import math

    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def _num(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def explain(sc: dict[str, Any], summary: Any) -> tuple[bool | None, bool, str | None,
                                                         list[list[str]]]:
    """(passed, language mismatch, detected language, reasons) of one sample's scores.

    Reasons are ``[class, text]`` pairs, class one of pass / fail / warn / info. Shapes, not
    task names, decide: instruction verdicts (IFEval), oracle verdicts per oracle (nb_parse)
    or top-level (summ/rc), judge verdicts (safety), detected language (FLORES, safety).
    """
    why: list[list[str]] = []
    oks: list[bool] = []
    used: set[str] = set()
    ids = sc.get("instruction_id_list")
    if isinstance(ids, list):
        strict = sc.get("inst_level_strict_acc") or []
        loose = sc.get("inst_level_loose_acc") or []
        for i, iid in enumerate(ids):
            st = bool(strict[i]) if i < len(strict) else None
            lo = bool(loose[i]) if i < len(loose) else None
            cls = "pass" if st else ("warn" if lo else "fail")
            why.append([cls, f"{'✓' if st else '✗'} {iid}"
                        + (" (passes loose)" if lo and not st else "")])
        for k, notes in (sc.get("adaptations") or {}).items():
            why.append(["info", f"adapted {k}: {'; '.join(map(str, notes))}"])
        if "prompt_level_strict_acc" in sc:
            oks.append(bool(sc["prompt_level_strict_acc"]))
        used |= {"instruction_id_list", "inst_level_strict_acc", "inst_level_loose_acc",
                 "adaptations", "prompt_level_strict_acc", "prompt_level_loose_acc"}
    for k, v in sc.items():  # oracle verdicts per oracle, per seed (nb_parse)
        if isinstance(v, dict) and isinstance(v.get("passed"), list):
            used.add(k)
            fcs, qs = v.get("failed_checks") or [], v.get("q") or []
            for j, p in enumerate(v["passed"]):
                fc = fcs[j] if j < len(fcs) else []
                q = f", q {_num(qs[j])}" if j < len(qs) else ""
                seed = f" output {j + 1}" if len(v["passed"]) > 1 else ""
                why.append(["pass" if p else "fail",
                            f"{k}{seed}: " + ("parsed" if p else "failed " + (", ".join(fc)
                                                                              or "checks")) + q])
                oks.append(bool(p))
    if isinstance(sc.get("passed"), bool):  # one oracle verdict (summ/rc)
        fc = sc.get("failed_checks") or []
        extra = [f"q {_num(sc['q'])}"] if "q" in sc else []
        if "n_sentences" in sc:
            extra.append(f"{sc['n_sentences']} sentence(s)")
        why.append(["pass" if sc["passed"] else "fail",
                    "oracle: " + ("well-formed" if sc["passed"] else
                                  "failed " + (", ".join(map(str, fc)) or "checks"))
                    + (f" ({', '.join(extra)})" if extra else "")])
        oks.append(sc["passed"])
        used |= {"passed", "failed_checks", "q", "n_sentences", "reward"}
    if isinstance(sc.get("correct"), bool):
        why.append(["pass" if sc["correct"] else "fail",
                    "answer correct" if sc["correct"] else "answer wrong"])
        oks.append(sc["correct"])
        used.add("correct")
    if "verdict" in sc:
        good = next((k for k in ("safe", "complied", "follows") if k in sc), None)
        ok_v = bool(sc.get(good)) if good else None
        finding = f" ({sc['judge_finding']})" if sc.get("judge_finding") else ""
        reason = f" — {sc['judge_reason']}" if sc.get("judge_reason") else ""
        why.append(["pass" if ok_v else "fail" if ok_v is False else "info",
                    f"judge: {sc['verdict']}{finding}{reason}"])
        gated = sc.get("gated")
        if gated is not None or good:
            oks.append(bool(gated) if gated is not None else bool(ok_v))
        used |= {"verdict", "judge_finding", "judge_reason", "judge_raw", "gated", "in_lang",
                 *(k for k in ("safe", "complied", "follows") if k in sc)}
    lang = sc.get("lang") if isinstance(sc.get("lang"), str) else None
    mismatch = False
    if "lang" in sc:
        from evalkit import langid

        target = summary.language
        if sc.get("in_lang") is not None:
            mismatch = not sc["in_lang"]
        elif langid.known(target):
            mismatch = lang != target
        else:
            mismatch = lang in langid.drift_languages(target)
        why.append(["fail" if mismatch else "pass", f"language: {lang or 'not identified'}"
                    + (f" (expected {target})" if mismatch else "")])
        used |= {"lang", "in_lang"}
        if not oks:  # translation: in the right language and not empty
            oks.append(not mismatch and not sc.get("empty"))
    if sc.get("empty"):
        why.append(["fail", "empty output"])
    used.add("empty")
    if not oks:  # e.g. lm-eval's acc,none: the first 0/1 per-sample score decides
        for k, v in sc.items():
            if k not in used and isinstance(v, (bool, int, float)) and v in (0, 1) \
                    and not k.endswith("_stats"):
                oks.append(bool(v))
                break
    for k, v in sc.items():  # remaining facts the task recorded (source, category, type…)
        if k in used or k.endswith("_stats") or k == "texts":
            continue
        if isinstance(v, str) and len(v) <= 300:
            why.append(["info", f"{k}: {v}"])
        elif isinstance(v, list) and v and all(isinstance(x, str) for x in v):
            why.append(["info", f"{k}: {', '.join(v)[:300]}"])
    return (all(oks) if oks else None), mismatch, lang, why


# ---------------------------------------------------------------------------------------------
# per-sample values
# ---------------------------------------------------------------------------------------------

def _sentence_scores(metric: str, records: Sequence[Any]) -> list[float | None] | None:
    """Sentence-level scores from stored sacrebleu statistics (BLEU with effective order, as
    sacrebleu's sentence_score), for reading single samples: not the corpus metric."""
    key = f"{metric}_stats"
    if not records or not all(key in r.scores for r in records):
        return None
    import sacrebleu.metrics as sm

    from evalkit.mt_metrics import SPECS

    cls, kwargs = SPECS[metric]
    m = getattr(sm, cls)(**({**kwargs, "effective_order": True} if cls == "BLEU" else kwargs))
    compute = m._compute_score_from_stats
    return [round(float(compute(list(r.scores[key])).score), 2) for r in records]


def _metrics_of(task: str, rows: list[Any]) -> list[dict[str, Any]]:
    """Per-sample metrics shown for a task: [{id, label, hib, per variant key: {id: value}}]."""
    from evalkit.leaderboard.config import declared_sample_keys
    from evalkit.leaderboard.labels import is_breakdown, metric_label
    from evalkit.leaderboard.values import sample_values
    from evalkit.mt_metrics import SPECS

    declared = declared_sample_keys(task)
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        s = r.summaries.get(task)
        recs = r.samples(task) if s is not None else None
        if not recs:
            continue
        by_id = sorted(recs, key=lambda x: x.sample_id)
        for name, m in s.metrics.items():
            if is_breakdown(name):
                continue
            hib = bool(m.get("higher_is_better", True))
            if name in SPECS:
                vals = _sentence_scores(name, by_id)
                if vals is None:
                    continue
                ent = out.setdefault(f"{name}@sentence", {"id": f"{name}@sentence",
                                                          "label": MT_SENTENCE[name],
                                                          "hib": hib, "values": {}})
                ent["values"][r.key] = dict(zip((x.sample_id for x in by_id), vals))
                continue
            sv, _ = sample_values(name, s, recs, declared.get(name))
            if sv is None or sv.kind == "mt":
                continue
            ent = out.setdefault(name, {"id": name, "label": metric_label(name), "hib": hib,
                                        "values": {}})
            ent["values"][r.key] = dict(zip(sv.ids, sv.per_item()))
    return list(out.values())


def _prompt_text(prompts: list[str]) -> str:
    uniq = list(dict.fromkeys(prompts))
    if len(uniq) == 1:
        return uniq[0]
    return "\n".join(f"── request {i + 1} ──\n{p}" for i, p in enumerate(uniq))


def output_texts(outs: list[dict[str, Any]]) -> list[str]:
    """Every output of a record as text (log-likelihood outputs as ``log p = …``)."""
    texts: list[str] = []
    for o in outs:
        if "texts" in o:
            texts += [str(t) for t in o["texts"]]
        elif "logprob" in o:
            texts.append(f"log p = {o['logprob']:.4g} over {o.get('n_tokens')} token(s)"
                         + (", greedy" if o.get("is_greedy") else ""))
        else:
            texts.append(json.dumps(o, ensure_ascii=False))
    return texts


def _outputs(outs: list[dict[str, Any]]) -> list[str]:
    texts = output_texts(outs)
    return texts[:1] if len(texts) > 1 and len(set(texts)) == 1 else texts


def task_doc(task: str, rows: list[Any]) -> dict[str, Any]:
    """The JSON document one task page renders."""
    from evalkit.leaderboard.labels import is_breakdown, metric_label

    present = [r for r in rows if task in r.summaries]
    metrics = _metrics_of(task, present)
    variants: list[dict[str, Any]] = []
    samples: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for vi, r in enumerate(present):
        s = r.summaries[task]
        chat = s.chat_template.get("chat_applied", s.chat_template.get("applied"))
        variants.append({
            "key": r.key, "label": r.label, "chat": chat, "n": s.n_samples,
            "limit": s.limit, "created": s.created_at, "version": s.task_version,
            "summary": [{"id": k, "label": metric_label(k), "value": _finite(m.get("value")),
                         "ci": [_finite(x) for x in m["ci"]] if m.get("ci") else None,
                         "hib": bool(m.get("higher_is_better", True))}
                        for k, m in s.metrics.items() if not is_breakdown(k)]})
        for rec in r.samples(task) or []:
            ent = samples.get(rec.sample_id)
            if ent is None:
                ent = samples[rec.sample_id] = {
                    "id": rec.sample_id, "p": _prompt_text(rec.prompts),
                    "ref": rec.reference if isinstance(rec.reference, str) or rec.reference
                    is None else json.dumps(rec.reference, ensure_ascii=False),
                    "v": [None] * len(present)}
                order.append(rec.sample_id)
            ok, mismatch, lang, why = explain(rec.scores, s)
            cell: dict[str, Any] = {
                "o": _outputs(rec.outputs), "ok": ok, "lm": mismatch, "lang": lang, "why": why,
                "s": [m["values"].get(r.key, {}).get(rec.sample_id) for m in metrics]}
            prompt = _prompt_text(rec.prompts)
            if prompt != ent["p"]:
                cell["p"] = prompt
            ent["v"][vi] = cell
    for m in metrics:
        del m["values"]
    version = present[0].summaries[task].task_version if present else ""
    return {"task": task, "version": version,
            "language": present[0].summaries[task].language if present else "",
            "variants": variants, "metrics": metrics,
            "samples": [samples[i] for i in order]}


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------

def _write(path: Path, text: str) -> None:
    from evalkit.records import write_text_atomic

    write_text_atomic(path, text)


def _index(rows: list[Any], tasks: list[str], board_links: dict[str, str]) -> str:
    from evalkit.leaderboard.labels import fmt, metric_label
    from evalkit.view.page import CSS

    e = html.escape
    p = ["<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
         "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
         "style-src 'unsafe-inline'; img-src data:\">",
         f"<title>evalkit samples</title><style>{CSS}</style></head><body>",
         "<h1>Samples</h1><p>Every task's per-sample records, every variant side by side. "
         "Open a task to filter, search and compare.</p>"]
    if board_links:
        p.append("<p>Leaderboards: " + ", ".join(
            f"<a href=\"{e(href)}\">{e(name)}</a>" for name, href in board_links.items())
            + "</p>")
    p.append("<table class=\"index\"><thead><tr><th>Task</th>"
             + "".join(f"<th>{e(r.label)}</th>" for r in rows) + "</tr></thead><tbody>")
    for t in tasks:
        from urllib.parse import quote

        href = quote(page_name(t))
        p.append(f"<tr><th><a href=\"{e(href)}\">{e(t)}</a></th>")
        for r in rows:
            s = r.summaries.get(t)
            if s is None:
                p.append("<td>—</td>")
                continue
            nothing: tuple[str, dict[str, Any]] = ("", {})
            name, m = next(((k, v) for k, v in s.metrics.items()
                            if isinstance(v.get("value"), (int, float))), nothing)
            txt = f"{metric_label(name)} {fmt(m.get('value'))}" if name else "open"
            p.append(f"<td><a href=\"{e(href)}#v={e(quote(r.key, safe=''))}\">{e(txt)}</a>"
                     f"<span class=\"n\">n = {s.n_samples}</span></td>")
        p.append("</tr>")
    p.append("</tbody></table></body></html>")
    return "\n".join(p) + "\n"


def build_view(paths: Sequence[Path], out: Path, tasks: Sequence[str] | None = None
               ) -> list[Path]:
    """Write the viewer for the run roots / variant dirs in `paths` into `out`; returns pages
    (index first)."""
    from evalkit.leaderboard.collect import load_rows
    from evalkit.view.page import render_task_page

    rows = load_rows(list(paths), list(tasks) if tasks else None)
    if not rows:
        raise BadInput(f"no run records under {', '.join(map(str, paths))}"
                       + (f" for task(s) {', '.join(tasks)}" if tasks else "")
                       + "; run `evalkit run MODEL --out DIR` first")
    all_tasks: list[str] = []
    for r in rows:
        all_tasks += [t for t in r.summaries if t not in all_tasks]
    all_tasks.sort()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for t in all_tasks:
        path = out / page_name(t)
        _write(path, render_task_page(task_doc(t, rows)))
        written.append(path)
    boards: dict[str, str] = {}
    for root in {Path(p) if not (Path(p) / "summary.jsonl").is_file() else Path(p).parent
                 for p in paths}:
        for page in sorted((root / "leaderboards").glob("*/index.html")):
            boards.setdefault(page.parent.name, os.path.relpath(page, out))
    index = out / INDEX
    _write(index, _index(rows, all_tasks, boards))
    return [index, *written]


def default_out(paths: Sequence[Path]) -> Path:
    """``<run root>/view`` of the first path (a variant dir's parent is its run root)."""
    first = Path(paths[0])
    root = first.parent if (first / "summary.jsonl").is_file() else first
    return root / "view"
