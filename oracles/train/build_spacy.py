"""Train evalkit's spaCy Bokmål parser (morphologizer + parser, NDT labels) from the mirror.

Usage::

    python -m evalkit.oracles.train.build_spacy [--max-steps 1500] \
        [--out oracles/models/spacy-nb-ndt]

Data: NDT minus every sentence whose token string is a UD Bokmål dev or test sentence (train);
the NDT versions of UD dev sentences (early stopping, first 600). UD test stays held out for
``evalkit oracle validate``. Pipeline: spaCy's "efficiency" CPU config for ``nb`` (hash-embed
tok2vec shared by a morphologizer, which predicts UPOS + the verb features the rule needs, and a
transition parser that predicts NDT functions). Threads are pinned to 1 (2-core machines).
The trained ``model-best`` is copied to ``--out`` without the training config's data paths.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

from evalkit.oracles.train.treebanks import GoldSentence, build_dir, ndt_splits

_NO_SPACE_BEFORE = set(",.:;!?)]}»”'%")
_NO_SPACE_AFTER = set("([{«“")


def _spaces(forms: tuple[str, ...]) -> list[bool]:
    """Guess SpaceAfter (NDT has no raw text): none before closing punctuation, after opening."""
    out = []
    for i, f in enumerate(forms):
        nxt = forms[i + 1] if i + 1 < len(forms) else None
        out.append(nxt is not None and nxt not in _NO_SPACE_BEFORE and f not in _NO_SPACE_AFTER)
    return out


def starts(n: int) -> list[bool | int | None]:
    """spaCy's ``sent_starts`` of one gold sentence of `n` tokens."""
    out: list[bool | int | None] = [True]
    return out + [False] * (n - 1)


def to_docbin(sents: list[GoldSentence], path: Path) -> Path:
    """Write sentences as a spaCy DocBin with POS, morph, heads and NDT labels."""
    import spacy
    from spacy.tokens import Doc, DocBin

    vocab = spacy.blank("nb").vocab
    db = DocBin(store_user_data=False)
    for s in sents:
        heads = [h - 1 if h > 0 else i for i, h in enumerate(s.heads)]
        doc = Doc(vocab, words=list(s.forms), spaces=_spaces(s.forms), pos=list(s.upos),
                  morphs=[f if f != "_" else "" for f in s.feats], heads=heads,
                  deps=[r if h > 0 else "ROOT" for r, h in zip(s.rels, s.heads, strict=True)],
                  sent_starts=starts(len(s.forms)))
        db.add(doc)
    db.to_disk(path)
    return path


def write_config(path: Path, train: Path, dev: Path, max_steps: int, eval_every: int) -> Path:
    """The efficiency config from ``spacy init config``, with our paths and step budget."""
    from spacy.cli.init_config import init_config

    cfg = init_config(lang="nb", pipeline=["morphologizer", "parser"], optimize="efficiency",
                      gpu=False)
    cfg["paths"]["train"] = str(train)
    cfg["paths"]["dev"] = str(dev)
    cfg["training"]["max_steps"] = max_steps
    cfg["training"]["eval_frequency"] = eval_every
    cfg["training"]["patience"] = max_steps
    cfg["training"]["seed"] = 0
    cfg.to_disk(path)
    return path


def main(argv: list[str] | None = None) -> None:
    """Build the DocBins, train, copy ``model-best`` to ``--out`` and write ``train_meta.json``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-steps", type=int, default=1500)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--n-train", type=int, default=0, help="use only the first N (0 = all)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "models"
                    / "spacy-nb-ndt")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from spacy.cli.train import train

    work = build_dir() / "spacy"
    work.mkdir(parents=True, exist_ok=True)
    splits = ndt_splits()
    train_s = splits["train"][: args.n_train or None]
    tr = to_docbin(train_s, work / "train.spacy")
    dv = to_docbin(splits["dev"][:600], work / "dev.spacy")
    cfg = write_config(work / "config.cfg", tr, dv, args.max_steps, args.eval_every)
    t0 = time.time()
    train(cfg, output_path=work / "out", use_gpu=-1)
    secs = time.time() - t0
    best = work / "out" / "model-best"
    if args.out.exists():
        shutil.rmtree(args.out)
    shutil.copytree(best, args.out)
    cfg_text = (args.out / "config.cfg").read_text()
    for key, path in (("train", tr), ("dev", dv)):  # the build machine's paths mean nothing later
        cfg_text = cfg_text.replace(f'{key} = "{path}"', f"{key} = null")
    (args.out / "config.cfg").write_text(cfg_text)
    meta = json.loads((best / "meta.json").read_text())
    (args.out / "train_meta.json").write_text(json.dumps({
        "data": "NDT Bokmål (ndt_nob) minus UD dev/test sentences",
        "n_train_sentences": len(train_s), "n_train_tokens": sum(len(s.forms) for s in train_s),
        "n_dev_sentences": 600, "max_steps": args.max_steps, "train_seconds": round(secs),
        "dev_scores": meta.get("performance", {}),
    }, indent=2))
    print(f"saved {args.out} after {secs:.0f}s")


if __name__ == "__main__":
    main()
