"""`evalkit oracle ...`: trust reports for the Norwegian grammar oracles.

Importing this module costs typer only; spaCy, Stanza and the data load inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

oracle_app = typer.Typer(no_args_is_help=True, add_completion=False,
                         help="Norwegian grammar oracles (spaCy training oracle, Stanza "
                              "held-out evaluator).")


@oracle_app.command()
def validate(
    oracle: list[str] = typer.Option(["spacy", "stanza"], "--oracle", "-O",
                                     help="spacy | stanza | spacy:<model or dir> | "
                                          "stanza:<dir or nb>; repeat for several."),
    nocola_per_class: int = typer.Option(1000, help="NoCoLA dev sentences per class (0 = all)."),
    n_process: int = typer.Option(1, help="spaCy n_process for the throughput run."),
    seed: int = typer.Option(0, help="Sampling seed (NoCoLA sample)."),
    out: Path | None = typer.Option(None, help="Write raw results as JSON here."),
    benchmarks: Path | None = typer.Option(None, help="Rewrite the '## Norwegian grammar "
                                              "oracles' section of this BENCHMARKS.md."),
    reuse: Path | None = typer.Option(None, help="Earlier --out JSON: oracles already "
                                         "measured there (same model hash) are not re-run."),
) -> None:
    """UAS/LAS, rule agreement (acc, κ), NoCoLA AUROC, cross-oracle agreement, throughput."""
    from evalkit.oracles.validate import render
    from evalkit.oracles.validate import validate as run_validate

    results = run_validate(oracle, nocola_per_class=nocola_per_class, seed=seed,
                           n_process=n_process, out_json=out, benchmarks=benchmarks,
                           reuse=reuse)
    typer.echo(render(results))


@oracle_app.command("judge")
def judge_cmd(
    text: list[str] = typer.Argument(..., help="Texts to judge."),
    oracle: str = typer.Option("spacy", "--oracle", "-O", help="spacy | stanza | ...:<model>."),
) -> None:
    """Judge texts with the well-formedness rule and print one verdict per line (JSON)."""
    from evalkit.oracles.rule import judge
    from evalkit.oracles.validate import load_oracle

    for t, v in zip(text, judge(load_oracle(oracle), text), strict=True):
        typer.echo(json.dumps({"text": t, "passed": v.passed, "failed": v.failed_checks,
                               "q": round(v.q, 4), "reward": round(v.reward, 4),
                               "n_sentences": v.n_sentences}, ensure_ascii=False))


def register(app: typer.Typer) -> None:
    """Mount `evalkit oracle` on the main CLI."""
    app.add_typer(oracle_app, name="oracle")
