"""Decoder layers compiled (``labelbench.labeling.compiled``): the same labels as the eager model,
a failed compilation undone, and when the auto setting compiles."""

from __future__ import annotations

import pytest
import torch
from conftest import build_tiny_gemma, build_tiny_model
from test_batched_rationales import _mixed_requests
from test_labeling_helpers import make_planned

from labelbench.labeling import compiled
from labelbench.labeling.compiled import (
    cannot_compile,
    compile_layers,
    is_compiled,
    uncompile_layers,
    want_compiled,
)
from labelbench.labeling.decoding import Decoder
from labelbench.labeling.transformers_backend import TransformersBackend


def _labels(model, tokenizer):
    """Answer log-probabilities of 0-shot requests (packed scoring), and seeded rationales
    (continuous batching, greedy and sampled) with their answers."""
    engine = TransformersBackend(model, tokenizer, "tiny@test")
    scored = engine.score([p.request for p in make_planned(4)])
    requests = _mixed_requests()
    samples = engine.rationales(requests, list(range(len(requests))))
    return scored, samples


@pytest.mark.parametrize(
    ("build", "dtype", "tolerance"),
    [(build_tiny_model, torch.float32, 1e-4), (build_tiny_gemma, torch.bfloat16, 0.05)],
)
def test_compiled_layers_score_and_reason_as_the_eager_model(
    tiny_tokenizer, build, dtype, tolerance
) -> None:
    """Scores agree to rounding (bfloat16: the graph rounds RMSNorm once, eager at each step).
    Rationales (prompt passes compiled, decoding steps eager): in float32 the same chains with
    labels to rounding; in bfloat16 a near tie may turn a chain, so only their number is
    compared there."""
    model = build(tiny_tokenizer).to(dtype)
    eager_scores, eager_samples = _labels(model, tiny_tokenizer)
    assert compile_layers(model) is None
    assert is_compiled(model)
    scores, samples = _labels(model, tiny_tokenizer)
    for a, b in zip(scores, eager_scores, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=tolerance)
    for together, alone in zip(samples, eager_samples, strict=True):
        assert len(together) == len(alone)
        if dtype == torch.float32:
            assert [s.rationale for s in together] == [s.rationale for s in alone]
            for a, b in zip(together, alone, strict=True):
                assert a.logprobs == pytest.approx(b.logprobs, abs=tolerance)
    uncompile_layers(model)
    assert not is_compiled(model)
    assert _labels(model, tiny_tokenizer)[0][0].logprobs == eager_scores[0].logprobs


def test_a_failed_compilation_is_undone_and_the_model_runs_eagerly(
    tiny_tokenizer, monkeypatch
) -> None:
    def broken(function, **options):
        def fail(*a, **k):
            raise RuntimeError("the C++ compiler crashed\nsecond line")

        return fail

    model = build_tiny_model(tiny_tokenizer)
    before = _labels(model, tiny_tokenizer)[0]
    monkeypatch.setattr(compiled.torch, "compile", broken)
    reason = compile_layers(model)
    assert reason == "compiling failed (RuntimeError: the C++ compiler crashed)"
    assert not is_compiled(model)
    assert not any("forward" in vars(layer.self_attn) for layer in model.model.layers)
    after = _labels(model, tiny_tokenizer)[0]
    assert [s.logprobs for s in after] == [s.logprobs for s in before]


def test_without_a_cxx_compiler_nothing_is_compiled(tiny_tokenizer, monkeypatch) -> None:
    monkeypatch.setattr(compiled.shutil, "which", lambda name: None)
    model = build_tiny_model(tiny_tokenizer)
    assert cannot_compile(model) == "no C++ compiler (g++, c++ or clang++) on PATH"
    assert compile_layers(model) == cannot_compile(model)
    assert not is_compiled(model)


def test_auto_compiles_cpu_models_from_50m_parameters(tiny_tokenizer, monkeypatch) -> None:
    model = build_tiny_model(tiny_tokenizer)
    assert want_compiled(True, model) and not want_compiled(False, model)
    assert not want_compiled(None, model)  # a tiny model: compiling costs more than it saves
    monkeypatch.setattr(compiled, "MIN_PARAMETERS", 1)
    assert want_compiled(None, model)
    del model.model.layers[0].self_attn
    assert not want_compiled(None, model)  # layers this module does not know: left alone


def test_a_labeler_that_cannot_compile_says_why_on_stderr(tiny_lm_dir, monkeypatch, capsys):
    from labelbench.config import LabelerSpec
    from labelbench.labeling.labeler import open_labeler

    monkeypatch.setattr(compiled.shutil, "which", lambda name: None)
    labeler = open_labeler(LabelerSpec(name=str(tiny_lm_dir), compile=True))
    assert not is_compiled(labeler.backend.model)
    lines = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert lines == [
        f"warning: {tiny_lm_dir}: decoder layers run uncompiled (slower; set compile: false to "
        "silence this): no C++ compiler (g++, c++ or clang++) on PATH"
    ]
    assert labeler.backend.score([p.request for p in make_planned(1)])[0].logprobs is not None


