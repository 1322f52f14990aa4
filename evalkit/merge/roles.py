"""Merge recipes by role: which input models a recipe takes, validated before any merge.

`spec_factory` turns the role options of ``evalkit merge`` / ``evalkit sweep`` (or a grid file's
``[[merges]]`` entry) into a function α → `MergeSpec`, refusing missing or unused roles with a
one-line error. Importing it is cheap (no torch).
"""

from __future__ import annotations

from collections.abc import Callable

from evalkit.errors import BadInput
from evalkit.merge.recipes import RECIPES, MergeSpec

_ROLES = {"diploma": ("base", "cpt", "instruct"), "language-vector": ("base", "lang", "instruct"),
          "task-arithmetic": ("base", "model")}


def spec_factory(recipe: str, base: str | None, cpt: str | None, instruct: str | None,
                 lang: str | None, models: list[str], weights: list[float],
                 tokenizer_from: str | None) -> Callable[[float], MergeSpec]:
    """Validate the role options for `recipe`; returns α → MergeSpec."""
    from evalkit.merge import recipes

    if recipe not in RECIPES:
        import difflib

        hint = difflib.get_close_matches(recipe, RECIPES, n=1, cutoff=0.4)
        raise BadInput(f"unknown merge recipe {recipe!r}"
                       + (f"; did you mean {hint[0]}?" if hint else "")
                       + f" (recipes: {', '.join(RECIPES)})")
    given = {"base": base, "cpt": cpt, "instruct": instruct, "lang": lang,
             "model": models or None}
    needed = _ROLES[recipe]
    missing = [r for r in needed if not given[r]]
    if missing:
        raise BadInput(f"{recipe} needs " + ", ".join(f"--{r}" for r in needed)
                       + f"; missing {', '.join('--' + r for r in missing)}")
    extra = [r for r, v in given.items() if v and r not in needed]
    if weights and recipe != "task-arithmetic":
        extra.append("weight")
    if tokenizer_from and recipe != "task-arithmetic":
        extra.append("tokenizer-from")
    if extra:
        raise BadInput(f"{', '.join('--' + r for r in extra)} not used by {recipe} "
                       f"(it takes {', '.join('--' + r for r in needed)})")
    assert base is not None
    if recipe == "diploma":
        assert cpt is not None and instruct is not None
        return lambda a: recipes.diploma(base, cpt, instruct, a)
    if recipe == "language-vector":
        assert lang is not None and instruct is not None
        return lambda a: recipes.language_vector(base, lang, instruct, a)
    recipes.task_arithmetic(base, models, weights, 1.0, tokenizer_from or "base")  # validate now
    return lambda a: recipes.task_arithmetic(base, models, weights, a, tokenizer_from or "base")
