"""The labeling engine: exactness against a plain forward pass, the runner, the cache, the CLI."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys

import pytest
import torch
from test_labeling_helpers import make_planned

from labelbench.errors import ModelError
from labelbench.labeling import (
    LabelCache,
    Scored,
    direct_scores,
    expected_score,
    label,
    preferences,
    request_key,
)
from labelbench.labeling.backend import Sample
from labelbench.labeling.jsonl import read_planned, write_planned
from labelbench.labeling.transformers_backend import TransformersBackend, naive_answer_logprobs
from labelbench.requests import PlannedRequest, RationaleRequest, ScoreRequest


@pytest.fixture()
def backend(tiny_lm):
    model, tokenizer = tiny_lm
    return TransformersBackend(model, tokenizer, "tiny@test", token_budget=300, max_rows=6)


def test_scores_equal_a_plain_forward_pass(backend, tiny_lm):
    model, tokenizer = tiny_lm
    planned = make_planned(9, repeat_context_every=3) + make_planned(
        4, seed=1, variant="v1", shared="Pick the better summary.\n"
    )
    requests = [p.request for p in planned]
    requests += [ScoreRequest("", "", "1 and 2="), ScoreRequest("", "", "2 and 1=")]  # no prefix
    scored = backend.score(requests)
    for request, out in zip(requests, scored, strict=True):
        reference = naive_answer_logprobs(model, tokenizer, request.text, request.answers)
        assert out.logprobs == pytest.approx(reference, abs=1e-4)
        assert out.prompt_tokens == len(backend.encode(request.text))
    naive_tokens = sum(len(backend.encode(r.text)) for r in requests)
    assert backend.processed_tokens < 0.8 * naive_tokens  # prefixes were computed once


def _score_requests() -> list[ScoreRequest]:
    planned = make_planned(9, repeat_context_every=3) + make_planned(
        4, seed=1, variant="v1", shared="Pick the better summary.\n"
    )
    return [p.request for p in planned] + [ScoreRequest("", "", "1 and 2=")]


@pytest.mark.parametrize("block", [1, 3, 1000])
def test_packed_prefix_tree_passes_are_exact_for_any_block_and_budget(tiny_lm, block):
    model, tokenizer = tiny_lm
    requests = _score_requests()
    engine = TransformersBackend(model, tokenizer, "tiny@test", token_budget=40, causal_block=block)
    assert engine._own_attention  # the model runs this package's attention
    for request, out in zip(requests, engine.score(requests), strict=True):
        reference = naive_answer_logprobs(model, tokenizer, request.text, request.answers)
        assert out.logprobs == pytest.approx(reference, abs=1e-4)
    assert engine.padded_tokens == engine.processed_tokens  # packed: no padding at all


def test_models_on_other_attention_are_scored_exactly_in_padded_rows(tiny_tokenizer):
    from conftest import build_tiny_model

    model = build_tiny_model(tiny_tokenizer, seed=3)
    model.set_attn_implementation("eager")
    engine = TransformersBackend(model, tiny_tokenizer, "tiny-eager", max_padding=0.5)
    assert not engine._own_attention
    assert model.config._attn_implementation == "eager"
    requests = _score_requests()
    for request, out in zip(requests, engine.score(requests), strict=True):
        reference = naive_answer_logprobs(model, tiny_tokenizer, request.text, request.answers)
        assert out.logprobs == pytest.approx(reference, abs=1e-4)
    assert engine.padded_tokens > engine.processed_tokens  # rows were padded and masked


def test_switched_attention_is_plain_sdpa_for_every_other_caller(tiny_tokenizer):
    from conftest import build_tiny_model

    model = build_tiny_model(tiny_tokenizer, seed=4)
    ids = torch.tensor([[5, 9, 14, 20, 7, 3], [8, 6, 2, 0, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
    with torch.inference_mode():
        before = model(input_ids=ids, attention_mask=mask).logits
        TransformersBackend(model, tiny_tokenizer, "tiny@test")
        assert model.config._attn_implementation != "sdpa"
        after = model(input_ids=ids, attention_mask=mask).logits
    assert torch.equal(before[0], after[0])
    assert torch.equal(before[1, :3], after[1, :3])


def test_rationales_match_greedy_generate_and_rescoring(backend, tiny_lm):
    model, tokenizer = tiny_lm
    planned = make_planned(3, rationale={"max_new_tokens": 6})
    requests = [p.request for p in planned]
    results = backend.rationales(requests, [11, 12, 13, 14, 15, 16])
    for request, samples in zip(requests, results, strict=True):
        (sample,) = samples
        ids = torch.tensor([backend.encode(request.text)])
        with torch.inference_mode():
            out = model.generate(
                ids, max_new_tokens=6, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
        expected = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
        assert sample.rationale == expected
        reference = naive_answer_logprobs(
            model, tokenizer, request.text + sample.rationale + request.score_suffix, ("1", "2")
        )
        assert sample.logprobs == pytest.approx(reference, abs=1e-4)


def test_sampled_rationales_are_seeded_and_rescored_exactly(backend, tiny_lm):
    model, tokenizer = tiny_lm
    planned = make_planned(
        2, rationale={"n": 3, "temperature": 1.0, "top_k": 50, "max_new_tokens": 5}
    )
    requests = [p.request for p in planned]
    seeds = [7, 8, 9, 10]
    first = backend.rationales(requests, seeds)
    assert first == backend.rationales(requests, seeds)
    assert [len(samples) for samples in first] == [3, 3, 3, 3]
    assert len({s.rationale for s in first[0]}) > 1  # samples differ
    for request, samples in zip(requests, first, strict=True):
        for sample in samples:
            text = request.text + sample.rationale + request.score_suffix
            reference = naive_answer_logprobs(model, tokenizer, text, ("1", "2"))
            assert sample.logprobs == pytest.approx(reference, abs=1e-4)


@pytest.mark.parametrize("block", [3, 32])
def test_sliding_window_models_past_their_window_are_scored_exactly(tiny_tokenizer, block):
    from conftest import build_tiny_gemma

    model = build_tiny_gemma(tiny_tokenizer, seed=0)
    engine = TransformersBackend(model, tiny_tokenizer, "tiny-gemma", causal_block=block)
    requests = [p.request for p in make_planned(2)]
    assert min(len(engine.encode(r.text)) for r in requests) > 4 * model.config.sliding_window
    for request, out in zip(requests, engine.score(requests), strict=True):
        reference = naive_answer_logprobs(model, tiny_tokenizer, request.text, request.answers)
        assert out.logprobs == pytest.approx(reference, abs=1e-4)


def test_sliding_window_rationales_past_the_window_match_generate(tiny_tokenizer):
    from conftest import build_tiny_gemma

    model = build_tiny_gemma(tiny_tokenizer, seed=1)
    engine = TransformersBackend(model, tiny_tokenizer, "tiny-gemma", causal_block=4)
    requests = [p.request for p in make_planned(2, rationale={"max_new_tokens": 12})]
    results = engine.rationales(requests, [1, 2, 3, 4])
    for request, (sample,) in zip(requests, results, strict=True):
        ids = torch.tensor([engine.encode(request.text)])
        with torch.inference_mode():
            out = model.generate(
                ids, max_new_tokens=12, do_sample=False, pad_token_id=tiny_tokenizer.pad_token_id
            )
        assert sample.rationale == tiny_tokenizer.decode(
            out[0, ids.shape[1] :], skip_special_tokens=True
        )
        text = request.text + sample.rationale + request.score_suffix
        reference = naive_answer_logprobs(model, tiny_tokenizer, text, ("1", "2"))
        assert sample.logprobs == pytest.approx(reference, abs=1e-4)


def test_answers_must_be_single_distinct_tokens(backend):
    request = ScoreRequest("Rate it.\n", "Post: a\n", "Score:", answers=("1", "7 out of 10"))
    with pytest.raises(Exception, match="single token"):
        backend.score([request])


class ScriptedBackend:
    """Answers from a table; None entries are unscorable."""

    identity = "scripted"

    def __init__(self, table: dict[str, tuple[float, ...] | None]) -> None:
        self.table = table
        self.calls = 0

    def score(self, requests):
        self.calls += 1
        return [Scored(self.table[r.tail], 10) for r in requests]

    def rationales(self, requests, seeds):
        self.calls += 1
        return [
            [Sample(f"why {j}", self.table[r.tail], 10, 3) for j in range(r.n)] for r in requests
        ]


def _two_orders(tail_ab: str, tail_ba: str, item: str = "x") -> list[PlannedRequest]:
    return [
        PlannedRequest(item, "v", "AB", ScoreRequest("s", "c", tail_ab)),
        PlannedRequest(item, "v", "BA", ScoreRequest("s", "c", tail_ba)),
    ]


def test_preferences_average_orders_and_keep_each():
    log = math.log
    table = {
        "ab": (log(0.8), log(0.2)),
        "ba": (log(0.4), log(0.6)),
        "gone": None,
        "ab2": (0.0, 0.0),
    }
    planned = _two_orders("ab", "ba") + _two_orders("ab2", "gone", item="y")
    result = label(planned, ScriptedBackend(table), progress=False)
    prefs = {p.item_id: p for p in preferences(result.rows)}
    assert prefs["x"].p_a_ab == pytest.approx(0.8)
    assert prefs["x"].p_a_ba == pytest.approx(0.6)  # answer 2 is A in order BA
    assert prefs["x"].p_a == pytest.approx(0.7)
    # an unscorable order is recorded as unscored, not as a wrong answer
    assert prefs["y"].p_a_ba is None and prefs["y"].p_a == pytest.approx(0.5)
    unscored = [row for row in result.rows if not row.scored]
    assert [(row.item_id, row.order, row.distribution) for row in unscored] == [("y", "BA", None)]
    only_unscored = label(
        _two_orders("gone", "gone", item="z"), ScriptedBackend(table), progress=False
    )
    (pref,) = preferences(only_unscored.rows)
    assert not pref.scored and pref.p_a is None


def test_self_consistency_averages_sample_distributions():
    table = {"t": (math.log(0.9), math.log(0.1))}
    planned = [PlannedRequest("x", "v", "AB", RationaleRequest("s", "c", "t", "=", n=4))]
    (row,) = label(planned, ScriptedBackend(table), progress=False).rows
    assert len(row.samples) == 4 and row.generated_tokens == 12
    assert row.distribution == pytest.approx((0.9, 0.1))


def test_direct_score_is_expected_value_rescaled():
    answers = tuple(str(i) for i in range(1, 10))
    assert expected_score((1.0,) + (0.0,) * 8, answers) == pytest.approx(-1.0)
    assert expected_score((0.0,) * 8 + (1.0,), answers) == pytest.approx(1.0)
    assert expected_score((0.5,) + (0.0,) * 7 + (0.5,), answers) == pytest.approx(0.0)
    assert expected_score(None, answers) is None
    table = {"t": tuple(math.log(p) for p in (0.25, 0.75))}
    planned = [PlannedRequest("x", "direct", "AB", ScoreRequest("s", "c", "t", answers=("1", "2")))]
    assert direct_scores(label(planned, ScriptedBackend(table), progress=False).rows) == [
        pytest.approx(0.5)
    ]


def test_cache_reuses_results_and_keys_cover_model_text_decoding_sample(tmp_path, backend):
    planned = make_planned(5)
    with LabelCache(tmp_path) as cache:
        first = label(planned, backend, cache=cache, progress=False, unit_items=2)
        assert len(cache) == len(planned)
        again = label(planned, backend, cache=cache, progress=False)
    assert all(row.cached for row in again.rows) and not any(row.cached for row in first.rows)
    strip = lambda rows: [dataclasses.replace(r, cached=False) for r in rows]  # noqa: E731
    assert strip(again.rows) == strip(first.rows)
    assert [a.cached_requests for a in again.accounting] == [len(planned)]

    score = ScoreRequest("a", "b", "c")
    chain = RationaleRequest("a", "b", "c", "=")
    keys = {
        request_key("m1", score),
        request_key("m2", score),
        request_key("m1", ScoreRequest("a", "b", "c "), 0),
        request_key("m1", chain, 0),
        request_key("m1", chain, 1),
        request_key("m1", dataclasses.replace(chain, temperature=0.7), 0),
        request_key("m1", dataclasses.replace(chain, max_new_tokens=5), 0),
    }
    assert len(keys) == 7
    assert request_key("m1", score) == request_key("m1", ScoreRequest("ab", "", "c"))


def test_accounting_counts_tokens_and_pairs(backend):
    planned = make_planned(4) + make_planned(2, variant="v1", rationale={"max_new_tokens": 3})
    result = label(planned, backend, progress=False)
    by_variant = {a.variant: a for a in result.accounting}
    assert by_variant["v0"].pairs == 4 and by_variant["v0"].requests == 8
    assert by_variant["v0"].generated_tokens == 0
    assert by_variant["v0"].prompt_tokens == sum(
        len(backend.encode(p.request.text)) for p in planned[:8]
    )
    assert 0 < by_variant["v1"].generated_tokens <= 4 * 3
    assert all(a.seconds > 0 and a.pairs_per_second > 0 for a in result.accounting)
    assert all(a.labeler == "tiny@test" for a in result.accounting)


def test_planned_requests_round_trip_and_bad_lines_name_the_line(tmp_path):
    planned = make_planned(2) + make_planned(1, rationale={"n": 2, "temperature": 0.5})
    path = tmp_path / "planned.jsonl"
    write_planned(path, planned)
    assert read_planned(path) == planned
    path.write_text(path.read_text() + '{"item_id": "x"}\n')
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "labelbench.labeling",
            "--requests",
            str(path),
            "--out",
            str(tmp_path / "out.jsonl"),
            "--model",
            "nothing",
            "--no-cache",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {path}:{len(planned) + 1}: field 'kind': missing in a planned request"
    ]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"\xff\xfe{\x00\n", ":1: invalid UTF-8 at column 1"),
        (b"[" * 100_000 + b"\n", ":1: malformed JSON (nested too deeply"),
        (b"[1, 2]\n", ":1: expected a JSON object, found list"),
    ],
)
def test_a_requests_file_that_is_not_json_lines_is_one_line(tmp_path, content, words):
    """(issue: a non-UTF-8 or deeply nested requests file ended in a traceback)"""
    path = tmp_path / "r.jsonl"
    path.write_bytes(content)
    args = ["label", "--requests", str(path), "--out", str(tmp_path / "o.jsonl")]
    result = subprocess.run(
        [sys.executable, "-m", "labelbench.cli", *args, "--model", "nothing"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {path}{words}"), line


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--model", "no/such-model-dir"], "no/such-model-dir"),
        (["--model", "m", "--backend", "carrier-pigeon"], "unknown backend 'carrier-pigeon'"),
        (["--model", "m", "--backend", "http"], "needs the server's base URL"),
    ],
)
def test_cli_user_errors_are_one_line(tmp_path, flags, message):
    requests = tmp_path / "planned.jsonl"
    write_planned(requests, make_planned(1))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "labelbench.labeling",
            "--requests",
            str(requests),
            "--out",
            str(tmp_path / "out.jsonl"),
            "--no-cache",
            *flags,
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line


def test_cli_labels_a_model_directory(tmp_path, tiny_lm_dir):
    planned = make_planned(3)
    requests, out = tmp_path / "planned.jsonl", tmp_path / "labels.jsonl"
    write_planned(requests, planned)
    command = [
        sys.executable,
        "-m",
        "labelbench.labeling",
        "--requests",
        str(requests),
        "--out",
        str(out),
        "--model",
        str(tiny_lm_dir),
        "--cache-dir",
        str(tmp_path / "c"),
        "--no-cache",
        "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(command, check=True, capture_output=True, env=env)
    assert not (tmp_path / "c").exists()  # --no-cache neither reads nor writes it
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["item_id"], r["order"]) for r in rows] == [(p.item_id, p.order) for p in planned]
    assert all(r["distribution"] is not None for r in rows)
    accounting = json.loads(out.with_suffix(".accounting.json").read_text())["accounting"]
    assert accounting[0]["pairs"] == 3


def test_vllm_backend_without_vllm_is_a_model_error():
    pytest.importorskip("labelbench.labeling.vllm_backend")
    try:
        import vllm  # noqa: F401
    except ImportError:
        from labelbench.labeling.vllm_backend import VLLMBackend

        with pytest.raises(ModelError, match=r"labelbench\[vllm\]"):
            VLLMBackend("some-model")
    else:
        pytest.skip("vllm is installed")


@pytest.mark.slow
def test_engine_equals_naive_on_50_real_pairs(data_dir):
    from labelbench.data import load_comparisons
    from labelbench.labeling.answers import preference_a, softmax
    from labelbench.models.registry import load_model
    from labelbench.prompting import plan

    lm = load_model("smollm2-135m")
    items = load_comparisons(data_dir / "openai_tldr_comparisons" / "batch13.json")[:50]
    planned = plan(items, "summarization/base-0shot", tokenizer=lm.tokenizer).requests
    backend = TransformersBackend(lm.model, lm.tokenizer, lm.identity)
    engine = {p.item_id: p.p_a for p in preferences(label(planned, backend, progress=False).rows)}
    naive: dict[str, list[float]] = {}
    for p in planned:
        logprobs = naive_answer_logprobs(lm.model, lm.tokenizer, p.request.text, p.request.answers)
        naive.setdefault(p.item_id, []).append(preference_a(softmax(logprobs), p.order))
    assert len(engine) == 50
    for item_id, values in naive.items():
        assert abs(engine[item_id] - sum(values) / len(values)) < 1e-4


@pytest.mark.slow
def test_gemma_engine_equals_naive_past_its_sliding_window(data_dir):
    from labelbench.data import load_comparisons
    from labelbench.models import registry
    from labelbench.models.registry import load_model
    from labelbench.prompting import plan

    if not registry.is_pulled("gemma3-270m"):
        pytest.skip("gemma3-270m is not pulled (`labelbench models pull gemma3-270m`)")
    lm = load_model("gemma3-270m")
    window = lm.model.config.sliding_window
    items = load_comparisons(data_dir / "openai_tldr_comparisons" / "batch13.json")[:40]
    planned = plan(items, "summarization/base-0shot", tokenizer=lm.tokenizer).requests
    backend = TransformersBackend(lm.model, lm.tokenizer, lm.identity)
    long = [p for p in planned if len(backend.encode(p.request.text)) > window + 16][:8]
    assert len(long) == 8
    scored = backend.score([p.request for p in long])
    for p, out in zip(long, scored, strict=True):
        reference = naive_answer_logprobs(lm.model, lm.tokenizer, p.request.text, p.request.answers)
        assert out.logprobs == pytest.approx(reference, abs=1e-4)


def test_the_naive_reference_reads_its_own_logits_or_the_float32_output_layer(tiny_tokenizer):
    """bench/labeling.py's two plain loops: the model's own forward (logits at every position, in
    its precision) and the engine's reading rule (last position, float32 output layer)."""
    from conftest import build_tiny_model

    from labelbench.prompting import answer_token_ids, prompt_token_ids

    model = build_tiny_model(tiny_tokenizer, seed=5).to(torch.bfloat16)
    text, answers = "Which summary is better? Answer:", ("1", "2")
    own = naive_answer_logprobs(model, tiny_tokenizer, text, answers, own_logits=True)
    rule = naive_answer_logprobs(model, tiny_tokenizer, text, answers, own_logits=False)
    assert rule == naive_answer_logprobs(model, tiny_tokenizer, text, answers)  # bf16 default
    ids = torch.tensor([prompt_token_ids(tiny_tokenizer, text)])
    answer_ids = answer_token_ids(answers, tiny_tokenizer, after=text)
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, -1]
    assert logits.dtype == torch.bfloat16  # the plain loop's logits stay in bfloat16
    expected = torch.log_softmax(logits.float(), dim=-1)[answer_ids].tolist()
    assert own == pytest.approx(expected, abs=1e-6)
    assert rule == pytest.approx(own, abs=0.05)  # the same model, read two ways
    assert rule != pytest.approx(own, abs=1e-6)  # but not the same numbers
