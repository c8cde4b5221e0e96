"""Labeling engine benchmark on the TL;DR comparisons (CPU), at the model's precision.

    python bench/labeling.py [--model smollm2-135m] [--dtype bfloat16] [--pairs 32]
                             [--cot-pairs 8] [--sc-samples 4] [--sc-pairs N] [--llama-pairs N]
                             [--llama-python PYTHON | --skip-llama-cpp] [--compile auto|on|off]
                             [--chat auto|on|off] [--slice 4] [--threads 1] [--skip-fp32]
                             [--shared-prefixes-ab]

Prompts are rendered as a labelling run renders them for the model: with its chat template where
it has one (``--chat auto``, a labeler's default; ``chat`` in the JSON says which).

Prints progress on stderr and one JSON object on the last line of stdout.

Chains of thought (the first ``--cot-pairs`` items, both orders, each run in one batch as a
labelling run's unit of items is): ``cot_cost_ratio`` (``base-0shot-cot`` seconds over
``base-0shot`` seconds on the same items; target <= 3 at 1.5B),
``selfconsistency_cost_ratio_vs_0shot`` (``--sc-samples`` sampled chains, t=0.7, top-k 40, over
0-shot), ``rationale_tokens_per_s`` (rationale tokens generated over the chain run's wall time:
prompts, decoding and scoring; ``rationale_tokens_per_s_selfconsistency`` for the sampled
run), ``cot_mean_rows_per_decode_step`` (sequences per batched decoding step;
``selfconsistency_mean_rows_per_decode_step`` for the sampled run),
``cot_mean_rationale_tokens`` and ``cot_empty_rationales`` of ``cot_rationales`` (chains that
came back empty: their pairs cost little and say nothing), seconds per pair of each run
(``cot_seconds_per_pair``, ``zero_shot_seconds_per_pair_on_cot_items``,
``selfconsistency_seconds_per_pair`` over ``selfconsistency_pairs``), and the same chains
through llama.cpp's server on the model's GGUF
(``rationale_tokens_per_s_llama_cpp``, ``rationale_tokens_per_s_vs_llama_cpp``: target >= 1;
``llama_cpp``: its seconds, tokens, GGUF and how its server ran, or ``skipped`` with why).
``--pairs 0`` runs only these, and the
floor below is then that of the 0-shot run on the chain items.

Scoring:
``speedup_vs_naive`` (engine pairs/s over a naive loop at the same precision, 0-shot, both
orders; target >= 3), ``speedup_vs_naive_last_position`` (a lower precision only: over a
stronger loop that computes only the last position's logits), ``speedup_vs_naive_fp32`` (the
engine at this precision over the naive loop in float32, what a user gets from transformers by
default), ``fraction_of_limit`` (the compute floor over the engine's 0-shot time, the floor in
``floor_precision``: the fastest of the CPU's native precisions, ``native_precisions``: bfloat16
with AVX-512 BF16 or AMX, else float32 only; ``fraction_of_limit_at_run_precision``: the floor at
the run's precision; target >= 0.7), ``speedup_vs_fp32_engine`` (the same engine in float32
over this precision),
``fewshot2_cost_ratio`` (2-shot over 0-shot seconds per pair; target <= 1.3),
``selfconsistency{n}_cost_ratio`` (n = ``--sc-samples`` sampled chains over one greedy chain;
target <= 2.0 at n=4), the
agreement of this precision (``precision``) with the float32 engine (``max_abs_delta_p_vs_fp32``,
``mean_abs_delta_p_vs_fp32``, ``flips_vs_fp32`` of ``orders_compared``, per order), the
engine's largest |ΔP(A)| against the plain loop (``max_abs_pref_diff_vs_naive``), and the
float32 figures (``fraction_of_limit_fp32``).

Shared prefixes (``labelbench.labeling.decoding.shared_prefixes``): with
``--shared-prefixes-ab`` the chains run twice more, with shared prefixes off, then on again;
``speedup_shared_prefixes`` is the run without over the mean of the two with, and
``shared_prefixes_same_rationales`` the share of (item, order) chains whose text is the same
with and without (rounding may turn a greedy chain at a near tie), and
``shared_prefixes_label_change`` how far their P(A) moved (largest and mean |ΔP(A)|, decision
flips, orders compared).

Compiled layers (``labelbench.labeling.compiled``; ``--compile``, default ``auto`` as a labeler's
``compile``: CPU models from 50M parameters): ``compiled``, ``compile_and_warmup_seconds`` (the
layers' first graphs and the warm-up passes' compilations), ``speedup_compiled_vs_uncompiled``
(the same engine with its layers uncompiled, interleaved in the same slices, over it) and
``fraction_of_limit_uncompiled``. The plain loops always run uncompiled.

glibc's heap (``labelbench.models.heap``): ``kept_heap`` (whether the engine keeps it for this
model: a full pass's largest activation over 64 MiB, on glibc), ``speedup_kept_heap`` (where it
does: the same engine with the heap not kept across its passes, interleaved, over it; else
null) and ``page_faults_per_pair`` (minor page faults of the engine, that engine and the plain
loop).

The floor is the run's necessary matrix-multiply work over the matrix-multiply FLOP/s measured
in this run, in the floor's precision, on the model's own MLP shape (512 tokens x hidden ->
intermediate size). The work: every position of the token trie of all its prompts (what any
exact method must compute) through the linear layers, 2 x (non-embedding parameters) FLOPs
each, plus its attention scores and weighted values, 4 x heads x head size x (keys it attends
to: its depth in the trie, itself included, at most the window on a sliding-window layer) FLOPs
per layer. ``fraction_of_limit_linear_only`` leaves attention out (the floor used before
2026-11-30, evening).
The naive loop runs one prompt at a time, the full prompt for each order, through the model's own
forward pass at the run's precision (``model(input_ids).logits``: logits at every position, the
loop a transformers user writes). In a lower precision the bench also times the loop that reads
answers as the engine does (the decoder, then the float32 output layer at the last position
only; ``naive_last_position_0shot``): it does less work than the plain loop, and it reads the
answers exactly as the engine does, so ``max_abs_pref_diff_vs_naive_last_position`` is the
engine's exactness check there (the plain loop's bfloat16 logits are rounded).

The machine may be shared, so the methods are timed interleaved: the items are cut into slices
(never splitting one post's comparisons), and each slice is run by every method in turn, in a
rotating order, with a matrix-multiply measurement between slices; each method's time is the sum
over slices, and the limit uses the mean of those measurements (the peak-based figure is reported
too: ``fraction_of_limit_at_peak_matmul``). Each engine keeps its state across slices, as in one
run.

Also in the JSON, to check the figures above: ``attention_share_of_work``, the matrix-multiply
rates measured (``matmul_gflops_mean``, ``matmul_gflops_floor_mean``,
``matmul_gflops_range``, ``matmul_gflops_fp32_mean``, in GFLOP/s,
on ``matmul_shape``), ``non_embedding_parameters``, ``unique_tokens`` (the trie's positions) and
``unique_tokens_per_second``, the positions the engine ran (``engine_tokens_processed``,
``engine_tokens_padded``) and the naive loop ran (``naive_tokens``), ``seconds`` and
``generated_tokens`` per timed run, ``pairs``, ``cot_pairs``, ``sc_samples``,
``llama_cpp_pairs``, ``threads``, ``model`` (its identity), ``cpu``, ``load_average`` and
``compile_note`` (why layers ran uncompiled, where they did).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LABELBENCH_DATA_DIR", REPO.parent / "shared" / "data"))
TLDR = DATA / "openai_tldr_comparisons" / "batch13.json"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def matmul_flops(
    hidden: int, intermediate: int, dtype: Any, tokens: int = 512, repeats: int = 3
) -> float:
    """Best observed FLOP/s of ``F.linear`` on [tokens, hidden] x [intermediate, hidden] in
    ``dtype`` (the model's MLP up-projection shape), about 0.3 s of work per repeat."""
    import torch

    x = torch.randn(tokens, hidden).to(dtype)
    w = torch.randn(intermediate, hidden).to(dtype)
    flops = 2 * tokens * hidden * intermediate
    torch.nn.functional.linear(x, w)
    started = time.perf_counter()
    torch.nn.functional.linear(x, w)
    inner = max(1, int(0.1 / max(time.perf_counter() - started, 1e-6)))
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(inner):
            torch.nn.functional.linear(x, w)
        best = max(best, flops * inner / (time.perf_counter() - started))
    return best


def native_precisions() -> list[str]:
    """The precisions this CPU multiplies in hardware: float32, and bfloat16 with AVX-512 BF16
    or AMX (``labelbench.models.registry.native_bfloat16``; elsewhere bfloat16 is emulated)."""
    from labelbench.models.registry import native_bfloat16

    return ["float32", "bfloat16"] if native_bfloat16("cpu") else ["float32"]


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the platform's processor string."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def non_embedding_parameters(model: Any) -> int:
    embeddings = {id(model.get_input_embeddings().weight), id(model.get_output_embeddings().weight)}
    return sum(p.numel() for p in model.parameters() if id(p) not in embeddings)


def unique_tokens(sequences: Sequence[Sequence[int]]) -> int:
    """Positions in the token trie of all prompts: what any exact method must compute."""
    root: dict[int, Any] = {}
    count = 0
    for sequence in sequences:
        node = root
        for token in sequence:
            if token not in node:
                node[token] = {}
                count += 1
            node = node[token]
    return count


def attended_keys(sequences: Sequence[Sequence[int]], window: int | None = None) -> int:
    """Keys attended to, summed over the positions of the token trie of all prompts: each
    position's depth (itself included), at most ``window`` when given."""
    root: dict[int, Any] = {}
    total = 0
    for sequence in sequences:
        node = root
        for depth, token in enumerate(sequence, start=1):
            if token not in node:
                node[token] = {}
                total += depth if window is None else min(depth, window)
            node = node[token]
    return total


def attention_flops(config: Any, sequences: Sequence[Sequence[int]]) -> float:
    """Attention's matrix-multiply FLOPs over the token trie of ``sequences`` for a decoder with
    ``config`` (a transformers text config): per layer, 2 x heads x head size per key for the
    scores and as many for the weighted values. Layers whose ``layer_types`` entry is
    ``sliding_attention`` see at most ``sliding_window`` keys."""
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    types = getattr(config, "layer_types", None) or ["full_attention"] * config.num_hidden_layers
    local = sum(1 for kind in types if kind == "sliding_attention")
    keys = attended_keys(sequences) * (len(types) - local)
    if local:
        keys += attended_keys(sequences, config.sliding_window) * local
    return 4.0 * heads * head_dim * keys


def slices(planned: Sequence[Any], contexts: dict[str, str], pairs: int) -> list[set[str]]:
    """Item ids in consecutive slices of about ``pairs`` items; one post's items stay together."""
    result: list[set[str]] = []
    current: list[str] = []
    for item_id in dict.fromkeys(p.item_id for p in planned):
        if len(current) >= pairs and contexts[item_id] != contexts[current[-1]]:
            result.append(set(current))
            current = []
        current.append(item_id)
    if current:
        result.append(set(current))
    return result


class Timer:
    """Adds up each method's seconds, and the process's minor page faults (pages the kernel
    mapped on first touch), over interleaved slices."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.faults: dict[str, int] = {}

    def run(self, name: str, work: Any) -> Any:
        import resource

        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        started = time.perf_counter()
        result = work()
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
        self.faults[name] = self.faults.get(name, 0) + faults
        return result


def same_rationales(first: Sequence[Any] | None, second: Sequence[Any] | None) -> float | None:
    """The share of (item, order) rows whose rationales are the same text in both runs."""
    if not first or not second:
        return None
    texts = {(r.item_id, r.order): [s.rationale for s in r.samples] for r in second}
    same = [texts.get((r.item_id, r.order)) == [s.rationale for s in r.samples] for r in first]
    return sum(same) / len(same)


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse sizes the runs cannot take, and an unknown model, through ``parser.error`` (one
    line, exit 2) before anything loads."""
    at_least = {"--pairs": (args.pairs, 0), "--cot-pairs": (args.cot_pairs, 0)}
    at_least |= {"--sc-samples": (args.sc_samples, 0), "--slice": (args.slice, 1)}
    at_least["--threads"] = (args.threads, 1)
    if args.sc_pairs is not None:
        at_least["--sc-pairs"] = (args.sc_pairs, 1)
    if args.llama_pairs is not None:
        at_least["--llama-pairs"] = (args.llama_pairs, 1)
    for flag, (value, least) in at_least.items():
        if value < least:
            parser.error(f"{flag} must be at least {least}, not {value}")
    if args.pairs == 0 and args.cot_pairs == 0:
        parser.error("--pairs and --cot-pairs are both 0: nothing to measure")
    if args.shared_prefixes_ab and args.cot_pairs == 0:
        parser.error("--shared-prefixes-ab times the chains: it needs --cot-pairs of at least 1")
    if args.dtype not in (None, "float32", "bfloat16", "float16"):
        parser.error(f"--dtype must be float32, bfloat16 or float16, not {args.dtype!r}")
    from labelbench.errors import LabelbenchError
    from labelbench.models.specs import resolve

    try:
        resolve(args.model)
    except LabelbenchError as error:
        parser.error(f"--model: {error}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=32, help="TL;DR comparisons (data order)")
    parser.add_argument(
        "--cot-pairs",
        type=int,
        default=8,
        help="comparisons for the rationale runs, the data file's first (they may reach past "
        "--pairs' items), each run in one batch: 0-shot on them, chain of thought, "
        "self-consistency",
    )
    parser.add_argument(
        "--sc-samples", type=int, default=4, help="self-consistency samples (0: no such run)"
    )
    parser.add_argument(
        "--sc-pairs",
        type=int,
        default=None,
        help="the first this many of --cot-pairs' comparisons for the self-consistency run "
        "(default: all of them); its costs are per pair",
    )
    parser.add_argument(
        "--llama-pairs",
        type=int,
        default=None,
        help="the first this many of --cot-pairs' comparisons through llama.cpp (default: all "
        "of them; it decodes one sequence at a time, so its tokens/s do not need many)",
    )
    parser.add_argument(
        "--llama-python",
        default=sys.executable,
        help="a Python with llama-cpp-python[server], for the same rationales through "
        "llama.cpp's server (skipped, with the reason in the JSON, where it has none)",
    )
    parser.add_argument("--skip-llama-cpp", action="store_true", help="no llama.cpp run")
    parser.add_argument("--slice", type=int, default=4, help="pairs per interleaved slice")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 suits a shared machine)"
    )
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument(
        "--dtype", default=None, help="float32 | bfloat16 (default: the model's default precision)"
    )
    parser.add_argument(
        "--compile",
        choices=("auto", "on", "off"),
        default="auto",
        help="decoder layers as compiled graphs in the engine, as a labeler's compile setting "
        "(auto: the labelers' default); the plain loops always run uncompiled",
    )
    parser.add_argument(
        "--chat",
        choices=("auto", "on", "off"),
        default="auto",
        help="render prompts with the model's chat template (auto: where it has one, as a "
        "labeler's default chat setting)",
    )
    parser.add_argument(
        "--shared-prefixes-ab",
        action="store_true",
        help="run the chains twice more, with shared prefixes off then on again, for "
        "speedup_shared_prefixes",
    )
    parser.add_argument(
        "--skip-fp32",
        action="store_true",
        help="no float32 engine (when memory cannot hold both copies of a large model)",
    )
    args = parser.parse_args()
    _check(parser, args)

    import torch

    from labelbench.config_schema import LabelerSpec
    from labelbench.data import load_comparisons
    from labelbench.labeling import label, preferences
    from labelbench.labeling.answers import preference_a, softmax
    from labelbench.labeling.compiled import compile_layers, uncompile_layers, want_compiled
    from labelbench.labeling.openers import chat_mode
    from labelbench.labeling.precision import compare
    from labelbench.labeling.transformers_backend import TransformersBackend, naive_answer_logprobs
    from labelbench.models import heap
    from labelbench.models.registry import load_model, resolve_precision
    from labelbench.prompting import plan

    # On a shared machine, more threads than idle cores makes every op wait for the slowest; the
    # figures are ratios measured with the same threads, so use more only on an idle machine.
    threads = args.threads
    torch.set_num_threads(threads)
    precision = resolve_precision(args.model, args.dtype)
    dtype = getattr(torch, precision)
    lm = load_model(args.model, dtype=dtype)
    lower = precision != "float32"
    with_fp32 = lower and not args.skip_fp32
    lm32 = load_model(args.model, dtype=torch.float32) if with_fp32 else lm
    config = lm.model.config.get_text_config(decoder=True)
    shape = (config.hidden_size, config.intermediate_size)
    everything = load_comparisons(TLDR)
    items = everything[: args.pairs]
    contexts = {item.id: item.context for item in everything}

    def engine(model: Any = lm) -> TransformersBackend:
        return TransformersBackend(model.model, model.tokenizer, f"{model.identity}")

    def run_engine(backend: TransformersBackend, planned: Sequence[Any]) -> Any:
        return label(planned, backend, cache=None, progress=False)

    chat = chat_mode(
        LabelerSpec(name=args.model, chat={"auto": None, "on": True, "off": False}[args.chat]),
        lm.tokenizer,
    )

    def planned_for(variant: str, chosen: Sequence[Any]) -> list[Any]:
        return plan(chosen, variant, tokenizer=lm.tokenizer, chat=chat).requests

    native = native_precisions()
    floor_precision = precision  # replaced below by the fastest native precision, measured

    def rates() -> tuple[float, float, float]:
        """Matmul FLOP/s at the run's precision, in float32 and in ``floor_precision``."""
        by = {precision: matmul_flops(*shape, dtype)}
        for other in ("float32", floor_precision):
            if other not in by:
                by[other] = matmul_flops(*shape, getattr(torch, other))
        return by[precision], by["float32"], by[floor_precision]

    zero = planned_for("summarization/base-0shot", items)
    two = planned_for("summarization/base-2shot", items)
    # Warm-up on other items, so no method pays first-call costs in the timing.
    warm = planned_for("summarization/base-0shot", everything[-2:])
    run_engine(engine(), warm)
    if with_fp32:
        run_engine(engine(lm32), warm)
    for own in (True, False):
        naive_answer_logprobs(
            lm.model, lm.tokenizer, warm[0].request.text, ("1", "2"), own_logits=own
        )
    setting = {"auto": None, "on": True, "off": False}[args.compile]
    compiled = want_compiled(setting, lm.model)
    models = list({id(m.model): m.model for m in (lm, lm32)}.values())
    compile_note, compile_seconds = None, 0.0
    if compiled:  # as a labeler opens a model, then the warm-up's graphs (rows and tree passes)
        started = time.perf_counter()
        for model in models:
            compile_note = compile_layers(model) or compile_note
        run_engine(engine(), warm)
        if with_fp32:
            run_engine(engine(lm32), warm)
        compile_seconds = time.perf_counter() - started
        compiled = compile_note is None
        log(f"compiled layers: {compiled} ({compile_note or f'{compile_seconds:.1f} s'})")

    def uncompiled(work: Any) -> Any:
        """``work`` run with the model's layers uncompiled (the plain loops, and the engine's
        uncompiled figure), then compiled again (torch keeps the graphs)."""

        def run() -> Any:
            if not compiled:
                return work()
            for model in models:
                uncompile_layers(model)
            try:
                return work()
            finally:
                for model in models:
                    compile_layers(model)

        return run

    largest = heap.largest_activation(config, engine().token_budget, dtype.itemsize)
    keeps_heap = heap.worth_keeping(largest) and heap.available()

    def heap_returned(work: Any) -> Any:
        """``work`` with glibc's heap not kept across the engine's passes (freed activations
        handed back to the kernel: ``labelbench.models.heap``)."""

        def run() -> Any:
            kept = heap._glibc
            heap._glibc = lambda: None
            try:
                return work()
            finally:
                heap._glibc = kept

        return run

    # the fastest native precision, from one measurement of each (then measured in every round)
    probe = {p: matmul_flops(*shape, getattr(torch, p)) for p in native}
    floor_precision = max(probe, key=lambda p: probe[p])
    log(f"native precisions {native}; matmul GFLOP/s {probe}; floor in {floor_precision}")
    timer, measured = Timer(), [rates()]
    engines = {
        "engine_0shot": engine(),
        "engine_2shot": engine(),
        "engine_fp32": engine(lm32),
        "engine_uncompiled": engine(),
        "engine_heap_returned": engine(),
    }
    engine_rows: list[Any] = []
    fp32_rows: list[Any] = []
    naive: list[tuple[Any, tuple[float, ...]]] = []
    naive_last: list[tuple[Any, tuple[float, ...]]] = []

    def naive_loop(part: Sequence[Any], own_logits: bool) -> list[tuple[Any, tuple[float, ...]]]:
        """(planned request, answer log-probabilities) from one plain forward pass each."""
        return [
            (
                p,
                naive_answer_logprobs(
                    lm.model, lm.tokenizer, p.request.text, p.request.answers, own_logits=own_logits
                ),
            )
            for p in part
        ]

    for number, part in enumerate(slices(zero, contexts, args.slice)):
        zero_part = [p for p in zero if p.item_id in part]
        two_part = [p for p in two if p.item_id in part]
        methods = [
            (
                "engine_0shot",
                lambda z=zero_part: engine_rows.extend(run_engine(engines["engine_0shot"], z).rows),
            ),
            (
                "naive_0shot",
                uncompiled(lambda z=zero_part: naive.extend(naive_loop(z, own_logits=True))),
            ),
            ("engine_2shot", lambda t=two_part: run_engine(engines["engine_2shot"], t)),
        ]
        if keeps_heap:
            methods.append(
                (
                    "engine_0shot_heap_returned",
                    heap_returned(
                        lambda z=zero_part: run_engine(engines["engine_heap_returned"], z)
                    ),
                )
            )
        if compiled:
            methods.append(
                (
                    "engine_0shot_uncompiled",
                    uncompiled(lambda z=zero_part: run_engine(engines["engine_uncompiled"], z)),
                )
            )
        if lower:  # also the loop that reads answers as the engine does
            methods.append(
                (
                    "naive_last_position_0shot",
                    uncompiled(
                        lambda z=zero_part: naive_last.extend(naive_loop(z, own_logits=False))
                    ),
                )
            )
        if with_fp32:
            methods.append(
                (
                    "engine_fp32",
                    lambda z=zero_part: fp32_rows.extend(
                        run_engine(engines["engine_fp32"], z).rows
                    ),
                )
            )
            methods.append(
                (
                    "naive_fp32",
                    uncompiled(
                        lambda z=zero_part: [
                            naive_answer_logprobs(
                                lm32.model, lm32.tokenizer, p.request.text, p.request.answers
                            )
                            for p in z
                        ]
                    ),
                )
            )
        turn = number % len(methods)
        for name, work in methods[turn:] + methods[:turn]:
            timer.run(name, work)
        measured.append(rates())
        log(f"slice {number}: {len(part)} pairs; so far {timer.seconds}")

    engine_pref = {pref.item_id: pref.p_a for pref in preferences(engine_rows)}

    def max_diff_vs(loop: Sequence[tuple[Any, tuple[float, ...]]]) -> float | None:
        """Largest |P(A) of the engine - P(A) of a plain loop| over items (both orders)."""
        by_item: dict[str, list[float]] = {}
        for p, logprobs in loop:
            by_item.setdefault(p.item_id, []).append(preference_a(softmax(logprobs), p.order))
        if not by_item:
            return None
        return max(abs(engine_pref[i] - sum(v) / len(v)) for i, v in by_item.items())

    def per_order(rows: Sequence[Any]) -> dict[tuple[str, str], float]:
        return {(r.item_id, r.order): preference_a(r.distribution, r.order) for r in rows}

    chain_engines = {"zero_cot_items": engine(), "cot_single": engine(), "cot_sc": engine()}
    generated: dict[str, int] = {}
    chain_rows: dict[str, list[Any]] = {}
    cot_items = everything[: args.cot_pairs]  # the first items, as --pairs takes them
    sc_items = cot_items[: args.sc_pairs if args.sc_pairs is not None else len(cot_items)]
    llama_items = cot_items[: args.llama_pairs if args.llama_pairs is not None else len(cot_items)]
    single: list[Any] = []
    if args.cot_pairs:
        zero_cot = planned_for("summarization/base-0shot", cot_items)
        single = planned_for("summarization/base-0shot-cot", cot_items)
        runs = [("zero_cot_items", zero_cot), ("cot_single", single)]
        if args.sc_samples:
            sampled = [
                dataclasses.replace(
                    p,
                    request=dataclasses.replace(
                        p.request, n=args.sc_samples, temperature=0.7, top_k=40
                    ),
                )
                for p in single
                if p.item_id in {item.id for item in sc_items}
            ]
            runs.append(("cot_sc", sampled))
        # warm-up on other items, so the first timed chain run pays no first-call costs
        # (compiling the prompt passes' new shapes) that the runs after it do not
        run_engine(engine(), planned_for("summarization/base-0shot-cot", everything[-2:]))
        for name, planned in runs:  # each in one batch, as a run labels a unit of items
            rows = timer.run(name, lambda e=chain_engines[name], q=planned: run_engine(e, q).rows)
            chain_rows[name] = rows
            generated[name] = sum(row.generated_tokens for row in rows)
            measured.append(rates())
            log(
                f"{name}: {len(planned) // 2} pairs, {generated[name]} tokens generated, so far "
                f"{timer.seconds}"
            )

    if args.shared_prefixes_ab and single:
        from labelbench.labeling import decoding

        shares = decoding.shares
        for name, on in (("cot_single_apart", False), ("cot_single_again", True)):
            decoding.shares = shares if on else lambda backend: False
            fresh = engine()
            try:
                rows = timer.run(name, lambda e=fresh, q=single: run_engine(e, q).rows)
            finally:
                decoding.shares = shares
            chain_rows[name] = rows
            measured.append(rates())
            log(f"{name}: so far {timer.seconds}")

    llama: dict[str, Any] = {"skipped": "--skip-llama-cpp"}
    if args.skip_llama_cpp or not single:
        llama = {"skipped": "--skip-llama-cpp" if args.skip_llama_cpp else "--cot-pairs 0"}
    else:
        import tempfile

        from llama_server import llama_cpp_chains

        log("the same chains of thought through llama.cpp's server")
        with tempfile.TemporaryDirectory() as scratch:
            llama = llama_cpp_chains(
                args.model,
                [p for p in single if p.item_id in {item.id for item in llama_items}],
                python=args.llama_python,
                threads=threads,
                gguf_dir=Path(scratch),
            )
        log(f"llama.cpp: { ({k: v for k, v in llama.items() if k != 'rows'}) }")

    seconds = timer.seconds
    if args.pairs:
        zero_engine, zero_name, zero_planned = engines["engine_0shot"], "engine_0shot", zero
    else:  # the floor of the 0-shot run on the chain items
        zero_engine, zero_name = chain_engines["zero_cot_items"], "zero_cot_items"
        zero_planned = planned_for("summarization/base-0shot", cot_items)
    sequences = [zero_engine.encode(p.request.text) for p in zero_planned]
    tokens = unique_tokens(sequences)
    params = non_embedding_parameters(lm.model)
    linear_work = tokens * 2 * params
    attention_work = attention_flops(lm.model.config.get_text_config(decoder=True), sequences)
    work = linear_work + attention_work
    rate = sum(r for r, _, _ in measured) / len(measured)
    rate32 = sum(r for _, r, _ in measured) / len(measured)
    floor_rate = sum(r for _, _, r in measured) / len(measured)
    zero_seconds = seconds[zero_name]
    fp32_seconds = seconds.get("engine_fp32", zero_seconds)

    def ratio(top: str, bottom: str) -> float | None:
        """Seconds per pair of ``top`` over those of ``bottom`` (the same pairs but for the
        self-consistency run, which may run the first --sc-pairs only)."""
        if top not in seconds or bottom not in seconds:
            return None
        share = {"cot_sc": len(sc_items) / len(cot_items)} if cot_items else {}
        return (seconds[top] / share.get(top, 1.0)) / (seconds[bottom] / share.get(bottom, 1.0))

    def per_second(name: str) -> float | None:
        return generated[name] / seconds[name] if name in generated else None

    engine_rate = per_second("cot_single")
    llama_rate = llama.get("rationale_tokens_per_s")
    cot_engine = chain_engines["cot_single"]
    figures: dict[str, Any] = {
        "precision": precision,
        "chat": chat,
        "floor_precision": floor_precision,
        "native_precisions": native,
        "fraction_of_limit": work / floor_rate / zero_seconds,
        "fraction_of_limit_at_run_precision": work / rate / zero_seconds,
        "cot_cost_ratio": ratio("cot_single", "zero_cot_items"),
        "selfconsistency_cost_ratio_vs_0shot": ratio("cot_sc", "zero_cot_items"),
        f"selfconsistency{args.sc_samples}_cost_ratio": ratio("cot_sc", "cot_single"),
        "rationale_tokens_per_s": engine_rate,
        "rationale_tokens_per_s_selfconsistency": per_second("cot_sc"),
        "rationale_tokens_per_s_llama_cpp": llama_rate,
        "rationale_tokens_per_s_vs_llama_cpp": (
            engine_rate / llama_rate if engine_rate and llama_rate else None
        ),
        "llama_cpp": {
            key: value
            for key, value in llama.items()
            if key not in ("rows", "rationale_tokens_per_s")
        },
        "cot_seconds_per_pair": (
            seconds["cot_single"] / len(cot_items) if "cot_single" in seconds else None
        ),
        "zero_shot_seconds_per_pair_on_cot_items": (
            seconds["zero_cot_items"] / len(cot_items) if "zero_cot_items" in seconds else None
        ),
        "selfconsistency_seconds_per_pair": (
            seconds["cot_sc"] / len(sc_items) if "cot_sc" in seconds else None
        ),
        "selfconsistency_pairs": len(sc_items) if "cot_sc" in seconds else 0,
        "llama_cpp_pairs": len(llama_items) if llama.get("generated_tokens") else 0,
        "cot_mean_rows_per_decode_step": (
            cot_engine.decoded_rows / cot_engine.decode_steps if cot_engine.decode_steps else None
        ),
        "selfconsistency_mean_rows_per_decode_step": (
            chain_engines["cot_sc"].decoded_rows / chain_engines["cot_sc"].decode_steps
            if chain_engines["cot_sc"].decode_steps
            else None
        ),
        "cot_mean_rationale_tokens": (generated["cot_single"] / len(single) if single else None),
        "cot_rationales": sum(len(row.samples) for row in chain_rows.get("cot_single", [])),
        "cot_empty_rationales": sum(
            not sample.rationale.strip()
            for row in chain_rows.get("cot_single", [])
            for sample in row.samples
        ),
        "speedup_shared_prefixes": (
            2 * seconds["cot_single_apart"] / (seconds["cot_single"] + seconds["cot_single_again"])
            if "cot_single_apart" in seconds
            else None
        ),
        "shared_prefixes_same_rationales": same_rationales(
            chain_rows.get("cot_single"), chain_rows.get("cot_single_apart")
        ),
        "shared_prefixes_label_change": (
            dict(
                zip(
                    ("max_abs_delta_p", "mean_abs_delta_p", "flips", "orders"),
                    compare(
                        per_order(chain_rows["cot_single_apart"]),
                        per_order(chain_rows["cot_single"]),
                    ),
                    strict=True,
                )
            )
            if "cot_single_apart" in chain_rows
            else None
        ),
        "compiled": compiled,
        "compile_note": compile_note,
        "compile_and_warmup_seconds": compile_seconds,
        "speedup_compiled_vs_uncompiled": ratio("engine_0shot_uncompiled", "engine_0shot"),
        "speedup_kept_heap": ratio("engine_0shot_heap_returned", "engine_0shot"),
        "kept_heap": keeps_heap,
        "page_faults_per_pair": {
            name: timer.faults[name] / len(items)
            for name in ("engine_0shot", "engine_0shot_heap_returned", "naive_0shot")
            if name in timer.faults
        },
        "fraction_of_limit_uncompiled": (
            work / floor_rate / seconds["engine_0shot_uncompiled"]
            if "engine_0shot_uncompiled" in seconds and args.pairs
            else None
        ),
        "speedup_vs_naive": ratio("naive_0shot", "engine_0shot"),
        "speedup_vs_fp32_engine": (fp32_seconds / zero_seconds if with_fp32 else None),
        "speedup_vs_naive_fp32": ratio("naive_fp32", "engine_0shot") if with_fp32 else None,
        "fewshot2_cost_ratio": ratio("engine_2shot", "engine_0shot"),
        "fraction_of_limit_at_peak_matmul": work / max(r for _, _, r in measured) / zero_seconds,
        "fraction_of_limit_fp32": work / rate32 / fp32_seconds if with_fp32 else None,
        "fraction_of_limit_linear_only": linear_work / floor_rate / zero_seconds,
        "attention_share_of_work": attention_work / work,
        "max_abs_pref_diff_vs_naive": max_diff_vs(naive),
        "speedup_vs_naive_last_position": (
            ratio("naive_last_position_0shot", "engine_0shot") if lower else None
        ),
        "max_abs_pref_diff_vs_naive_last_position": max_diff_vs(naive_last),
        "pairs": len(items),
        "cot_pairs": len(cot_items),
        "sc_samples": args.sc_samples,
        "threads": threads,
        "matmul_gflops_mean": rate / 1e9,
        "matmul_gflops_floor_mean": floor_rate / 1e9,
        "matmul_gflops_range": [
            min(r for r, _, _ in measured) / 1e9,
            max(r for r, _, _ in measured) / 1e9,
        ],
        "matmul_gflops_fp32_mean": rate32 / 1e9,
        "matmul_shape": [512, *shape],
        "non_embedding_parameters": params,
        "unique_tokens": tokens,
        "engine_tokens_processed": zero_engine.processed_tokens,
        "engine_tokens_padded": zero_engine.padded_tokens,
        "naive_tokens": sum(len(zero_engine.encode(p.request.text)) for p in zero_planned),
        "unique_tokens_per_second": tokens / zero_seconds,
        "seconds": seconds,
        "generated_tokens": generated,
        "model": lm.identity,
        "cpu": cpu_name(),
        "load_average": os.getloadavg()[0],
    }
    if with_fp32 and fp32_rows:
        largest, mean, flips, compared = compare(per_order(fp32_rows), per_order(engine_rows))
        figures |= {
            "max_abs_delta_p_vs_fp32": largest,
            "mean_abs_delta_p_vs_fp32": mean,
            "flips_vs_fp32": flips,
            "orders_compared": compared,
        }
    print(json.dumps(figures))


if __name__ == "__main__":
    from labelbench.errors import LabelbenchError

    try:
        main()
    except LabelbenchError as error:  # a model or data file that cannot be read: one line
        print(f"labeling.py: error: {error}", file=sys.stderr)
        sys.exit(2)
