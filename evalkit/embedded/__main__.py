"""``python -m evalkit.embedded``: build the embedded default model by hand (or ship it)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from evalkit.embedded import recipe as R
from evalkit.embedded.build import SHIPPED_DIR, build_default_model, default_model_dir
from evalkit.embedded.train import BuildLog
from evalkit.errors import EvalkitError


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build (and with ``--ship`` install into the package); 2 on user errors."""
    ap = argparse.ArgumentParser(prog="python -m evalkit.embedded",
                                 description="Build evalkit's embedded default model.")
    ap.add_argument("--out", type=Path, default=None,
                    help="output dir (default: the cache dir, $EVALKIT_CACHE/models/default-vN)")
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--steps", type=int, default=R.DEFAULT_STEPS)
    ap.add_argument("--seed", type=int, default=R.DEFAULT_SEED)
    ap.add_argument("--threads", type=int, default=R.DEFAULT_THREADS)
    ap.add_argument("--batch-size", type=int, default=R.BATCH_SIZE)
    ap.add_argument("--lr", type=float, default=R.LEARNING_RATE)
    ap.add_argument("--limit", type=int, default=None, help="cap per data source (testing)")
    ap.add_argument("--force", action="store_true", help="replace an existing output dir")
    ap.add_argument("--ship", action="store_true",
                    help=f"then write the build into the package ({SHIPPED_DIR}) with fp16 "
                    "weights and a manifest of hashes")
    ap.add_argument("--from", dest="from_dir", type=Path, default=None,
                    help="with --ship: ship this existing build instead of building")
    args = ap.parse_args(argv)
    try:
        if args.from_dir is None:
            out = args.out or default_model_dir()
            info = build_default_model(
                out, args.data_dir, steps=args.steps, seed=args.seed, threads=args.threads,
                limit=args.limit, batch_size=args.batch_size, lr=args.lr, overwrite=args.force,
                log=BuildLog(sys.stderr))
            print(json.dumps({k: info[k] for k in ("val", "test", "wall_s", "final_train_loss")},
                             indent=2, ensure_ascii=False))
            print(f"saved to {out}")
        if args.ship:
            from evalkit.embedded.ship import ship

            manifest = ship(args.from_dir or out)
            print(f"shipped to {SHIPPED_DIR} ({len(manifest['files'])} files, weights fp16)")
    except EvalkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