def test_a_wide_mlp_runs_in_column_chunks_in_the_graph_only(tiny_tokenizer, monkeypatch) -> None:
    """Gate and up projections in MLP_CHUNK-column pieces inside the compiled graph (scores agree
    to rounding); eager calls (decoding steps) run the module's own forward."""
    monkeypatch.setattr(compiled, "MLP_CHUNK", 8)  # no other projection of the model is 8 wide
    model = build_tiny_model(tiny_tokenizer)
    eager_scores, eager_samples = _labels(model, tiny_tokenizer)
    calls: list[tuple[int, bool]] = []  # (output features, while tracing a graph)
    linear = compiled.F.linear

    def counted(x, weight, bias=None):
        calls.append((weight.shape[0], torch.compiler.is_compiling()))
        return linear(x, weight, bias)

    monkeypatch.setattr(compiled.F, "linear", counted)
    assert compile_layers(model) is None
    assert all("forward" in vars(layer.mlp) for layer in model.model.layers)
    assert (8, True) in calls  # the first graphs, traced with the pieces
    calls.clear()
    scores, samples = _labels(model, tiny_tokenizer)
    assert (64, False) in calls  # decoding steps: the module's own gate and up projections
    assert (8, False) not in calls
    for a, b in zip(scores, eager_scores, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
    for together, alone in zip(samples, eager_samples, strict=True):
        assert [s.rationale for s in together] == [s.rationale for s in alone]
    uncompile_layers(model)
    assert not any("forward" in vars(layer.mlp) for layer in model.model.layers)


def test_rationale_prompts_run_the_graphs_and_decoding_steps_do_not(
    tiny_tokenizer, monkeypatch
) -> None:
    model = build_tiny_model(tiny_tokenizer)
    assert compile_layers(model) is None
    passes: list[tuple[str, bool]] = []
    tree_pass, slot_pass = TransformersBackend._tree_pass, Decoder._pass

    def tree(self, root, groups, keep_cache=False):
        passes.append(("prompt" if keep_cache else "score", compiled.runs_graphs(self.model)))
        return tree_pass(self, root, groups, keep_cache)

    def slot(self, rows, segments):
        passes.append(("step", compiled.runs_graphs(self.backend.model)))
        return slot_pass(self, rows, segments)

    monkeypatch.setattr(TransformersBackend, "_tree_pass", tree)
    monkeypatch.setattr(Decoder, "_pass", slot)
    _labels(model, tiny_tokenizer)
    assert set(passes) == {("score", True), ("prompt", True), ("step", False)}


def test_an_mlp_with_another_formula_is_not_chunked(tiny_tokenizer, monkeypatch) -> None:
    """The same module names behind another formula (activation on the up projection): the
    probe finds the difference and the module keeps its own forward in the graph too."""
    monkeypatch.setattr(compiled, "MLP_CHUNK", 16)
    model = build_tiny_model(tiny_tokenizer)
    for layer in model.model.layers:
        mlp = layer.mlp
        mlp.forward = lambda x, m=mlp: m.down_proj(m.gate_proj(x) * m.act_fn(m.up_proj(x)))
    assert compiled._chunked_mlp(model.model.layers[0].mlp) is None
    narrow = build_tiny_model(tiny_tokenizer)
    monkeypatch.setattr(compiled, "MLP_CHUNK", 64)
    assert compiled._chunked_mlp(narrow.model.layers[0].mlp) is None  # one piece: nothing to do
    monkeypatch.setattr(compiled, "MLP_CHUNK", 16)
    assert compiled._chunked_mlp(narrow.model.layers[0].mlp) is not None


def test_uncompiling_keeps_a_forward_set_on_the_module_before(tiny_tokenizer) -> None:
    model = build_tiny_model(tiny_tokenizer)
    attention = model.model.layers[0].self_attn
    hooked = attention.forward  # as a hook library sets one on the instance
    attention.forward = hooked
    assert compile_layers(model) is None
    assert attention.forward is not hooked
    uncompile_layers(model)
    assert attention.forward is hooked
    assert "forward" not in vars(model.model.layers[1].self_attn)


def test_the_compile_setting_takes_true_false_auto_or_null_only() -> None:
    from pydantic import ValidationError

    from labelbench.config import LabelerSpec

    assert LabelerSpec(name="m", compile="auto").compile is None
    assert LabelerSpec(name="m", compile=None).compile is None
    assert LabelerSpec(name="m", compile=False).compile is False
    for value in (1, "yes", "true", 0.0):
        with pytest.raises(ValidationError):
            LabelerSpec(name="m", compile=value)
