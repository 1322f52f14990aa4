"""`evalkit dpo CONFIG [--force-sft] [--out DIR]`: the Δ-DPO loop as a sub-command.

Importing this module costs typer only; the loop and its heavy libraries load inside the command.
"""

from __future__ import annotations

from pathlib import Path

import typer


def dpo(
    config: Path = typer.Argument(..., help="Loop config (.toml/.yaml/.json); see "
                                  "examples/dpo_small.toml. Unset fields take SAGA's settings."),
    force_sft: bool = typer.Option(False, "--force-sft", help="Run the KL-SFT stage even when "
                                   "base PS ≥ τ (the SFT ablation)."),
    out: Path | None = typer.Option(None, help="Output directory (default runs/dpo/<config "
                                       "name>); rerunning resumes at the unfinished stage."),
) -> None:
    """SAGA Δ-DPO: oracle-scored candidates → preference pairs → LoRA DPO → re-evaluation."""
    from evalkit.dpo.config import load_config
    from evalkit.dpo.loop import run_loop

    cfg = load_config(config)
    out_dir = out or Path("runs") / "dpo" / config.stem
    from evalkit.paths import ensure_writable_dir

    ensure_writable_dir(out_dir)
    typer.echo(f"evalkit dpo: writing to {out_dir}")
    run_loop(cfg, out_dir, force_sft=force_sft, log=typer.echo)
    typer.echo((out_dir / "report.md").read_text(encoding="utf-8"))


def register(app: typer.Typer) -> None:
    """Add the `dpo` command to the evalkit CLI."""
    app.command("dpo")(dpo)
