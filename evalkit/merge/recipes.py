"""Merge recipes as data: which model is the anchor, which deltas are added, with what weight.

Every recipe evalkit knows is one shape of task arithmetic,

    W = W_anchor + Σ_i w_i · (W_i − W_base)

evaluated per tensor in exactly this order (fp32 unless the inputs are float64): the deltas are
summed left to right into an accumulator, then added to the anchor. Tests compare merged weights
bit for bit against this expression.

* ``diploma`` (DIPLomA): ``W_cpt + α·(W_instruct − W_base)``; anchor = cpt,
  one delta (instruct, α). α = 1.0 for the released Llama-eus-3B-DIPLomA.
* ``language-vector`` (Merge and Conquer, reconstructed): ``W_instruct + λ·(W_lang − W_base)``;
  anchor = instruct, one delta (lang, λ), λ ∈ [0.5, 1] in the source.
* ``task-arithmetic`` (mergekit's ``task_arithmetic``): ``W_base + Σ λ·w_i·(W_i − W_base)``;
  anchor = base, deltas (model_i, λ·w_i). ``λ`` is mergekit's ``lambda``; sweeps vary it.

Mathematically DIPLomA is mergekit ``task_arithmetic`` with models cpt (weight 1) and instruct
(weight α); evalkit anchors at cpt instead, so α = 0 returns W_cpt bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evalkit.errors import BadInput

RECIPES = ("diploma", "language-vector", "task-arithmetic")


@dataclass(frozen=True)
class MergeSpec:
    """A fully specified merge: roles → model names, and the arithmetic over them.

    ``inputs`` maps role names ("base", "cpt", ...) to model names as the user gave them (a
    local checkpoint directory, ``default`` or a hub id already in the local cache).
    """

    recipe: str
    inputs: dict[str, str]
    anchor: str  # role whose weights the deltas are added to
    base: str  # role subtracted in every delta
    deltas: tuple[tuple[str, float], ...]  # (role, weight), summed in this order
    tokenizer_from: str  # role whose tokenizer, config and generation config are copied
    alpha: float  # the recipe's scalar (α, λ or task-arithmetic λ), recorded and used in names
    extra: dict[str, object] = field(default_factory=dict)  # recorded as is (e.g. raw weights)

    def formula(self) -> str:
        """Human-readable formula with the numbers filled in (for records and logs)."""
        terms = " + ".join(f"{w:g}·(W_{r} − W_{self.base})" for r, w in self.deltas)
        return f"W = W_{self.anchor}" + (f" + {terms}" if terms else "")

    def name(self) -> str:
        """Short directory-safe name, e.g. ``diploma-a0.75``."""
        return f"{self.recipe}-a{self.alpha:g}"


def _check_alpha(alpha: float, what: str) -> float:
    alpha = float(alpha)
    if alpha != alpha or alpha in (float("inf"), float("-inf")):
        raise BadInput(f"{what} must be a finite number, got {alpha}")
    return alpha


def diploma(base: str, cpt: str, instruct: str, alpha: float = 1.0) -> MergeSpec:
    """DIPLomA: ``W_cpt + α·(W_instruct − W_base)``; tokenizer/config from the instruct model."""
    a = _check_alpha(alpha, "--alpha")
    return MergeSpec("diploma", {"base": base, "cpt": cpt, "instruct": instruct},
                     anchor="cpt", base="base", deltas=(("instruct", a),),
                     tokenizer_from="instruct", alpha=a)


def language_vector(base: str, lang: str, instruct: str, lam: float = 1.0) -> MergeSpec:
    """Merge and Conquer: ``W_instruct + λ·(W_lang − W_base)``; tokenizer from instruct."""
    a = _check_alpha(lam, "--alpha/--lambda")
    return MergeSpec("language-vector", {"base": base, "lang": lang, "instruct": instruct},
                     anchor="instruct", base="base", deltas=(("lang", a),),
                     tokenizer_from="instruct", alpha=a)


def task_arithmetic(base: str, models: list[str], weights: list[float] | None = None,
                    lam: float = 1.0, tokenizer_from: str = "base") -> MergeSpec:
    """mergekit-style task arithmetic: ``W_base + Σ λ·w_i·(W_i − W_base)``.

    ``weights`` defaults to 1.0 per model; ``tokenizer_from`` is ``base`` or ``model1``,
    ``model2``, ... (the role names of ``models`` in order).
    """
    if not models:
        raise BadInput("task-arithmetic needs at least one --model besides --base")
    ws = [1.0] * len(models) if not weights else [_check_alpha(w, "--weight") for w in weights]
    if len(ws) != len(models):
        raise BadInput(f"task-arithmetic got {len(models)} --model but {len(ws)} --weight; "
                       "give one weight per model or none (all 1.0)")
    lam = _check_alpha(lam, "--alpha/--lambda")
    roles = [f"model{i + 1}" for i in range(len(models))]
    if tokenizer_from not in ("base", *roles):
        raise BadInput(f"--tokenizer-from must be one of base, {', '.join(roles)}; "
                       f"got {tokenizer_from!r}")
    return MergeSpec("task-arithmetic", {"base": base, **dict(zip(roles, models))},
                     anchor="base", base="base",
                     deltas=tuple((r, lam * w) for r, w in zip(roles, ws)),
                     tokenizer_from=tokenizer_from, alpha=lam, extra={"weights": ws})


def parse_alphas(text: str) -> list[float]:
    """``"0.5,0.75,1"`` → ``[0.5, 0.75, 1.0]`` (order kept, duplicates dropped)."""
    out: list[float] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            a = _check_alpha(float(part), "--alpha")
        except ValueError:
            raise BadInput(f"--alpha value {part!r} is not a number; give a comma-separated "
                           "list such as 0.5,0.75,1.0") from None
        if a not in out:
            out.append(a)
    if not out:
        raise BadInput("--alpha is empty; give one value or a comma-separated list")
    return out
