"""How boards, the viewer, `compare` and exports name and print metrics and models."""

from __future__ import annotations

import math
import re

METRIC_DOCS: dict[str, str] = {
    "bleu": "Corpus BLEU (sacrebleu, 13a tokenisation), 0–100.",
    "chrf": "Corpus chrF (sacrebleu default: character order 6, word order 0 = chrF2), 0–100.",
    "chrf++": "Corpus chrF++ (character order 6, word order 2), 0–100.",
    "spbleu": "Corpus spBLEU (sacrebleu, flores200 SentencePiece tokenisation), 0–100.",
    "target_lang_rate": "Share of outputs identified (lingua) as the target language.",
    "off_target_drift_rate": "Share of outputs identified as a drift language (e.g. Italian "
                             "for Sardinian targets); lower is better.",
    "empty_rate": "Share of empty outputs; lower is better.",
}

#: Human names of metric ids (the id stays in tooltips, CSV headers and JSON)
METRIC_LABELS: dict[str, str] = {
    "bleu": "BLEU", "chrf": "chrF", "chrf++": "chrF++", "spbleu": "spBLEU",
    "target_lang_rate": "In target language", "off_target_drift_rate": "Drift to other language",
    "empty_rate": "Empty output",
    "prompt_level_strict_acc": "Prompt strict", "prompt_level_loose_acc": "Prompt loose",
    "inst_level_strict_acc": "Instruction strict", "inst_level_loose_acc": "Instruction loose",
    "safe_rate": "Safe", "gated_safe_rate": "Safe + in language", "lang_rate": "In prompt language",
    "if_rate": "Follows", "gated_if_rate": "Follows + in language",
    "compliance_rate_safe": "Complies (safe prompts)",
    "gated_compliance_rate_safe": "Complies + in language (safe prompts)",
    "refusal_rate_unsafe": "Refuses (unsafe prompts)", "compliance_rate": "Complies",
    "refusal_rate": "Refuses", "judge_unparseable_rate": "Judge unparseable",
    "parse_success": "Parse success", "parse_score": "Parse score", "mean_reward": "Mean reward",
    "parse_success_seed_sd": "Parse success SD (seeds)",
    "parse_score_seed_sd": "Parse score SD (seeds)", "no_sentence_rate": "No sentence",
    "oracle_agreement": "Oracle agreement", "oracle_kappa": "Oracle κ",
    "aps": "Well-formed (APS)", "accuracy": "Accuracy",
    "accuracy_and_wellformed": "Accuracy ∧ well-formed", "pair_accuracy": "Pair accuracy",
    "acc": "Accuracy", "acc_norm": "Accuracy (norm.)", "exact_match": "Exact match", "f1": "F1",
    "mcc": "MCC", "perplexity": "Perplexity", "word_perplexity": "Word perplexity",
    "byte_perplexity": "Byte perplexity", "bits_per_byte": "Bits per byte", "tokens": "Tokens",
}


def metric_label(metric: str) -> str:
    """A readable name for a metric id: ``parse_score:stanza-nob`` → ``Parse score (stanza-nob)``.

    Handles evalkit's id shapes: ``name:param`` (oracle ids, ``a|b`` pairs), ``name/part`` and
    ``name[part]`` breakdowns, and lm-eval's ``metric,filter``; unknown names get spaces.
    """
    m = metric
    suffix = ""
    if "," in m:  # lm-eval "acc,none" / "exact_match,strict-match"
        m, filt = m.split(",", 1)
        suffix = "" if filt == "none" else f" [{filt}]"
    for sep, fmt_ in (("/", "{} – {}"), ("[", "{} [{}]")):
        if sep in m:
            head, part = m.split(sep, 1)
            return fmt_.format(metric_label(head), part.rstrip("]")) + suffix
    if ":" in m:
        head, param = m.split(":", 1)
        return f"{metric_label(head)} ({param.replace('|', ' vs ')})" + suffix
    if m in METRIC_LABELS:
        return METRIC_LABELS[m] + suffix
    words = m.replace("_", " ").strip()
    return (words[:1].upper() + words[1:] if words else metric) + suffix


def public_name(name: str | None) -> str:
    """A model or adapter name fit for a published page: a filesystem path (absolute, home-,
    dot-relative, or more than two parts deep) becomes its last component; hub ids
    (``org/name``) stay as they are. Machine paths never reach a board."""
    if not name:
        return ""
    s = str(name).rstrip("/\\")
    parts = [x for x in re.split(r"[/\\]", s) if x]
    pathlike = (s.startswith(("/", "~", "./", "../", "\\")) or bool(re.match(r"^[A-Za-z]:", s))
                or len(parts) > 2)
    return (parts[-1] if parts else s) if pathlike else s


def is_breakdown(metric: str) -> bool:
    """A per-category / per-item breakdown of another metric (not a column by default)."""
    return "[" in metric or "/" in metric


def fmt(v: float | None, digits: int | None = None) -> str:
    """A metric value with sensible precision (2 decimals ≥ 2, else 3)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    d = digits if digits is not None else (2 if abs(v) >= 2 else 3)
    return f"{v:.{d}f}"
