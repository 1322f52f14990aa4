"""The grammar oracle as a TRL reward function, called directly and inside GRPOTrainer.

    python examples/oracle_reward.py                      # FakeOracle, prints rewards
    python examples/oracle_reward.py --oracle spacy-nob   # evalkit's spaCy parser (NDT)
    python examples/oracle_reward.py --grpo               # + 2 GRPO steps on a tiny model

Offline: the tiny model is built locally (evalkit.testing), nothing is downloaded.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from evalkit.rewards import oracle_reward


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--oracle", default="fake")
    ap.add_argument("--grpo", action="store_true")
    args = ap.parse_args()
    reward = oracle_reward(args.oracle)

    # plain prompts: the completion continues the prompt, judged as prompt + completion
    print(reward(prompts=["Norsk er", "Hunden"],
                 completions=[" et nordgermansk språk.", " hunden hunden"]))
    # conversational: the assistant's message is judged on its own; other languages abstain
    chat = [{"role": "user", "content": "Skriv en setning."}]
    print(reward(prompts=[chat, chat],
                 completions=[[{"role": "assistant", "content": "Jeg liker kaffe."}],
                              [{"role": "assistant", "content": "Kafea gustatzen zait."}]],
                 language=["nob_Latn", "eus_Latn"]))

    if args.grpo:
        import torch
        from datasets import Dataset
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from trl import GRPOConfig, GRPOTrainer

        from evalkit.testing import build_tiny_model

        torch.set_num_threads(2)
        tmp = Path(tempfile.mkdtemp())
        model_dir = build_tiny_model(tmp / "tiny")
        ds = Dataset.from_list([{"prompt": p} for p in ["Norsk er", "Hunden", "Jeg"] * 4])
        cfg = GRPOConfig(output_dir=str(tmp / "grpo"), max_steps=2, per_device_train_batch_size=4,
                         num_generations=4, max_completion_length=16, bf16=False, use_cpu=True,
                         report_to=[], save_strategy="no", learning_rate=1e-4)
        trainer = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(model_dir),
                              reward_funcs=[reward], args=cfg, train_dataset=ds,
                              processing_class=AutoTokenizer.from_pretrained(model_dir))
        trainer.train()
        print("GRPO steps:", trainer.state.global_step)


if __name__ == "__main__":
    main()
