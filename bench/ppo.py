"""Time per PPO update: the bundled trainer (rlaif.ppo_trainer) against TRL 1.12.0's PPOTrainer.

TRL 1.13+ no longer ships PPO, so this script installs trl==1.12.0 into its own virtual environment
(``--venv``; it sees this interpreter's packages, torch pinned to the installed version) and runs
TRL's trainer there, on the same tiny random Llama, batch, minibatches, epochs and response length.
Both run in this one invocation, one after the other, on the same number of CPU threads.

    python bench/ppo.py                     # prints settings, both timings; last line is JSON
    python bench/ppo.py --updates 8 --response-length 64

Time per update is the median over updates after the first (warm-up) of the wall time between the
ends of consecutive updates (rollout, scoring, advantages and all minibatch epochs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRL_VERSION = "1.12.0"
PROMPT_WORDS = ["the post says", "which summary", "a friend and a job", "advice about", "short"]


def build_models(directory: Path, hidden: int, layers: int, seed: int) -> None:
    """A tiny byte-level BPE tokenizer, a random Llama policy and a random reward/value model."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
        LlamaForSequenceClassification,
        PreTrainedTokenizerFast,
    )

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<unk>", "<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(PROMPT_WORDS * 10, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
    )
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(directory / "policy")
    config.num_labels = 1
    LlamaForSequenceClassification(config).save_pretrained(directory / "reward")
    for name in ("policy", "reward"):
        tokenizer.save_pretrained(directory / name)


def prompts(n: int) -> list[str]:
    return [f"{PROMPT_WORDS[i % 5]} {PROMPT_WORDS[(i * 3 + 1) % 5]} {i}" for i in range(n)]


def median_update_seconds(ends: list[float], start: float) -> float:
    intervals = [b - a for a, b in zip([start, *ends[:-1]], ends, strict=True)]
    return statistics.median(intervals[1:] if len(intervals) > 1 else intervals)


def run_bundled(directory: Path, args: argparse.Namespace) -> float:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlaif.ppo_config import PPOConfig
    from rlaif.ppo_trainer import PPOTrainer
    from rlaif.rewards import RewardModelScorer, load_reward_model

    torch.set_num_threads(args.threads)
    policy = AutoModelForCausalLM.from_pretrained(directory / "policy")
    tokenizer = AutoTokenizer.from_pretrained(directory / "policy")
    reward = RewardModelScorer(*load_reward_model(directory / "reward"))
    config = PPOConfig(
        batch_size=args.batch_size,
        num_minibatches=args.num_minibatches,
        ppo_epochs=args.ppo_epochs,
        response_length=args.response_length,
        temperature=0.7,
        kl_coef=0.05,
        missing_eos_penalty=1.0,
        learning_rate=3e-6,
        total_updates=args.updates,
        seed=args.seed,
        progress=False,
    )
    trainer = PPOTrainer(config, policy, tokenizer, reward, prompts(4 * args.batch_size))
    start, ends = time.perf_counter(), []
    for _ in range(args.updates):
        trainer.train_step()
        ends.append(time.perf_counter())
    return median_update_seconds(ends, start)


def run_trl(directory: Path, args: argparse.Namespace) -> float:
    """Runs inside the trl==1.12.0 environment."""
    import torch
    from datasets import Dataset
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
        TrainerCallback,
    )
    from trl.experimental.ppo import PPOConfig, PPOTrainer

    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(directory / "policy")
    tokenizer.padding_side = "left"
    policy = AutoModelForCausalLM.from_pretrained(directory / "policy")
    reward = AutoModelForSequenceClassification.from_pretrained(directory / "reward", num_labels=1)
    value = AutoModelForSequenceClassification.from_pretrained(directory / "reward", num_labels=1)
    texts = prompts(4 * args.batch_size)
    dataset = Dataset.from_dict(
        {"input_ids": [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]}
    )
    micro = args.batch_size // args.num_minibatches
    config = PPOConfig(
        output_dir=tempfile.mkdtemp(),
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=args.num_minibatches,
        num_mini_batches=args.num_minibatches,
        num_ppo_epochs=args.ppo_epochs,
        local_rollout_forward_batch_size=args.batch_size,
        total_episodes=args.batch_size * args.updates,
        response_length=args.response_length,
        temperature=0.7,
        kl_coef=0.05,
        missing_eos_penalty=1.0,
        stop_token="eos",
        learning_rate=3e-6,
        num_sample_generations=0,
        gradient_checkpointing=False,
        bf16=False,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        seed=args.seed,
        use_cpu=True,
        dataloader_pin_memory=False,
    )

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.start, self.ends = 0.0, []

        def on_train_begin(self, *_, **__):
            self.start = time.perf_counter()

        def on_step_end(self, *_, **__):
            self.ends.append(time.perf_counter())

    clock = Clock()
    trainer = PPOTrainer(
        args=config,
        processing_class=tokenizer,
        model=policy,
        ref_model=None,
        reward_model=reward,
        value_model=value,
        train_dataset=dataset,
        callbacks=[clock],
    )
    trainer.train()
    if len(clock.ends) != args.updates:
        raise RuntimeError(f"TRL ran {len(clock.ends)} updates, expected {args.updates}")
    return median_update_seconds(clock.ends, clock.start)


def trl_environment(venv: Path) -> Path:
    """A virtual environment with trl==1.12.0 over this interpreter's packages; its python."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", f"import trl, sys; sys.exit(trl.__version__ != '{TRL_VERSION}')"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"installing trl=={TRL_VERSION} into {venv}", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    import torch

    torch_pin = f"torch=={torch.__version__.split('+')[0]}"  # keep the installed build
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"trl=={TRL_VERSION}", torch_pin], check=True
    )
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-minibatches", type=int, default=4)
    parser.add_argument("--ppo-epochs", type=int, default=4)
    parser.add_argument("--response-length", type=int, default=32)
    parser.add_argument("--updates", type=int, default=6)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    parser.add_argument("--venv", type=Path, default=cache / "labelbench" / "venv-trl112")
    parser.add_argument("--worker", choices=["trl"], help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker == "trl":
        print(json.dumps({"seconds_per_update": run_trl(args.model_dir, args)}))
        return

    python = trl_environment(args.venv)
    settings = {
        key: getattr(args, key)
        for key in (
            "batch_size",
            "num_minibatches",
            "ppo_epochs",
            "response_length",
            "updates",
            "hidden",
            "layers",
            "threads",
        )
    }
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        build_models(directory, args.hidden, args.layers, args.seed)
        bundled = run_bundled(directory, args)
        print(f"bundled PPO: {bundled:.3f} s/update", file=sys.stderr)
        worker = [str(python), __file__, "--worker", "trl", "--model-dir", str(directory)]
        worker += [f"--{k.replace('_', '-')}={v}" for k, v in settings.items()]
        worker += [f"--seed={args.seed}"]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        done = subprocess.run(worker, check=True, capture_output=True, text=True, env=env)
        trl = json.loads(done.stdout.strip().splitlines()[-1])["seconds_per_update"]
        print(f"trl {TRL_VERSION} PPOTrainer: {trl:.3f} s/update", file=sys.stderr)
    result = {
        **settings,
        "device": "cpu",
        "bundled_seconds_per_update": round(bundled, 4),
        "trl112_seconds_per_update": round(trl, 4),
        "speedup_vs_trl112": round(trl / bundled, 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
