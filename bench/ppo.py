"""Time per PPO update: the bundled trainer (rlaif.ppo_trainer) against TRL 1.12.0's PPOTrainer.

TRL 1.13+ no longer ships PPO, so this script installs trl==1.12.0 into its own virtual environment
(``--venv``; it sees this interpreter's packages, torch pinned to the installed version) and runs
TRL's trainer there, on the same tiny random Llama, batch, minibatches, epochs and response length.
Both run in this one invocation, one after the other, on the same number of CPU threads. The
bundled trainer runs in float32 and again under bfloat16 autocast (``--precisions``).

    python bench/ppo.py                     # prints settings, the timings; last line is JSON
    python bench/ppo.py --total-updates 8 --response-length 64

The PPO settings are ``rlaif.ppo_config.PPOConfig``'s fields (same names as ``rlaif ppo``), with
this bench's defaults; the TRL run is given the same values.

Time per update is the median over updates after the first (warm-up) of the wall time between the
ends of consecutive updates (rollout, scoring, advantages and all minibatch epochs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rlaif.options import add_arguments, from_arguments
from rlaif.ppo_config import PPOConfig

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


def run_bundled(directory: Path, config: PPOConfig, threads: int) -> float:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlaif.ppo_trainer import PPOTrainer
    from rlaif.rewards import RewardModelScorer, load_reward_model

    torch.set_num_threads(threads)
    policy = AutoModelForCausalLM.from_pretrained(directory / "policy")
    tokenizer = AutoTokenizer.from_pretrained(directory / "policy")
    reward = RewardModelScorer(*load_reward_model(directory / "reward"))
    trainer = PPOTrainer(config, policy, tokenizer, reward, prompts(4 * config.batch_size))
    start, ends = time.perf_counter(), []
    for _ in range(config.total_updates):
        trainer.train_step()
        ends.append(time.perf_counter())
    return median_update_seconds(ends, start)


def run_trl(directory: Path, ppo: PPOConfig, threads: int) -> float:
    """Runs inside the trl==1.12.0 environment, with the bundled run's settings."""
    import torch
    from datasets import Dataset
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
        TrainerCallback,
    )
    from trl.experimental.ppo import PPOConfig as TRLPPOConfig
    from trl.experimental.ppo import PPOTrainer

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(directory / "policy")
    tokenizer.padding_side = "left"
    policy = AutoModelForCausalLM.from_pretrained(directory / "policy")
    reward = AutoModelForSequenceClassification.from_pretrained(directory / "reward", num_labels=1)
    value = AutoModelForSequenceClassification.from_pretrained(directory / "reward", num_labels=1)
    texts = prompts(4 * ppo.batch_size)
    dataset = Dataset.from_dict(
        {"input_ids": [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]}
    )
    config = TRLPPOConfig(
        output_dir=tempfile.mkdtemp(),
        per_device_train_batch_size=ppo.minibatch_size,
        gradient_accumulation_steps=ppo.num_minibatches,
        num_mini_batches=ppo.num_minibatches,
        num_ppo_epochs=ppo.ppo_epochs,
        local_rollout_forward_batch_size=ppo.batch_size,
        total_episodes=ppo.batch_size * ppo.total_updates,
        response_length=ppo.response_length,
        temperature=ppo.temperature,
        kl_coef=ppo.kl_coef,
        kl_estimator=ppo.kl_estimator,
        missing_eos_penalty=ppo.missing_eos_penalty or None,
        stop_token="eos",
        learning_rate=ppo.learning_rate,
        gamma=ppo.gamma,
        lam=ppo.lam,
        cliprange=ppo.cliprange,
        cliprange_value=ppo.cliprange_value,
        vf_coef=ppo.vf_coef,
        max_grad_norm=ppo.max_grad_norm,
        whiten_rewards=False,
        num_sample_generations=0,
        gradient_checkpointing=False,
        bf16=False,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        seed=ppo.seed,
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
    if len(clock.ends) != ppo.total_updates:
        raise RuntimeError(f"TRL ran {len(clock.ends)} updates, expected {ppo.total_updates}")
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


BENCH_DEFAULTS = dict(
    response_length=32,
    total_updates=6,
    temperature=0.7,
    kl_coef=0.05,
    missing_eos_penalty=1.0,
    learning_rate=3e-6,
    progress=False,
)
"""This bench's PPO settings where they differ from PPOConfig's defaults."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, PPOConfig, BENCH_DEFAULTS)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--precisions", default="float32,bfloat16", help="Bundled runs, comma-separated."
    )
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    parser.add_argument("--venv", type=Path, default=cache / "labelbench" / "venv-trl112")
    parser.add_argument("--worker", choices=["trl"], help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    config = from_arguments(PPOConfig, args)

    if args.worker == "trl":
        print(json.dumps({"seconds_per_update": run_trl(args.model_dir, config, args.threads)}))
        return

    python = trl_environment(args.venv)
    settings = {
        **{k: getattr(config, k) for k in ("batch_size", "num_minibatches", "ppo_epochs")},
        "response_length": config.response_length,
        "updates": config.total_updates,
        **{k: getattr(args, k) for k in ("hidden", "layers", "threads")},
    }
    bundled: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        build_models(directory, args.hidden, args.layers, config.seed)
        for precision in args.precisions.split(","):
            run_config = dataclasses.replace(config, precision=precision)
            bundled[precision] = run_bundled(directory, run_config, args.threads)
            print(f"bundled PPO, {precision}: {bundled[precision]:.3f} s/update", file=sys.stderr)
        worker = [str(python), __file__, "--worker", "trl", "--model-dir", str(directory)]
        worker += [f"--threads={args.threads}"]
        for key, value in config.to_dict().items():
            flag = key.replace("_", "-")
            boolean = f"--{'' if value else 'no-'}{flag}"
            worker.append(boolean if isinstance(value, bool) else f"--{flag}={value}")
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        done = subprocess.run(worker, check=True, capture_output=True, text=True, env=env)
        trl = json.loads(done.stdout.strip().splitlines()[-1])["seconds_per_update"]
        print(f"trl {TRL_VERSION} PPOTrainer: {trl:.3f} s/update", file=sys.stderr)
    reference = bundled.get("float32", next(iter(bundled.values())))
    result = {
        **settings,
        "device": "cpu",
        "bundled_seconds_per_update": round(reference, 4),
        **{
            f"bundled_{precision}_seconds_per_update": round(seconds, 4)
            for precision, seconds in bundled.items()
        },
        "trl112_seconds_per_update": round(trl, 4),
        "speedup_vs_trl112": round(trl / reference, 3),
    }
    if "float32" in bundled and "bfloat16" in bundled:
        result["bf16_speedup"] = round(bundled["float32"] / bundled["bfloat16"], 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
