"""Train evalkit's Stanza Bokmål tagger + parser (NDT labels, reduced dimensions) from the mirror.

Usage::

    python -m evalkit.oracles.train.build_stanza [--tagger-steps 1000] [--parser-steps 5000]

Same data as the spaCy build (NDT minus UD dev/test for training; the NDT versions of the first
600 UD dev sentences for model selection), written as CoNLL-U with UPOS/FEATS mapped from NDT
(:func:`evalkit.oracles.base.ndt_upos`, :func:`~evalkit.oracles.base.ndt_feats_to_ud`) and NDT
functions as DEPREL. No pretrained word vectors (``--no_pretrain``) and no charlm: nothing to
download, and no character model (`--no_char`: the default 400-dim char LSTM made a tagger
step 4-17x slower on 2 cores; a 64-dim one ~2.5x, reaching dev 88.1 in 300 steps where the
word-only tagger needs 1,000 steps for 88.4 -- a third less training time, but every parse would
then run the char LSTM too). Dimensions are reduced so that both models train in minutes on one
CPU thread (``torch.set_num_threads(1)``). Stanza's own tokenizer is not trained: the oracle feeds
it pre-tokenized text (``tokenize_pretokenized=True``) from evalkit's rule-based tokenizer.

Stanza's parser resumes from ``parser_checkpoint.pt`` in the build directory when one exists,
so a second call with more ``--parser-steps`` continues training (the shipped parser was made
that way: see its MODEL_CARD.md); delete the checkpoint for a run from scratch.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from evalkit.oracles.train.treebanks import build_dir, ndt_splits, to_conllu

# --share_hid: linear XPOS/FEATS heads off the UPOS hidden layer. Without it every FEATS
# category gets an nn.Bilinear head whose CPU backward (aten::_trilinear) made a step 3-4x slower
TAGGER_DIMS = ["--share_hid", "--hidden_dim", "128", "--no_char", "--word_emb_dim", "64",
               "--deep_biaff_hidden_dim", "128", "--composite_deep_biaff_hidden_dim", "64",
               "--transformed_dim", "64", "--num_layers", "2", "--tag_emb_dim", "32"]
PARSER_DIMS = ["--hidden_dim", "96", "--no_char", "--word_emb_dim", "48",
               "--deep_biaff_hidden_dim", "96", "--deep_biaff_output_dim", "64",
               "--transformed_dim", "32", "--num_layers", "1", "--tag_emb_dim", "16"]


def main(argv: list[str] | None = None) -> None:
    """Write CoNLL-U splits, train the tagger then the parser, copy both to ``--out``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tagger-steps", type=int, default=1000)
    ap.add_argument("--parser-steps", type=int, default=5000)
    ap.add_argument("--tagger-batch", type=int, default=500,
                    help="sentences per tagger batch (Stanza's tagger batches sentences)")
    ap.add_argument("--parser-batch", type=int, default=2000, help="words per parser batch")
    ap.add_argument("--n-train", type=int, default=0, help="use only the first N (0 = all)")
    ap.add_argument("--only", choices=["tagger", "parser"], default=None)
    ap.add_argument("--conllu-dir", type=Path, default=None,
                    help="use train.conllu/dev.conllu written earlier (e.g. on a machine without "
                         "the mirror) instead of converting NDT now")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "models"
                    / "stanza-nb-ndt")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from stanza.models import parser as stanza_parser
    from stanza.models import tagger as stanza_tagger

    work = build_dir() / "stanza"
    work.mkdir(parents=True, exist_ok=True)
    if args.conllu_dir is not None:
        train, dev = args.conllu_dir / "train.conllu", args.conllu_dir / "dev.conllu"
        n_sents = train.read_text(encoding="utf-8").count("# sent_id")
        n_toks = sum(1 for ln in train.open(encoding="utf-8") if ln[:1].isdigit())
    else:
        splits = ndt_splits()
        train_s = splits["train"][: args.n_train or None]
        train = to_conllu(train_s, work / "train.conllu")
        dev = to_conllu(splits["dev"][:600], work / "dev.conllu")
        n_sents, n_toks = len(train_s), sum(len(s.forms) for s in train_s)
    common = ["--train_file", str(train), "--eval_file", str(dev), "--lang", "nb",
              "--shorthand", "nb_ndt", "--no_pretrain", "--mode", "train", "--seed", "0"]
    timings = {}
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "tagger"):
        t0 = time.time()
        stanza_tagger.main([*common, *TAGGER_DIMS, "--output_file", str(work / "dev.pos.conllu"),
                            "--save_dir", str(work), "--save_name", "tagger.pt",
                            "--max_steps", str(args.tagger_steps),
                            "--eval_interval", str(min(100, args.tagger_steps)),
                            "--batch_size", str(args.tagger_batch), "--log_step", "10"])
        timings["tagger_seconds"] = round(time.time() - t0)
        shutil.copy(work / "tagger.pt", args.out / "tagger.pt")
    if args.only in (None, "parser"):
        t0 = time.time()
        stanza_parser.main([*common, *PARSER_DIMS, "--output_file",
                            str(work / "dev.parse.conllu"), "--save_dir", str(work),
                            "--save_name", "parser.pt", "--max_steps", str(args.parser_steps),
                            "--eval_interval", str(min(100, args.parser_steps)),
                            "--batch_size", str(args.parser_batch), "--log_step", "10"])
        timings["parser_seconds"] = round(time.time() - t0)
        shutil.copy(work / "parser.pt", args.out / "parser.pt")
    meta_path = args.out / "train_meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    meta.update({
        "data": "NDT Bokmål (ndt_nob) minus UD dev/test sentences",
        "n_train_sentences": n_sents, "n_train_tokens": n_toks,
        "n_dev_sentences": 600, "tagger_steps": args.tagger_steps,
        "parser_steps": args.parser_steps, "tagger_batch_sentences": args.tagger_batch,
        "parser_batch_words": args.parser_batch, "tagger_dims": TAGGER_DIMS,
        "parser_dims": PARSER_DIMS, **timings,
    })
    meta_path.write_text(json.dumps(meta, indent=2))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
