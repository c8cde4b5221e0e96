"""Time per PPO update: the bundled trainer (rlaif.ppo_trainer) against TRL 1.12.0's PPOTrainer.

TRL 1.13+ no longer ships PPO, so this script installs trl==1.12.0 into its own virtual environment
(``--venv``; it sees this interpreter's packages, torch pinned to the installed version) and runs
TRL's trainer there, with the same models, prompts, batch, minibatches, epochs and response length.
Both run in this one invocation, one after the other, on the same number of CPU threads, each
trainer (and each bundled precision) in its own worker process, so each peak memory figure (the
worker's RSS high-water mark, ``ru_maxrss``) is that trainer's alone.

Two modes:

- tiny (default, used in CI): a random two-layer Llama (``--hidden``, ``--layers``) with a 512-token
  vocabulary and made-up prompts; the bundled trainer runs in float32 and again under bfloat16
  autocast (``--precisions``).
- real scale (``--model NAME``, any registry name or model directory): the policy is the model as
  ``labelbench.models.registry.load_model`` loads it; the reward model and the value model are the
  same weights as a sequence-classification model with one output whose head is drawn from
  ``--seed`` (saved once, read by both trainers). The prompts are TL;DR posts of
  ``openai_tldr_comparisons/batch13.json`` (first posts in data order whose summarisation prompt,
  ``rlaif.preferences.policy_prompt``, has at least ``--max-prompt-tokens`` tokens), each cut to its
  last ``--max-prompt-tokens`` tokens (default 256), so every prompt is about that long.
  Defaults: 48-token responses, batch 16, 4 minibatches, 2 PPO epochs, 3 updates, in the
  precision ``rlaif ppo`` trains in by default on this machine (``PPOConfig``'s ``auto``:
  bfloat16 autocast where the device multiplies bfloat16 in hardware, else float32); TRL runs
  the same precision (its ``bf16=True`` is accelerate's bfloat16 autocast).

The headline figures (``speedup_vs_trl112``, ``fraction_of_limit``, ``headline_precision``) are
those of that default precision when both trainers ran it, else of float32
(``headline_precision``); every precision run has its own ``speedup_vs_trl112_<precision>`` and
``fraction_of_limit_<precision>``.

    python bench/ppo.py                     # prints settings, the timings; last line is JSON
    python bench/ppo.py --total-updates 8 --response-length 64
    OMP_NUM_THREADS=1 python bench/ppo.py --model smollm2-135m --total-updates 3

The PPO settings are ``rlaif.ppo_config.PPOConfig``'s fields (same names as ``rlaif ppo``), with
this bench's defaults for the mode; the TRL run is given the same values.

Time per update is the median over updates after the first (warm-up) of the wall time between the
ends of consecutive updates (rollout, scoring, advantages and all minibatch epochs). The same is
measured in CPU time of the worker process (``*_cpu_seconds_per_update``,
``speedup_vs_trl112_cpu_time``, ``fraction_of_limit_cpu_time``): with one thread it is the time
the trainer computed, so on a shared machine, where one trainer may get less of a core than the
other (other jobs, a lower priority), it is the fair comparison; the wall-time figures are the
headline on an idle machine.

``fraction_of_limit`` (real scale): the FLOP floor of one bundled update over its time, where,
with N = non-embedding parameters of the policy, E = parameters of its output layer, B = batch
size, P = mean prompt tokens, R = mean response tokens (up to and including EOS, as the bundled
run sampled them) and T = P + R::

    generation = 2 * B * (N * (P + R - 1) + E * R)     prefill, then one token at a time
    scoring    = 4 * 2 * N * B * T                     policy, reference, value, reward forwards
    training   = ppo_epochs * 2 * 3 * 2 * N * B * T    forward + backward of policy and value
    floor_s    = (generation + scoring + training) / matmul_rate

``matmul_rate`` is the FLOP/s of ``F.linear`` in the run's precision (float32, or bfloat16 for
a bfloat16 run) on the model's MLP shape (512 tokens x hidden -> intermediate),
``bench/labeling.py``'s ``matmul_flops``, measured in this run before and after each trainer and
averaged. The floor leaves out attention, the output layer outside
generation, the optimizer and padding, so it is a lower bound on the work.

Memory (bundled, real scale): ``bundled_setup_rss_mib`` is the worker's RSS once the trainer is
built, and ``bundled_state_floor_mib`` what an update cannot hold less of (``state_floor_bytes``:
weights, gradients and AdamW's two moments of policy and value model, weights of the reference
policy and reward model), beside the peak RSS of each trainer.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


# ---------------------------------------------------------------------------------------------
# Real scale: a registry model, a reward/value model from its weights, TL;DR prompts.


@dataclass(frozen=True)
class ModelShape:
    """What the FLOP floor needs of a causal LM: parameter counts and its MLP shape."""

    non_embedding_parameters: int
    output_layer_parameters: int
    hidden_size: int
    intermediate_size: int


def model_shape(model: Any) -> ModelShape:
    """``model``'s parameters outside the input/output embeddings, its output layer's size
    (vocabulary x hidden, tied to the input embedding or not) and its MLP shape."""
    from labeling import non_embedding_parameters

    config = model.config.get_text_config(decoder=True)
    return ModelShape(
        non_embedding_parameters=non_embedding_parameters(model),
        output_layer_parameters=model.get_output_embeddings().weight.numel(),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
    )


@dataclass(frozen=True)
class FlopFloor:
    """FLOPs one PPO update cannot do without (see the module docstring), by phase."""

    generation: float
    scoring: float
    training: float

    @property
    def total(self) -> float:
        return self.generation + self.scoring + self.training


def flop_floor(
    shape: ModelShape,
    batch_size: int,
    prompt_tokens: float,
    response_tokens: float,
    ppo_epochs: int,
) -> FlopFloor:
    """The FLOP floor of one update: ``batch_size`` prompts of ``prompt_tokens`` tokens (mean),
    responses of ``response_tokens`` tokens (mean), ``ppo_epochs`` passes; a forward pass is
    2 x parameters x tokens, a forward and backward pass 3 forwards. Raises ValueError when a
    count is below 1."""
    if min(batch_size, prompt_tokens, response_tokens, ppo_epochs) < 1:
        raise ValueError("a PPO update needs a batch, prompt and response tokens and an epoch")
    n, e = shape.non_embedding_parameters, shape.output_layer_parameters
    forward = 2 * n * batch_size * (prompt_tokens + response_tokens)
    generation = 2 * batch_size * (n * (prompt_tokens + response_tokens - 1) + e * response_tokens)
    return FlopFloor(
        generation=generation,
        scoring=4 * forward,  # policy, reference, value, reward
        training=ppo_epochs * 2 * 3 * forward,  # policy and value, forward + backward
    )


def tldr_prompts(comparisons: Sequence[Any], tokenizer: Any, budget: int, count: int) -> list[str]:
    """Summarisation prompts (``rlaif.label.policy_prompt``) of the first ``count`` distinct posts,
    in data order, whose prompt has at least ``budget`` tokens, each cut to its last ``budget``
    tokens (``rlaif.preferences.truncate_prompts``: the "TL;DR:" ending is kept). Raises
    InputError when fewer posts are that long."""
    from labelbench.errors import InputError
    from rlaif.preferences import policy_prompt, truncate_prompts

    seen: set[str] = set()
    chosen: list[str] = []
    for item in comparisons:
        if item.group_id in seen:
            continue
        seen.add(item.group_id)
        text = policy_prompt(item.task, item.context, item.meta)
        if len(tokenizer(text, add_special_tokens=False)["input_ids"]) >= budget:
            chosen.append(text)
        if len(chosen) == count:
            return truncate_prompts(chosen, tokenizer, budget)
    raise InputError(
        "prompts", f"only {len(chosen)} posts have {budget} prompt tokens or more; {count} needed"
    )


def build_reward_model(model_dir: Path, tokenizer: Any, seed: int, out: Path) -> None:
    """The model at ``model_dir`` as a one-output sequence classifier whose head is drawn
    (normal, the model's ``initializer_range``) from ``seed``; saved with ``tokenizer`` to
    ``out``, so both trainers read the same reward and value model."""
    import torch
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the score head is new, as intended: no warning about it
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=1, dtype=torch.float32, use_safetensors=True
    )
    hf_logging.set_verbosity(verbosity)
    std = getattr(model.config.get_text_config(), "initializer_range", 0.02)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.score.weight.copy_(torch.randn(model.score.weight.shape, generator=generator) * std)
        if model.score.bias is not None:
            model.score.bias.zero_()
    model.config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


# ---------------------------------------------------------------------------------------------
# The two trainers, each run in a worker process.


@dataclass(frozen=True)
class WorkerResult:
    """One trainer's figures, as its worker prints them (one JSON line)."""

    seconds_per_update: float
    update_seconds: list[float]
    peak_rss_mib: float
    cpu_seconds_per_update: float
    update_cpu_seconds: list[float]
    mean_response_tokens: float | None = None
    setup_rss_mib: float | None = None  # bundled: RSS with the trainer built, before updating
    state_floor_mib: float | None = None  # bundled: ``state_floor_bytes``


class UpdateClock:
    """Wall and CPU (``time.process_time``: this process, all its threads) time at the start and
    at the end of each update."""

    def __init__(self) -> None:
        self.start = self.start_cpu = 0.0
        self.ends: list[float] = []
        self.cpu_ends: list[float] = []

    def begin(self) -> None:
        self.start, self.start_cpu = time.perf_counter(), time.process_time()

    def tick(self) -> None:
        self.ends.append(time.perf_counter())
        self.cpu_ends.append(time.process_time())

    def result(self, mean_response_tokens: float | None = None, **memory: float) -> WorkerResult:
        return WorkerResult(
            seconds_per_update=median_update_seconds(self.ends, self.start),
            update_seconds=update_intervals(self.ends, self.start),
            peak_rss_mib=peak_rss_mib(),
            cpu_seconds_per_update=median_update_seconds(self.cpu_ends, self.start_cpu),
            update_cpu_seconds=update_intervals(self.cpu_ends, self.start_cpu),
            mean_response_tokens=mean_response_tokens,
            **memory,
        )


def peak_rss_mib() -> float:
    """This process's resident-set high-water mark (Linux reports KiB), in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    """This process's resident set now, in MiB (Linux ``/proc/self/statm``)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def state_floor_bytes(trained: Sequence[Any], frozen: Sequence[Any]) -> int:
    """Bytes a PPO update cannot hold less of: the weights, gradients and AdamW's two moments
    (each the parameter's size and dtype) of the ``trained`` modules (policy and value model),
    and the weights of the ``frozen`` ones (reference policy, reward model). Activations, the
    rollout and the runtime come on top."""

    def size(modules: Sequence[Any]) -> int:
        return sum(p.numel() * p.element_size() for m in modules for p in m.parameters())

    return 4 * size(trained) + size(frozen)


def update_intervals(ends: list[float], start: float) -> list[float]:
    return [b - a for a, b in zip([start, *ends[:-1]], ends, strict=True)]


def median_update_seconds(ends: list[float], start: float) -> float:
    intervals = update_intervals(ends, start)
    return statistics.median(intervals[1:] if len(intervals) > 1 else intervals)


def run_bundled(
    policy_path: str, reward_dir: Path, texts: list[str], config: PPOConfig, threads: int
) -> WorkerResult:
    import torch

    from labelbench.models.registry import load_model
    from rlaif.ppo_trainer import PPOTrainer, ValueModel
    from rlaif.reward_scoring import RewardModelScorer, load_reward_model

    torch.set_num_threads(threads)
    loaded = load_model(policy_path)
    policy, tokenizer = loaded.model, loaded.tokenizer
    reward = RewardModelScorer(*load_reward_model(reward_dir))
    value = None
    if config.value_from_reward_model:
        value = ValueModel.from_reward_model(reward.model, policy)
    trainer = PPOTrainer(config, policy, tokenizer, reward, texts, value_model=value)
    memory = {
        "setup_rss_mib": rss_mib(),
        "state_floor_mib": state_floor_bytes([trainer.model], [trainer.ref_policy, reward.model])
        / 2**20,
    }
    clock, lengths = UpdateClock(), []
    clock.begin()
    for _ in range(config.total_updates):
        lengths.append(trainer.train_step()["response_length"])
        clock.tick()
    timed = lengths[1:] or lengths
    return clock.result(mean_response_tokens=sum(timed) / len(timed), **memory)


def run_trl(
    policy_path: str, reward_dir: Path, texts: list[str], ppo: PPOConfig, threads: int
) -> WorkerResult:
    """Runs inside the trl==1.12.0 environment, with the bundled run's settings."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, TrainerCallback
    from trl.experimental.ppo import PPOConfig as TRLPPOConfig
    from trl.experimental.ppo import PPOTrainer

    from labelbench.models.registry import load_model

    torch.set_num_threads(threads)
    loaded = load_model(policy_path)
    policy, tokenizer = loaded.model, loaded.tokenizer
    tokenizer.padding_side = "left"
    reward = AutoModelForSequenceClassification.from_pretrained(reward_dir, num_labels=1)
    value = AutoModelForSequenceClassification.from_pretrained(reward_dir, num_labels=1)
    keep = ppo.max_prompt_tokens  # the bundled trainer keeps a prompt's last tokens too
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"][-keep:] for t in texts]
    dataset = Dataset.from_dict({"input_ids": ids})
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
        bf16=ppo.precision == "bfloat16",  # accelerate's bfloat16 autocast
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        seed=ppo.seed,
        use_cpu=True,
        dataloader_pin_memory=False,
    )

    class Clock(TrainerCallback, UpdateClock):
        def __init__(self) -> None:
            UpdateClock.__init__(self)

        def on_train_begin(self, *_, **__):
            self.begin()

        def on_step_end(self, *_, **__):
            self.tick()

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
    return clock.result()


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


@dataclass(frozen=True)
class Workload:
    """What both trainers read: the policy (a path for ``load_model``), the reward/value model's
    directory and a JSON file of prompt texts."""

    policy: str
    reward_dir: Path
    prompts_file: Path


def run_worker(
    python: Path | str, kind: str, work: Workload, config: PPOConfig, threads: int
) -> WorkerResult:
    """One trainer (``kind``: bundled or trl) in a fresh process of ``python``; its figures from
    the worker's last line of output. Raises RuntimeError (with its stderr's end) if it fails."""
    worker = [str(python), __file__, "--worker", kind, f"--worker-policy={work.policy}"]
    worker += [f"--worker-reward={work.reward_dir}", f"--worker-prompts={work.prompts_file}"]
    worker += [f"--threads={threads}"]
    for key, value in config.to_dict().items():
        flag = key.replace("_", "-")
        boolean = f"--{'' if value else 'no-'}{flag}"
        worker.append(boolean if isinstance(value, bool) else f"--{flag}={value}")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(worker, capture_output=True, text=True, env=env)
    if done.returncode:
        sys.stderr.write(done.stderr[-4000:])
        raise RuntimeError(f"the {kind} worker failed (exit {done.returncode})")
    return WorkerResult(**json.loads(done.stdout.strip().splitlines()[-1]))


BENCH_DEFAULTS = dict(
    response_length=32,
    total_updates=6,
    temperature=0.7,
    kl_coef=0.05,
    missing_eos_penalty=1.0,
    learning_rate=3e-6,
    progress=False,
)
"""This bench's PPO settings where they differ from PPOConfig's defaults (tiny mode)."""

MODEL_DEFAULTS = dict(
    BENCH_DEFAULTS,
    response_length=48,
    batch_size=16,
    num_minibatches=4,
    ppo_epochs=2,
    total_updates=3,
    max_prompt_tokens=256,
    value_from_reward_model=True,
)
"""Real-scale (``--model``) settings: issue 15's 48-token responses, batch 16, 4 minibatches,
2 epochs and prompts of about 256 tokens; the value model starts from the reward model (TRL's
rule)."""


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def load_average() -> list[float]:
    """1-, 5- and 15-minute load averages of the machine."""
    return [round(x, 2) for x in os.getloadavg()]


def _model_option(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--model",
        default=None,
        help="Real scale: a registry name or model directory (default: a tiny random Llama).",
    )
    return parser


def _prepare_real(
    spec: str, config: PPOConfig, directory: Path
) -> tuple[Workload, ModelShape, list[int]]:
    """The workload of a real-scale run (the reward/value model and the prompts written to
    ``directory``), the policy's shape and each prompt's token count."""
    from labeling import TLDR

    from labelbench.data import load_comparisons
    from labelbench.models.registry import load_model

    loaded = load_model(spec)
    shape, tokenizer, path = model_shape(loaded.model), loaded.tokenizer, loaded.path
    del loaded  # the workers load their own copies
    build_reward_model(path, tokenizer, config.seed, directory / "reward")
    budget = config.max_prompt_tokens
    texts = tldr_prompts(load_comparisons(TLDR), tokenizer, budget, 4 * config.batch_size)
    prompts_file = directory / "prompts.json"
    prompts_file.write_text(json.dumps(texts), encoding="utf-8")
    counts = prompt_token_counts(texts, tokenizer, budget)
    return Workload(str(path), directory / "reward", prompts_file), shape, counts


def prompt_token_counts(texts: Sequence[str], tokenizer: Any, limit: int) -> list[int]:
    """Tokens of each prompt as the trainers read it (at most ``limit``, its last ones)."""
    return [min(len(tokenizer(t, add_special_tokens=False)["input_ids"]), limit) for t in texts]


def headline_precision(bundled: Sequence[str], trl: Sequence[str], default: str) -> str:
    """The precision of the headline figures (``speedup_vs_trl112``, ``fraction_of_limit``):
    ``default`` (what ``rlaif ppo`` trains in by default on this machine) when both trainers ran
    it, else float32 when both ran it, else the first precision both ran.

    Raises ValueError when the two ran no precision in common."""
    common = [p for p in bundled if p in trl]
    if not common:
        raise ValueError("the two trainers ran no precision in common")
    return next(p for p in (default, "float32", *common) if p in common)


def main() -> None:
    known, _ = _model_option(argparse.ArgumentParser(add_help=False)).parse_known_args()
    real = known.model is not None
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, PPOConfig, MODEL_DEFAULTS if real else BENCH_DEFAULTS)
    _model_option(parser)
    parser.add_argument("--hidden", type=int, default=64, help="Tiny mode: hidden size.")
    parser.add_argument("--layers", type=int, default=2, help="Tiny mode: layers.")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--precisions",
        default=PPOConfig().precision if real else "float32,bfloat16",
        help="Bundled runs, comma-separated (real scale: the precision rlaif ppo trains in by "
        "default here, PPOConfig's auto).",
    )
    parser.add_argument(
        "--trl-precisions",
        default="float32,bfloat16",
        help="Which of --precisions TRL runs too (its bf16=True: accelerate's autocast).",
    )
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    parser.add_argument("--venv", type=Path, default=cache / "labelbench" / "venv-trl112")
    parser.add_argument("--worker", choices=["trl", "bundled"], help=argparse.SUPPRESS)
    parser.add_argument("--worker-policy", help=argparse.SUPPRESS)
    parser.add_argument("--worker-reward", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--worker-prompts", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    config = from_arguments(PPOConfig, args)

    if args.worker:
        texts = json.loads(args.worker_prompts.read_text(encoding="utf-8"))
        run = run_trl if args.worker == "trl" else run_bundled
        result = run(args.worker_policy, args.worker_reward, texts, config, args.threads)
        print(json.dumps(dataclasses.asdict(result)))
        return

    import torch

    torch.set_num_threads(args.threads)
    load_at_start = load_average()
    python = trl_environment(args.venv)
    settings: dict[str, Any] = {
        **{k: getattr(config, k) for k in ("batch_size", "num_minibatches", "ppo_epochs")},
        "response_length": config.response_length,
        "updates": config.total_updates,
    }
    settings |= {"model": args.model} if real else {"hidden": args.hidden, "layers": args.layers}
    settings["threads"] = args.threads
    bundled: dict[str, WorkerResult] = {}
    rates: list[float] = []
    bf16_rates: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        if real:
            work, shape, counts = _prepare_real(args.model, config, directory)
            prompt_tokens = sum(counts) / len(counts)
            settings |= {
                "prompts": len(counts),
                "prompt_tokens_mean": round(prompt_tokens, 2),
                "prompt_tokens_range": [min(counts), max(counts)],
            }
        else:
            build_models(directory, args.hidden, args.layers, config.seed)
            work = Workload(
                str(directory / "policy"), directory / "reward", directory / "prompts.json"
            )
            work.prompts_file.write_text(json.dumps(prompts(4 * config.batch_size)), "utf-8")
        print(json.dumps(settings), file=sys.stderr)

        def measure_rate() -> None:
            if real:
                from labeling import matmul_flops

                shape_args = (shape.hidden_size, shape.intermediate_size)
                rates.append(matmul_flops(*shape_args, torch.float32))
                bf16_rates.append(matmul_flops(*shape_args, torch.bfloat16))

        measure_rate()
        trl: dict[str, WorkerResult] = {}
        for precision in args.precisions.split(","):
            run_config = dataclasses.replace(config, precision=precision)
            bundled[precision] = run_worker(
                sys.executable, "bundled", work, run_config, args.threads
            )
            measure_rate()
            seconds = bundled[precision].seconds_per_update
            print(f"bundled PPO, {precision}: {seconds:.3f} s/update", file=sys.stderr)
            if precision in args.trl_precisions.split(","):
                trl[precision] = run_worker(python, "trl", work, run_config, args.threads)
                measure_rate()
                seconds = trl[precision].seconds_per_update
                print(
                    f"trl {TRL_VERSION} PPOTrainer, {precision}: {seconds:.3f} s/update",
                    file=sys.stderr,
                )
    if not trl:
        raise SystemExit("--trl-precisions names none of --precisions: nothing to compare")
    headline = headline_precision(list(bundled), list(trl), PPOConfig().precision)
    reference, trl_reference = bundled[headline], trl[headline]
    result: dict[str, Any] = {
        **settings,
        "device": "cpu",
        "headline_precision": headline,
        "bundled_seconds_per_update": round(reference.seconds_per_update, 4),
        **{
            f"bundled_{precision}_seconds_per_update": round(run.seconds_per_update, 4)
            for precision, run in bundled.items()
        },
        "trl112_seconds_per_update": round(trl_reference.seconds_per_update, 4),
        **{
            f"trl112_{precision}_seconds_per_update": round(run.seconds_per_update, 4)
            for precision, run in trl.items()
        },
        "speedup_vs_trl112": round(
            trl_reference.seconds_per_update / reference.seconds_per_update, 3
        ),
        **{
            f"speedup_vs_trl112_{precision}": round(
                run.seconds_per_update / bundled[precision].seconds_per_update, 3
            )
            for precision, run in trl.items()
        },
        "bundled_cpu_seconds_per_update": round(reference.cpu_seconds_per_update, 4),
        "trl112_cpu_seconds_per_update": round(trl_reference.cpu_seconds_per_update, 4),
        "speedup_vs_trl112_cpu_time": round(
            trl_reference.cpu_seconds_per_update / reference.cpu_seconds_per_update, 3
        ),
    }
    if "float32" in bundled and "bfloat16" in bundled:
        result["bf16_speedup"] = round(
            bundled["float32"].seconds_per_update / bundled["bfloat16"].seconds_per_update, 3
        )
    if "float32" in trl and "bfloat16" in trl:
        result["trl112_bf16_speedup"] = round(
            trl["float32"].seconds_per_update / trl["bfloat16"].seconds_per_update, 3
        )
    if "bfloat16" in bundled and "float32" in trl:
        result["speedup_bundled_bf16_vs_trl112_fp32"] = round(
            trl["float32"].seconds_per_update / bundled["bfloat16"].seconds_per_update, 3
        )
    if real:
        response_tokens = reference.mean_response_tokens or float(config.response_length)
        floor = flop_floor(
            shape, config.batch_size, prompt_tokens, response_tokens, config.ppo_epochs
        )
        rate = sum(rates) / len(rates)
        bf16_rate = sum(bf16_rates) / len(bf16_rates)
        floors = {"float32": floor.total / rate, "bfloat16": floor.total / bf16_rate}
        floor_seconds = floors[headline]
        result |= {
            "fraction_of_limit": round(floor_seconds / reference.seconds_per_update, 4),
            "fraction_of_limit_cpu_time": round(
                floor_seconds / reference.cpu_seconds_per_update, 4
            ),
            **{
                f"fraction_of_limit_{precision}": round(
                    floors[precision] / run.seconds_per_update, 4
                )
                for precision, run in bundled.items()
            },
            "floor_seconds_per_update": round(floor_seconds, 2),
            "floor_seconds_per_update_float32": round(floors["float32"], 2),
            "floor_seconds_per_update_bfloat16": round(floors["bfloat16"], 2),
            "floor_tflop": {
                "generation": round(floor.generation / 1e12, 3),
                "scoring": round(floor.scoring / 1e12, 3),
                "training": round(floor.training / 1e12, 3),
            },
            "bundled_mean_response_tokens": round(response_tokens, 2),
            "matmul_gflops_fp32_mean": round(rate / 1e9, 2),
            "matmul_gflops_fp32_range": [round(min(rates) / 1e9, 2), round(max(rates) / 1e9, 2)],
            "matmul_gflops_bf16_mean": round(bf16_rate / 1e9, 2),
            "matmul_shape": [512, shape.hidden_size, shape.intermediate_size],
            "non_embedding_parameters": shape.non_embedding_parameters,
            "output_layer_parameters": shape.output_layer_parameters,
        }
    result |= {
        "bundled_update_seconds": [round(s, 2) for s in reference.update_seconds],
        "trl112_update_seconds": [round(s, 2) for s in trl_reference.update_seconds],
        "bundled_update_cpu_seconds": [round(s, 2) for s in reference.update_cpu_seconds],
        "trl112_update_cpu_seconds": [round(s, 2) for s in trl_reference.update_cpu_seconds],
        **{
            f"bundled_{precision}_peak_rss_mib": round(run.peak_rss_mib, 1)
            for precision, run in bundled.items()
        },
        "trl112_peak_rss_mib": round(trl_reference.peak_rss_mib, 1),
        **{
            f"trl112_{precision}_peak_rss_mib": round(run.peak_rss_mib, 1)
            for precision, run in trl.items()
        },
        "bundled_setup_rss_mib": _round(reference.setup_rss_mib),
        "bundled_state_floor_mib": _round(reference.state_floor_mib),
        "load_average_start": load_at_start,
        "load_average_end": load_average(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
